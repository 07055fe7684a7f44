"""What a run shows people: the console line on STEP's stability and the progress-bar figures.

Plain functions over the run's typed parts (its projections over time, budget, unit), so that
:class:`~lightning_energy.run.EnergyRun` only gathers them. Pure Python (no torch, no Lightning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_energy.budget import Budget
from lightning_energy.report_model import ProjectionPoint, budget_segments, first_stable, upper_bound_note
from lightning_energy.units import BarUnit, format_energy

__all__ = ["bar_figures", "run_upper_bound_note", "stability_line"]


def stability_line(projections: Sequence[ProjectionPoint], budget: Budget, may_stop_early: bool) -> str:
    """One line on STEP for the console: when it declared stability, or why it did not. Only the
    projections made to the run's final budget count (a resume may have changed ``max_epochs``).

    ``may_stop_early``: the run may end before its budget (EarlyStopping, or a budget that is itself a
    bound), so a declared projection is an upper bound.
    """
    earlier, current = budget_segments(projections)
    declared, before = first_stable(current), first_stable(earlier)
    note = ""
    if before is not None and before.planned_epochs is not None:
        note = (
            f"; before the resume, for {before.planned_epochs:g} planned epochs, it was declared "
            f"stable after epoch {before.epoch} ({format_energy(before.total_j)})"
        )
    if declared is not None:
        bound = run_upper_bound_note(projections, budget, may_stop_early)
        return (
            f"STEP declared stable energy after epoch {declared.epoch}: projected "
            f"{format_energy(declared.total_j)} [{format_energy(declared.low_j)}, "
            f"{format_energy(declared.high_j)}]{bound}{note}"
        )
    if not projections:
        reason = budget.unknown_reason() or "no epoch was measured"
        return f"STEP: no projection ({reason})"
    return f"STEP: {projections[-1].reason or 'not stable'}"


def run_upper_bound_note(projections: Sequence[ProjectionPoint], budget: Budget, may_stop_early: bool) -> str:
    """Says the projection is an upper bound when the run ended (or may end) before its budget."""
    if not projections:
        return ""
    trained = projections[-1].epoch + 1
    return upper_bound_note(budget.total_epochs, trained, may_stop_early or budget.upper_bound)


def bar_figures(
    unit: BarUnit,
    *,
    so_far_j: float | None,
    projected_j: float | None,
    expected_j: float | None,
    pre_j: float | None,
) -> dict[str, float]:
    """Progress-bar figures in ``unit``: the energy so far, the projection (never
    shown below the energy so far: the run uses at least what it has used), the expected total
    (EarlyStopping) and PRE's estimate; the keys name the unit (``mWh``, ``proj_mWh``, ``exp_mWh``,
    ``pre_mWh``)."""
    name, scale = unit.name, unit.joules
    bar: dict[str, float] = {}
    if so_far_j is not None:
        bar[name] = so_far_j / scale
    if projected_j is not None and math.isfinite(projected_j):
        bar[f"proj_{name}"] = max(projected_j, so_far_j or 0.0) / scale
    if expected_j is not None:
        bar[f"exp_{name}"] = expected_j / scale
    if pre_j is not None:
        bar[f"pre_{name}"] = pre_j / scale
    return bar
