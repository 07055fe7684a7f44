"""The report's STEP sections: a projection of the run's total (kept whole), the in-epoch windows and the
expected total of an ``EarlyStopping`` run, with the rules that read the projections over time.
Pure Python."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_energy.report_fields import (
    float_or,
    one_of,
    opt_float,
    opt_int,
)
from lightning_energy.step.expected import ExpectedTotal
from lightning_energy.step.params import read_interval_group
from lightning_energy.step.projection import PROJECTION_METHODS, Projection, ProjectionMethod

__all__ = [
    "ExpectedPoint",
    "ProjectionPoint",
    "WindowRecord",
    "budget_segments",
    "first_stable",
    "upper_bound_note",
]


@dataclass(frozen=True)
class ProjectionPoint:
    """STEP's projection of the run's total energy (:class:`~lightning_energy.step.Projection`, kept whole)
    made after ``epoch`` (and, inside an epoch, ``step``). Its figures read through to the projection."""

    epoch: int
    projection: Projection
    step: int | None = None
    planned_epochs: float | None = None  # the run's planned epochs when it was made (a resume may change it)

    @property
    def total_j(self) -> float:
        return self.projection.total_j

    @property
    def low_j(self) -> float:
        return self.projection.low_j

    @property
    def high_j(self) -> float:
        return self.projection.high_j

    @property
    def stable(self) -> bool:
        return self.projection.stable

    @property
    def stable_since(self) -> int | None:
        return self.projection.stable_since

    @property
    def epoch_energy_j(self) -> float:
        return self.projection.epoch_energy_j

    @property
    def method(self) -> ProjectionMethod:
        return self.projection.method

    @property
    def reason(self) -> str:
        return self.projection.reason

    def to_json(self) -> dict[str, Any]:
        """The ten fields of 0.3.0 in their order, then the rest of the projection (added after 0.3.0)."""
        p = self.projection
        return {
            "epoch": self.epoch,
            "step": self.step,
            "total_j": p.total_j,
            "low_j": p.low_j,
            "high_j": p.high_j,
            "stable": p.stable,
            "stable_since": p.stable_since,
            "epoch_energy_j": p.epoch_energy_j,
            "method": p.method,
            "reason": p.reason,
            "epochs_seen": p.epochs_seen,
            "measured_j": p.measured_j,
            "power_w": p.power_w,
            "regime_start": p.regime_start,
            "remaining_epochs": p.remaining_epochs,
            "remaining_s": p.remaining_s,
            "confidence": p.confidence,
            "interval_group": p.interval_group,
            "planned_epochs": self.planned_epochs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProjectionPoint:
        """A point of ``projection.history``; the fields a 0.3.0 report lacks read as unknown (NaN), except
        ``epochs_seen`` (``epoch + 1``) and ``regime_start`` (``stable_since``, else 0)."""
        epoch = opt_int(data, "epoch") or 0
        total = float_or(data, "total_j", math.nan)
        stable_since = opt_int(data, "stable_since")
        group = data.get("interval_group")
        seen, regime = opt_int(data, "epochs_seen"), opt_int(data, "regime_start")
        projection = Projection(
            total_j=total,
            low_j=float_or(data, "low_j", total),
            high_j=float_or(data, "high_j", total),
            stable=bool(data.get("stable")),
            stable_since=stable_since,
            epoch_energy_j=float_or(data, "epoch_energy_j", math.nan),
            epochs_seen=epoch + 1 if seen is None else seen,
            measured_j=float_or(data, "measured_j", math.nan),
            power_w=float_or(data, "power_w", math.nan),
            regime_start=regime if regime is not None else stable_since or 0,
            remaining_epochs=opt_float(data, "remaining_epochs"),
            remaining_s=opt_float(data, "remaining_s"),
            method=one_of(data, "method", PROJECTION_METHODS, "level"),
            confidence=float_or(data, "confidence", math.nan),
            reason=str(data.get("reason") or ""),
            interval_group=read_interval_group(group),
        )
        return cls(
            epoch=epoch,
            projection=projection,
            step=opt_int(data, "step"),
            planned_epochs=opt_float(data, "planned_epochs"),
        )


def budget_segments(
    projections: Sequence[ProjectionPoint],
) -> tuple[Sequence[ProjectionPoint], Sequence[ProjectionPoint]]:
    """``projections`` split where the planned epochs last changed (a resume with a new ``max_epochs``):
    the projections made to earlier budgets, and those made to the run's final budget."""
    start = len(projections)
    while start > 0 and projections[start - 1].planned_epochs == projections[-1].planned_epochs:
        start -= 1
    return projections[:start], projections[start:]


def first_stable(projections: Sequence[ProjectionPoint]) -> ProjectionPoint | None:
    """The projection at which STEP first declared the per-epoch energy stable, or ``None``."""
    return next((h for h in projections if h.stable), None)


def upper_bound_note(planned_epochs: float | None, trained_epochs: int, may_stop_early: bool) -> str:
    """`` (an upper bound: ...)`` when the projection is to more epochs than the run trained or may train."""
    if planned_epochs is None:
        return ""
    if trained_epochs < planned_epochs:
        return f" (an upper bound: the run stopped after {trained_epochs} of {planned_epochs:g} epochs)"
    if may_stop_early:
        return f" (an upper bound for max_epochs={planned_epochs:g}: EarlyStopping may stop earlier)"
    return ""


