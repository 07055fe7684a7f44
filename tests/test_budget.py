"""The run's plan and the budget the projection uses."""

from __future__ import annotations

import pytest

from lightning_energy.budget import Budget, ProjectionBudget, choose_budget, choose_units


@pytest.mark.parametrize(
    ("budget", "epochs", "batches"),
    [
        (Budget(max_epochs=5, batches_per_epoch=10), 5.0, 50.0),
        (Budget(max_steps=400, batches_per_epoch=32), 12.5, 400.0),
        (Budget(max_epochs=20, max_steps=400, batches_per_epoch=32), 12.5, 400.0),
        (Budget(max_steps=100, batches_per_epoch=32, accumulate_grad_batches=4), 12.5, 400.0),
        (Budget(max_steps=100), None, 100.0),  # iterable data of unknown length
        (Budget(max_epochs=3), 3.0, None),
        (Budget(), None, None),
    ],
    ids=["epochs", "steps-partial", "steps-first", "accumulate", "iterable", "no-length", "infinite"],
)
def test_planned_epochs_and_batches(budget: Budget, epochs: float | None, batches: float | None) -> None:
    assert budget.total_epochs == epochs
    assert budget.total_batches == batches


def test_infinite_run_says_why() -> None:
    assert "no end" in (Budget().unknown_reason() or "")
    assert Budget(max_epochs=1).unknown_reason() is None


def test_time_budget_wins_when_epochs_would_take_longer() -> None:
    budget = Budget(max_epochs=100, total_seconds=60.0)
    assert choose_budget(budget, epochs_seen=2, mean_epoch_s=10.0) == ProjectionBudget(None, 60.0)
    assert choose_budget(budget, epochs_seen=2, mean_epoch_s=0.1) == ProjectionBudget(100.0, None)
    assert choose_budget(Budget(), epochs_seen=1, mean_epoch_s=1.0) is None
    # a run that outlasts its plan (resumed with a larger max_epochs) is never projected below what it saw
    assert choose_budget(Budget(max_epochs=2), epochs_seen=3, mean_epoch_s=1.0) == ProjectionBudget(3.0, None)


def test_choose_units_works_for_any_unit_of_work() -> None:
    assert choose_units(100.0, 1.0, units_seen=1.0, mean_unit_s=0.02) == ProjectionBudget(None, 1.0)
    assert choose_units(100.0, 3.0, units_seen=1.0, mean_unit_s=0.02) == ProjectionBudget(100.0, None)
    assert choose_units(10.0, None, units_seen=12.5, mean_unit_s=None) == ProjectionBudget(12.5, None)
    assert choose_units(None, None, units_seen=1.0, mean_unit_s=1.0) is None
