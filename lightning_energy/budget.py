"""How long a run is planned to be, and which budget the projection uses (pure: no torch, no Lightning).

A run is bounded by epochs (``max_epochs``), optimizer steps (``max_steps``, converted with the batches per
epoch and ``accumulate_grad_batches``; a budget may end mid-epoch, so planned epochs can be fractional),
time (``max_time``), several of these (the first reached ends the run), or nothing (an infinite run: no
projection). Early stopping makes every budget an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Budget", "ProjectionBudget", "choose_budget"]


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
        """Planned training batches of the whole run, when known."""
        epochs = self.total_epochs
        if epochs is not None and self.batches_per_epoch:
            return epochs * self.batches_per_epoch
        if self.max_steps is not None and self.max_epochs is None:
            return float(self.max_steps * max(1, self.accumulate_grad_batches))
        return None

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
    epochs, seconds = budget.total_epochs, budget.total_seconds
    if epochs is not None:
        epochs = max(epochs, epochs_seen)
    if epochs is not None and seconds is not None:
        if mean_epoch_s is not None and mean_epoch_s * epochs > seconds:
            return ProjectionBudget(None, seconds)
        return ProjectionBudget(epochs, None)
    if epochs is None and seconds is None:
        return None
    return ProjectionBudget(epochs, seconds)
