"""What :class:`~lightning_energy.run.EnergyRun` is fed, checked or completed before it is used: a PRE
estimate's usability, the epoch length learnt from the first metered epoch, Lightning's default budget.

Pure Python (no torch, no Lightning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_energy.accounting import EpochRecord
from lightning_energy.budget import Budget
from lightning_energy.metering import NOT_METERED_START
from lightning_energy.report_model import PreSummary

__all__ = ["LIGHTNING_DEFAULT_MAX_EPOCHS", "default_budget_warning", "learn_epoch_length", "pre_problem"]

LIGHTNING_DEFAULT_MAX_EPOCHS = 1000


def default_budget_warning(budget: Budget) -> str | None:
    """The warning for a budget that is Lightning's default rather than the user's, else ``None``."""
    if budget.max_epochs == LIGHTNING_DEFAULT_MAX_EPOCHS and budget.max_steps is None:
        # Lightning >= 2 sets 1000 when neither max_epochs nor max_steps is given (it warns itself)
        return (
            f"max_epochs is {LIGHTNING_DEFAULT_MAX_EPOCHS}, Lightning's default when max_epochs is not "
            "set: the projection is to that many epochs; set max_epochs to your real budget"
        )
    return None


def learn_epoch_length(budget: Budget, records: Sequence[EpochRecord]) -> Budget:
    """``budget`` with the epoch length the trainer cannot tell (iterable data) taken from the first epoch
    metered from its start: it projects ``max_steps`` as a share of ``max_epochs`` from then on (the
    windows keep the size they were planned with)."""
    first = next((r for r in records if r.batches and r.reason != NOT_METERED_START), None)
    return budget if first is None else budget.learned(first.batches)


def pre_problem(pre: PreSummary) -> str | None:
    """What makes an available PRE estimate unusable (a non-finite or non-positive figure), or ``None``."""
    if not pre.available:
        return None
    estimate = pre.estimate
    epoch_energy_j = None if estimate is None else estimate.epoch_energy_j
    figures = {
        "total_j": pre.total_j,
        "low_j": pre.low_j,
        "high_j": pre.high_j,
        "epoch_energy_j": epoch_energy_j,
        "rel_sigma": None if estimate is None else _rel_sigma(estimate.log_sigma),
    }
    for name, value in figures.items():
        if value is not None and not (math.isfinite(value) and value >= 0):
            return f"its {name} is {value!r}"
    if not pre.total_j or (epoch_energy_j is not None and epoch_energy_j <= 0):
        return f"it estimates no energy (total_j {pre.total_j!r}, epoch_energy_j {epoch_energy_j!r})"
    if pre.devices < 1:
        return f"its devices is {pre.devices!r}"
    return None


def _rel_sigma(log_sigma: float) -> float:
    """PRE's relative standard deviation from its log-normal sigma (infinite when that overflows)."""
    try:
        return math.sqrt(math.expm1(log_sigma**2))
    except OverflowError:
        return math.inf
