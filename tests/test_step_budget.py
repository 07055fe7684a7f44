"""StepProjector takes the run's ProjectionBudget as it is (epochs or seconds), the same as the keywords."""

from __future__ import annotations

import pytest

from lightning_energy.budget import ProjectionBudget
from lightning_energy.errors import ProjectionError
from lightning_energy.step import StepProjector

ENERGY_J = [100.0, 103.0, 98.0, 101.0, 99.0, 102.0]


@pytest.mark.parametrize(
    ("budget", "keywords"),
    [
        (ProjectionBudget(10.0, None), {"total_epochs": 10}),
        (ProjectionBudget(7.5, None), {"total_epochs": 7.5}),
        (ProjectionBudget(None, 600.0), {"total_seconds": 600.0}),
    ],
)
def test_a_budget_projects_as_its_keywords_do(budget: ProjectionBudget, keywords: dict[str, float]) -> None:
    by_budget, by_keywords = StepProjector(), StepProjector()
    for energy_j in ENERGY_J:
        a = by_budget.update(energy_j, 10.0, budget=budget)
        b = by_keywords.update(energy_j, 10.0, **keywords)
        assert a == b
    assert by_budget.skip(10.0, budget=budget) == by_keywords.skip(10.0, **keywords)
    assert by_budget.project(budget=budget) == by_keywords.project(**keywords)


def test_a_budget_and_keywords_together_are_refused() -> None:
    projector = StepProjector()
    with pytest.raises(ProjectionError, match="either as budget= or as total_epochs"):
        projector.update(100.0, 10.0, total_epochs=10, budget=ProjectionBudget(10.0, None))
    with pytest.raises(TypeError, match="budget must be a ProjectionBudget"):
        projector.update(100.0, 10.0, budget=(10.0, None))  # type: ignore[arg-type]
    assert projector.epochs_seen == 0  # nothing was added


def test_a_budget_below_the_epochs_seen_is_refused_as_with_keywords() -> None:
    projector = StepProjector()
    projector.update(100.0, 10.0, budget=ProjectionBudget(2.0, None))
    projector.update(100.0, 10.0, budget=ProjectionBudget(2.0, None))
    with pytest.raises(ProjectionError, match="total_epochs must be >= the epochs seen"):
        projector.update(100.0, 10.0, budget=ProjectionBudget(2.0, None))


def test_every_projection_names_a_method_of_the_vocabulary() -> None:
    from lightning_energy.step import PROJECTION_METHODS

    seen = set()
    for budget in (ProjectionBudget(10.0, None), ProjectionBudget(None, 600.0)):
        projector = StepProjector()
        seen.add(projector.skip(10.0, budget=budget).method)  # nothing measured yet
        for energy_j in [*ENERGY_J, 300.0]:
            seen.add(projector.update(energy_j, 10.0, budget=budget).method)
    prior = StepProjector()
    prior.set_prior(100.0, 0.2)
    seen.add(prior.update(100.0, 10.0, total_epochs=10).method)
    assert seen <= set(PROJECTION_METHODS) and {"none", "unstable", "power-unstable", "prior"} <= seen