@dataclass(frozen=True)
class WindowRecord:
    """One window of training steps inside an epoch: its energy (this rank's meter scaled to all ranks) and
    STEP's projection of the run's total made at its end (:class:`~lightning_energy.step.Projection`, kept
    whole; ``None`` when none was made). The figures read through to the projection: ``total_j``, ``low_j``
    and ``high_j`` are ``None`` unless its total is a finite number."""

    epoch: int
    step: int  # the global step read at the start of its last batch (where Lightning logs that batch)
    time_s: float  # seconds since the fit started
    steps: int  # batches in the window
    energy_j: float | None
    projection: Projection | None = None

    @property
    def total_j(self) -> float | None:
        return self._figure(None if self.projection is None else self.projection.total_j)

    @property
    def low_j(self) -> float | None:
        return self._figure(None if self.projection is None else self.projection.low_j)

    @property
    def high_j(self) -> float | None:
        return self._figure(None if self.projection is None else self.projection.high_j)

    @property
    def stable(self) -> bool:
        return self.projection is not None and self.projection.stable

    def _figure(self, value: float | None) -> float | None:
        """``value`` when the projection's total is finite (an interval bound that is not a number reads as
        unknown too), else ``None``."""
        p = self.projection
        if p is None or value is None or not math.isfinite(p.total_j) or math.isnan(value):
            return None
        return value

    def to_json(self) -> dict[str, Any]:
        """The window's figures and the projection's total, interval and stability (the fields of 0.3.0,
        in their order)."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "time_s": self.time_s,
            "steps": self.steps,
            "energy_j": self.energy_j,
            "projected_total_j": self.total_j,
            "projected_low_j": self.low_j,
            "projected_high_j": self.high_j,
            "stable": self.stable,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowRecord:
        """A window of the report; its projection keeps what the report says of it (total, interval,
        stability) and reads the rest as unknown (NaN)."""
        total, stable = opt_float(data, "projected_total_j"), bool(data.get("stable"))
        projection = None
        if total is not None or stable:
            projection = _partial_projection(
                total_j=math.nan if total is None else total,
                low_j=float_or(data, "projected_low_j", math.nan),
                high_j=float_or(data, "projected_high_j", math.nan),
                stable=stable,
            )
        return cls(
            epoch=opt_int(data, "epoch") or 0,
            step=opt_int(data, "step") or 0,
            time_s=float_or(data, "time_s"),
            steps=opt_int(data, "steps") or 0,
            energy_j=opt_float(data, "energy_j"),
            projection=projection,
        )


def _partial_projection(*, total_j: float, low_j: float, high_j: float, stable: bool) -> Projection:
    """A projection known only by its total, interval and stability (a window read from a report)."""
    return Projection(
        total_j=total_j,
        low_j=low_j,
        high_j=high_j,
        stable=stable,
        stable_since=None,
        epoch_energy_j=math.nan,
        epochs_seen=0,
        measured_j=math.nan,
        power_w=math.nan,
        regime_start=0,
        remaining_epochs=None,
        remaining_s=None,
        method="level",
        confidence=math.nan,
        reason="",
    )


@dataclass(frozen=True)
class ExpectedPoint:
    """The expected total of an ``EarlyStopping`` run after epoch ``epoch`` (0-based): STEP's
    :class:`~lightning_energy.step.ExpectedTotal` kept whole (the projection times the predicted stop, with a
    90 % interval, and the predicted stop epoch; ``stop_epoch_high`` ``None``: open top)."""

    epoch: int
    expected: ExpectedTotal

    @property
    def total_j(self) -> float:
        return self.expected.total_j

    @property
    def low_j(self) -> float:
        return self.expected.low_j

    @property
    def high_j(self) -> float:
        return self.expected.high_j

    @property
    def stop_epoch(self) -> float:
        return self.expected.stop_epoch

    @property
    def stop_epoch_low(self) -> float:
        return self.expected.stop_epoch_low

    @property
    def stop_epoch_high(self) -> float | None:
        return self.expected.stop_epoch_high

    def to_json(self) -> dict[str, Any]:
        """The seven fields of 0.3.0 in their order, then ``bound_j`` (added after 0.3.0)."""
        e = self.expected
        return {
            "epoch": self.epoch,
            "total_j": e.total_j,
            "low_j": e.low_j,
            "high_j": e.high_j,
            "stop_epoch": e.stop_epoch,
            "stop_epoch_low": e.stop_epoch_low,
            "stop_epoch_high": e.stop_epoch_high,
            "bound_j": e.bound_j,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExpectedPoint:
        """A point of the report's expected totals; ``bound_j`` of a 0.3.0 report reads as unknown (NaN)."""
        expected = ExpectedTotal(
            total_j=float_or(data, "total_j"),
            low_j=float_or(data, "low_j"),
            high_j=float_or(data, "high_j"),
            stop_epoch=float_or(data, "stop_epoch"),
            stop_epoch_low=float_or(data, "stop_epoch_low"),
            stop_epoch_high=opt_float(data, "stop_epoch_high"),
            bound_j=float_or(data, "bound_j", math.nan),
        )
        return cls(epoch=opt_int(data, "epoch") or 0, expected=expected)
