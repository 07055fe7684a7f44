"""How long a run is planned to be, and which budget the projection uses (pure: no torch, no Lightning).

A run is bounded by epochs (``max_epochs``), optimizer steps (``max_steps``, converted with the batches per
epoch and ``accumulate_grad_batches``; a budget may end mid-epoch, so planned epochs can be fractional),
time (``max_time``), several of these (the first reached ends the run), or nothing (an infinite run: no
projection). Early stopping makes every budget an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

__all__ = ["Budget", "ProjectionBudget", "choose_budget", "choose_units"]


@dataclass(frozen=True)
class Budget:
    """The trainer's plan; ``batches_per_epoch`` is ``None`` when the epoch length is unknown."""

    max_epochs: int | None = None
    max_steps: int | None = None
    batches_per_epoch: int | None = None
    accumulate_grad_batches: int = 1
    total_seconds: float | None = None
    upper_bound: bool = False

    @property
    def steps_per_epoch(self) -> int | None:
        """Optimizer steps per epoch (a partial accumulation at an epoch's end still steps)."""
        if not self.batches_per_epoch:
            return None
        return math.ceil(self.batches_per_epoch / max(1, self.accumulate_grad_batches))

    @property
    def total_epochs(self) -> float | None:
        """Planned training epochs, fractional when ``max_steps`` ends the run inside an epoch."""
        candidates: list[float] = []
        if self.max_epochs is not None:
            candidates.append(float(self.max_epochs))
        steps = self.steps_per_epoch
        if self.max_steps is not None and steps:
            candidates.append(self.max_steps / steps)
        return min(candidates) if candidates else None

    @property
    def total_batches(self) -> float | None:
        """Planned training batches of the whole run, when known. With an epoch length that is not known,
        ``max_steps`` plans them (with ``max_epochs`` too: the most the run can train until an epoch's
        length is known)."""
        epochs = self.total_epochs
        if epochs is not None and self.batches_per_epoch:
            return epochs * self.batches_per_epoch
        if self.max_steps is not None and not self.batches_per_epoch:
            return float(self.max_steps * max(1, self.accumulate_grad_batches))
        return None

    def learned(self, epoch_batches: int | None) -> Budget:
        """This plan with an epoch length it does not know (iterable data) taken from an epoch that ran
        ``epoch_batches`` batches from its start; unchanged when the length is known or nothing is."""
        if self.batches_per_epoch or not epoch_batches or epoch_batches <= 0:
            return self
        return replace(self, batches_per_epoch=int(epoch_batches))

    def unknown_reason(self) -> str | None:
        """Why no projection can be made, or ``None`` when the run is bounded."""
        if self.total_epochs is not None or self.total_seconds is not None or self.total_batches is not None:
            return None
        return "the run has no end: max_epochs=-1 without max_steps or max_time (no projection)"


@dataclass(frozen=True)
class ProjectionBudget:
    """What the projector is given: planned units of work, or planned seconds (exactly one is set)."""

    total_epochs: float | None
    total_seconds: float | None


def choose_budget(
    budget: Budget, *, epochs_seen: float, mean_epoch_s: float | None
) -> ProjectionBudget | None:
    """The budget that ends the run first, as the projector needs it; ``None`` for an unbounded run.

    With both an epoch (or step) budget and a time budget, the time budget wins when the epochs would take
    longer than the time allows at the mean epoch duration so far.
    """
    return choose_units(
        budget.total_epochs, budget.total_seconds, units_seen=epochs_seen, mean_unit_s=mean_epoch_s
    )


def choose_units(
    total_units: float | None, total_seconds: float | None, *, units_seen: float, mean_unit_s: float | None
) -> ProjectionBudget | None:
    """:func:`choose_budget` for any unit of work (epochs, or in-epoch windows of batches): the planned
    units (never fewer than those seen) unless ``total_seconds`` ends the run first at ``mean_unit_s``."""
    units, seconds = total_units, total_seconds
    if units is not None:
        units = max(units, units_seen)
    if units is not None and seconds is not None:
        if mean_unit_s is not None and mean_unit_s * units > seconds:
            return ProjectionBudget(None, seconds)
        return ProjectionBudget(units, None)
    if units is None and seconds is None:
        return None
    return ProjectionBudget(units, seconds)
