"""In-epoch windows: a run's series of windows of training batches and the projection made from them.

Pure (no torch, no Lightning). A window is a unit of work of ``unit_batches`` training batches (a shorter
one counts as its fraction); a second STEP projector projects the run's remaining batches from them, so that
long epochs get a projection before they end. :class:`~lightning_energy.run.EnergyRun` owns one series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lightning_energy import metric_names as M
from lightning_energy.budget import Budget, choose_units
from lightning_energy.errors import EnergyError, StateError
from lightning_energy.report_model import WindowRecord
from lightning_energy.step import Projection, StepProjector
from lightning_energy.units import joules_to_kwh

__all__ = ["WINDOWS_PER_EPOCH", "WINDOWS_PER_RUN", "WindowSeries", "unit_batches", "whole_units"]

WINDOWS_PER_EPOCH = 20
WINDOWS_PER_RUN = 200


def whole_units(total: float) -> float:
    """A whole number of units as an ``int`` (what a projector indexes by), a fraction as it is."""
    return int(total) if float(total).is_integer() else float(total)


def unit_batches(budget: Budget, configured: int | None) -> int | None:
    """Batches in one window: ``configured``, else 1/20 of a known epoch, else 1/200 of a known step
    budget; ``None`` when neither is known (no in-epoch projection)."""
    if configured is not None:
        return configured
    if budget.batches_per_epoch:
        return max(1, math.ceil(budget.batches_per_epoch / WINDOWS_PER_EPOCH))
    total = budget.total_batches
    if total:
        return max(1, math.ceil(total / WINDOWS_PER_RUN))
    return None


class WindowSeries:
    """The windows of one run and their projector.

    Args:
        confidence: of the windows' projection interval (the epoch projector's).
    """

    def __init__(self, confidence: float = 0.9) -> None:
        self.projector = StepProjector(confidence=confidence, unit_name="window")
        self.records: list[WindowRecord] = []
        self.unit_batches: int | None = None
        self.problem: str | None = None  # the last projector failure, for the run's warnings

    def plan(self, budget: Budget, configured: int | None) -> str | None:
        """Size the windows for ``budget``; windows already projected (a resumed run) keep their size, as
        the projector counts work in it. The warning to show when ``configured`` differs, else ``None``."""
        saved = self.unit_batches
        if saved is None or self.projector.epochs_seen == 0:
            self.unit_batches = unit_batches(budget, configured)
            return None
        if configured not in (None, saved):
            return (
                f"window_batches={configured} differs from the resumed run's windows of {saved} batches: "
                f"its windows keep {saved} batches, so that the in-epoch projection stays right"
            )
        return None

    def close(
        self,
        budget: Budget,
        *,
        epoch: int,
        step: int,
        time_s: float,
        batches: int,
        energy_j: float | None,
        duration_s: float,
    ) -> WindowRecord | None:
        """Add one window of ``batches`` batches (``energy_j`` on all ranks, ``None``: not measured) and
        project the run's total; ``None`` when the run's length in batches or seconds is unknown."""
        unit = self.unit_batches
        if unit is None or batches <= 0:
            return None
        work = batches / unit
        seen = self.projector.work_seen + work
        total = budget.total_batches
        # the batch budget or max_time, whichever ends the run first at the windows' pace so far
        plan = choose_units(
            None if total is None else total / unit,
            budget.total_seconds,
            units_seen=seen,
            mean_unit_s=(self.projector.seconds_seen + duration_s) / seen,
        )
        if plan is None:
            return None
        point: Projection | None = None
        try:  # the projector counts windows as its units (whole counts read as ints, as whole_units does)
            if energy_j is None:
                point = self.projector.skip(duration_s, budget=plan, work=work)
            else:
                point = self.projector.update(energy_j, duration_s, budget=plan, work=work)
        except EnergyError:
            point = None
        except Exception as exc:  # a projection never stops training, whatever the projector does
            self.problem = f"in-epoch projection failed: {type(exc).__name__}: {exc}"
        window = WindowRecord(
            epoch=epoch, step=step, time_s=time_s, steps=batches, energy_j=energy_j, projection=point
        )
        self.records.append(window)
        return window

    @staticmethod
    def metrics(window: WindowRecord, live_total_j: float | None) -> dict[str, float]:
        """The metrics logged at a window's end (at the global step): energy so far and the projection."""
        metrics: dict[str, float] = {}
        if live_total_j is not None:
            metrics[M.TOTAL_KWH] = joules_to_kwh(live_total_j)
        if window.total_j is not None and window.low_j is not None and window.high_j is not None:
            metrics[M.PROJECTED_KWH] = joules_to_kwh(window.total_j)
            metrics[M.PROJECTED_LOW_KWH] = joules_to_kwh(window.low_j)
            metrics[M.PROJECTED_HIGH_KWH] = joules_to_kwh(window.high_j)
            metrics[M.STABLE] = float(window.stable)
        return metrics

    def restart(self) -> None:
        """Forget the windows (a saved state that does not belong to this run); the size is kept."""
        self.projector, self.records = self.projector.fresh(keep_prior=False), []

    def state_dict(self) -> dict[str, Any]:
        return {
            "records": [w.to_json() for w in self.records],
            "projector": self.projector.state_dict(),
            "unit_batches": self.unit_batches,
        }

    @staticmethod
    def check_state(state: Mapping[str, Any]) -> list[WindowRecord]:
        """The records of a saved state; raises on anything malformed (the projector's state included, and
        a projector that has seen more windows than the records hold)."""
        projector = StepProjector()
        projector.load_state_dict(state.get("projector") or {})
        raw = state.get("records") or []
        if not isinstance(raw, list | tuple) or not all(isinstance(w, Mapping) for w in raw):
            raise StateError("the saved windows' records must be a list of mappings")
        records = [WindowRecord.from_json(w) for w in raw]
        if projector.epochs_seen > len(records):
            raise StateError(
                f"the saved window projector has seen {projector.epochs_seen} windows but the saved state "
                f"holds {len(records)}: the state is damaged"
            )
        unit = state.get("unit_batches")
        if unit is not None and (isinstance(unit, bool) or not isinstance(unit, int) or unit < 0):
            raise StateError(
                f"the saved window size must be a whole number of batches >= 1 (0: windows off), got {unit!r}"
            )
        if unit == 0 and projector.epochs_seen > 0:
            raise StateError(f"the saved windows are off (size 0) but {projector.epochs_seen} were projected")
        if unit and projector.work_seen > sum(w.steps for w in records) / unit + 1e-6:
            raise StateError(
                f"the saved window projector has seen {projector.work_seen:g} windows of {unit} batches but "
                f"the saved windows hold {sum(w.steps for w in records)} batches: the state is damaged"
            )
        return records

    def load_state_dict(self, state: Mapping[str, Any]) -> str | None:
        """Continue the saved series (checked first); the warning to keep when its in-epoch projection
        restarts (a state saved before the window size was, whose windows were projected), else ``None``."""
        records = self.check_state(state)
        self.projector.load_state_dict(state.get("projector") or {})
        self.records, self.unit_batches = records, state.get("unit_batches")
        if self.unit_batches is None and self.projector.epochs_seen > 0:
            self.projector = self.projector.fresh()  # the size of the windows it counted is not known
            return "the saved windows do not say their size (an older state): in-epoch projections restart"
        return None
