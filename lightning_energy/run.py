"""``EnergyRun``: the Lightning-free model of one metered training run.

It owns what a run knows -- the epoch ledger, the STEP projector and its projections, the in-epoch
windows, the budget, the PRE estimate, the warnings -- and turns it into logged metrics, the progress-bar
figures and the typed :class:`~lightning_energy.report_model.RunReport`. The callback only feeds it from
Lightning's hooks (as Lightning's ``ThroughputMonitor`` feeds fabric's ``Throughput``).

Pure Python plus numpy through the projector: no torch, no Lightning, so it is tested without a Trainer.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lightning_energy.accounting import EnergyLedger, EpochRecord
from lightning_energy.budget import Budget, ProjectionBudget, choose_budget
from lightning_energy.carbon import CarbonIntensity
from lightning_energy.errors import EnergyError, RunStateError
from lightning_energy.metering import Window
from lightning_energy.report_model import (
    ExpectedPoint,
    PreSummary,
    ProjectionPoint,
    RunReport,
    RunStatus,
    TrainerFacts,
    WindowRecord,
)
from lightning_energy.run_inputs import default_budget_warning, learn_epoch_length, pre_problem
from lightning_energy.run_metrics import (
    BAR_UNITS,
    bar_unit,
    component_labels,
    epoch_metrics,
    expected_point,
    finite,
    projection_point,
)
from lightning_energy.run_report import build_report, facts_from_keywords, write_run_report
from lightning_energy.run_state import STATE_VERSION, load_state, save_state
from lightning_energy.run_text import bar_figures, stability_line
from lightning_energy.step import StepProjector
from lightning_energy.step.stop_tracker import SavedStop, StopTracker
from lightning_energy.units import BarUnit
from lightning_energy.windows import WindowSeries

# BAR_UNITS, BarUnit, bar_unit, component_labels, STATE_VERSION: re-exported (old import paths)
__all__ = [
    "BAR_UNITS",
    "STATE_VERSION",
    "BarUnit",
    "EnergyRun",
    "RunStateError",
    "RunStatus",
    "TrainerFacts",
    "bar_unit",
    "component_labels",
]


@dataclass(frozen=True)
class EpochOutcome:
    """What finishing an epoch produced: its record and the projection made from it (if any)."""

    record: EpochRecord
    projection: ProjectionPoint | None


class EnergyRun:
    """One training run's energy: feed it epochs (and windows); read metrics, the report and the state.

    Args:
        projector: the STEP projector (default ``StepProjector()``).
        carbon: the grid intensity for CO₂ figures, or ``None``.
    """

    def __init__(self, *, projector: StepProjector | None = None, carbon: CarbonIntensity | None = None):
        if projector is not None and not isinstance(projector, StepProjector):
            raise TypeError(f"projector must be a StepProjector or None, got {type(projector).__name__}")
        self.projector = projector if projector is not None else StepProjector()
        self.carbon = carbon
        self.ledger = EnergyLedger()
        self.projections: list[ProjectionPoint] = []  # STEP's projection after each epoch
        self.pre: PreSummary | None = None
        self.budget = Budget()
        self.fit_energy_j: float | None = None  # every fit of the run on all ranks (see set_fit_energy)
        # the fits this run was resumed from, up to their checkpoint, and this fit up to its last epoch's end
        self.earlier_fits_j: float | None = 0.0
        self.fit_through_epoch_j: float | None = 0.0
        self.started_at = datetime.now(timezone.utc).isoformat()
        self.warnings: list[str] = []
        self.unit: BarUnit | None = None  # the progress-bar unit, chosen once per run
        self.window_series = WindowSeries(self.projector.confidence)
        self.stop: StopTracker | None = None  # set when the Trainer has an EarlyStopping callback
        self.saved_stop: SavedStop | None = None  # a resumed run's stop forecast, until set_stop replays it
        self.expected: list[ExpectedPoint] = []  # the expected total (EarlyStopping) after each epoch
        self.unmetered_ranks = 0  # ranks with nothing to meter by design (CPU DDP): each adds 0 J

    # ------------------------------------------------------------------------------------------- inputs
    def set_budget(self, budget: Budget, window_batches: int | None = None) -> str | None:
        """The run's plan (known once the data is set up) and the configured window size, if any; the
        warning to show when a resumed run keeps another window size (also kept for the report)."""
        budget = self.budget = learn_epoch_length(budget, self.ledger.records)  # a resumed run's epochs
        problem = self.window_series.plan(budget, window_batches)
        if problem is not None:
            self.warn(problem)
        default = default_budget_warning(budget)
        if default is not None:
            self.warn(default)
        total = budget.total_epochs
        if self.pre is not None and total is not None:
            self.pre = self.pre.scaled_to(total)
        return problem

    def set_pre(self, pre: PreSummary) -> None:
        """Record the PRE estimate; when it has a per-epoch energy it becomes STEP's prior.

        Never raises on the estimate's values: an estimate that is not a set of finite, positive numbers
        is recorded as skipped, with a warning (an estimate never stops training).
        """
        for message in pre.warnings:
            self.warn(message)
        problem = pre_problem(pre)
        if problem is not None:
            self.warn(f"PRE estimate not used: {problem}")
            pre = PreSummary(skipped=f"the estimate is unusable: {problem}", warnings=pre.warnings)
        self.pre = pre
        estimate = pre.estimate
        if pre.available and estimate is not None and estimate.epoch_energy_j and estimate.rel_sigma:
            try:
                self.projector.set_prior(estimate.epoch_energy_j * pre.devices, estimate.rel_sigma)
            except EnergyError as exc:
                self.warn(f"PRE estimate not used as STEP's prior: {exc}")

    def note_unmetered(self, first_epoch: int) -> str | None:
        """Mark the epochs before ``first_epoch`` that the ledger lacks as missing (a resume from a
        checkpoint without this run's state); the warning to show, ``None`` when none was missing.

        A loaded state that already holds ``first_epoch`` or a later epoch does not belong to the
        checkpoint the trainer resumes from (another run's): it is dropped, as a damaged state is, and
        metering starts afresh from this epoch.
        """
        notes: list[str] = []
        records = self.ledger.records
        if records and records[-1].epoch >= first_epoch:
            notes.append(
                f"checkpoint state not used: it holds epochs up to {records[-1].epoch} but training resumes "
                f"at epoch {first_epoch} (a state from another run?); energy metering starts afresh"
            )
            self._forget_saved_state()
        epochs = range(len(self.ledger.records), first_epoch)
        reason = "not metered: resumed from a checkpoint without lightning_energy state"
        for epoch in epochs:
            self.finish_epoch(EpochRecord(epoch, 0.0, None, {}, reason))
        if epochs:
            self.earlier_fits_j = None  # the fits before the resume were not metered
            notes.append(f"epochs {epochs[0]}-{epochs[-1]} were {reason}; the report is partial")
        return "; ".join(notes) or None

    def _forget_saved_state(self) -> None:
        """Back to a run that has measured nothing (the budget, the stop forecast's settings and warnings
        stay; the values it replayed from the saved state go)."""
        self.ledger, self.projections, self.expected, self.pre, self.unit = EnergyLedger(), [], [], None, None
        self.saved_stop, self.stop = None, None if self.stop is None else self.stop.fresh()
        self.projector = self.projector.fresh(keep_prior=False)
        self.window_series.restart()

    def set_stop(self, stop: StopTracker | None) -> None:
        """The fit's stop forecast (``None``: no EarlyStopping); a resumed run's saved one is replayed."""
        self.stop, saved, self.saved_stop = stop, self.saved_stop, None
        if stop is not None and saved is not None and (note := stop.load_state_dict(saved)):
            self.warn(note)

    def warn(self, message: str) -> bool:
        """Keep ``message`` for the report; ``True`` when it is new (the caller then shows it once)."""
        if message in self.warnings:
            return False
        self.warnings.append(message)
        return True

    def _projection_budget(self) -> ProjectionBudget | None:
        """The budget STEP projects to; whole epoch counts are passed as ints."""
        records = self.ledger.records
        seen = sum(self._work(r) for r in records)
        mean_s = self.ledger.duration_s / len(records) if records else None
        return choose_budget(self.budget, epochs_seen=seen, mean_epoch_s=mean_s)

    def _work(self, record: EpochRecord) -> float:
        """The share of a full epoch that ``record`` ran (a ``max_steps`` budget may end mid-epoch)."""
        full = self.budget.batches_per_epoch
        if record.batches is None or not full or record.batches >= full:
            return 1.0
        return max(record.batches, 1) / full

    def set_fit_energy(self, this_fit_j: float | None, *, at_epoch_end: bool = False) -> None:
        """This fit's energy on all ranks since it started (``None``: not measured on some rank).

        At an epoch's end it is what a checkpoint saved now will carry into a resumed fit; at the fit's end
        ``fit_energy_j`` becomes the whole run's: the earlier fits up to the checkpoint resumed from, plus
        this one."""
        if at_epoch_end:
            self.fit_through_epoch_j = this_fit_j
            return
        earlier = self.earlier_fits_j
        self.fit_energy_j = None if earlier is None or this_fit_j is None else earlier + this_fit_j

    def finish_epoch(self, record: EpochRecord) -> EpochOutcome:
        """Add one epoch (summed over ranks) and project the run's total from it."""
        self.ledger.add(record)
        if self.budget.batches_per_epoch is None:  # iterable data: the first epoch's length
            self.budget = learn_epoch_length(self.budget, self.ledger.records)
            if self.window_series.unit_batches is None:  # no size yet (automatic): 1/20 of that epoch
                self.window_series.plan(self.budget, None)
        plan = self._projection_budget()
        if plan is None:
            return EpochOutcome(record, None)
        work = self._work(record)
        try:
            if record.energy_j is None:
                projection = self.projector.skip(record.duration_s, budget=plan, work=work)
            else:
                projection = self.projector.update(record.energy_j, record.duration_s, budget=plan, work=work)
        except Exception as exc:  # a projection never stops training, whatever the projector does
            self.warn(f"STEP projection failed at epoch {record.epoch}: {type(exc).__name__}: {exc}")
            return EpochOutcome(record, None)
        if not math.isfinite(projection.total_j):
            return EpochOutcome(record, None)
        point = projection_point(record.epoch, projection, planned_epochs=self.budget.total_epochs)
        self.projections.append(point)
        if self.stop is not None and projection.remaining_epochs is not None:
            expected = self.stop.expected(projection)
            if expected is not None:
                self.expected.append(expected_point(record.epoch, expected))
        return EpochOutcome(record, point)

    def refresh_expected(self, epoch: int) -> None:
        """The expected total after ``epoch`` again, from its projection and the stop forecast now: an
        evaluation read after the epoch's own metrics (logged in the module's ``on_train_epoch_end``)."""
        point = self.projections[-1] if self.projections else None
        if self.stop is None or point is None or point.epoch != epoch:
            return
        if point.projection.remaining_epochs is None:
            return
        expected = self.stop.expected(point.projection)
        if self.expected and self.expected[-1].epoch == epoch:
            self.expected.pop()
        if expected is not None:
            self.expected.append(expected_point(epoch, expected))

    def add_window(self, window: Window | None) -> WindowRecord | None:
        """Add the in-epoch window the metering core closed (``None``: none closed)."""
        if window is None:
            return None
        return self.close_window(
            epoch=window.epoch,
            step=window.step,
            time_s=window.time_s,
            batches=window.batches,
            energy_j=window.energy_j,
            duration_s=window.duration_s,
        )

    def close_window(
        self, *, epoch: int, step: int, time_s: float, batches: int, energy_j: float | None, duration_s: float
    ) -> WindowRecord | None:
        """Add one in-epoch window (see :class:`~lightning_energy.windows.WindowSeries`)."""
        window = self.window_series.close(
            self.budget,
            epoch=epoch,
            step=step,
            time_s=time_s,
            batches=batches,
            energy_j=energy_j,
            duration_s=duration_s,
        )
        if self.window_series.problem is not None:
            self.warn(self.window_series.problem)
        return window

    @property
    def windows(self) -> list[WindowRecord]:
        return self.window_series.records

    @property
    def window_batches(self) -> int | None:
        """Batches per in-epoch window, ``None`` when windows cannot be projected (unknown length)."""
        return self.window_series.unit_batches

    # ------------------------------------------------------------------------------------------ outputs
    @property
    def history(self) -> list[ProjectionPoint]:
        """Deprecated name of :attr:`projections` (STEP's projection after each epoch)."""
        warnings.warn("EnergyRun.history is deprecated: use EnergyRun.projections", DeprecationWarning, 2)
        return self.projections

    @property
    def last_projection(self) -> ProjectionPoint | None:
        return self.projections[-1] if self.projections else None

    def choose_unit(self, expected_total_j: float | None) -> BarUnit | None:
        """The progress-bar unit: chosen once, from the first usable expected total, then kept (a bar
        key that changed unit would leave the old one standing in the bar). ``None`` while unknown."""
        if self.unit is None:
            expected = finite(expected_total_j)
            if expected is None or expected <= 0:
                return None
            self.unit = bar_unit(expected)
        return self.unit

    def expected_total_j(self) -> float | None:
        """The best guess of the whole run's energy so far: the projection, else PRE."""
        if self.projections:
            return self.projections[-1].total_j
        if self.pre is not None and self.pre.available:
            return self.pre.total_j
        return None

    def latest_projected_j(self) -> float | None:
        """The latest projection of the whole run: the last window's when it was made inside an epoch later
        than the last epoch projection's, else the last epoch's (``None`` before any)."""
        last = self.last_projection
        window = next((w for w in reversed(self.windows) if w.total_j is not None), None)
        if window is not None and (last is None or window.epoch > last.epoch):
            return window.total_j
        return None if last is None else last.total_j

    def bar_metrics(
        self, live_total_j: float | None = None, extrapolated_j: float | None = None
    ) -> dict[str, float]:
        """Progress-bar figures in the run's unit: energy so far, projection, PRE (keys name the unit).

        ``live_total_j`` is the in-epoch energy so far (default: the measured epochs'); the projection is
        the latest one (:meth:`latest_projected_j`), never shown below the energy so far (the run uses at
        least what it has used). ``extrapolated_j`` (energy so far scaled to the planned work) only helps
        choose the unit when nothing better is known yet. Empty until a unit can be chosen.
        """
        projected_j = self.latest_projected_j()
        expected = projected_j if projected_j is not None else self.expected_total_j()
        chosen = self.choose_unit(expected if expected is not None else extrapolated_j)
        if chosen is None:
            return {}
        return bar_figures(
            chosen,
            so_far_j=live_total_j if live_total_j is not None else self.ledger.measured_total_j,
            projected_j=projected_j,
            # EarlyStopping: the expected total next to the max_epochs bound
            expected_j=self.expected[-1].total_j if self.expected else None,
            pre_j=self._pre_total_j(),
        )

    def _pre_total_j(self) -> float | None:
        """PRE's estimate of the whole run, ``None`` when there is none."""
        return self.pre.total_j if self.pre is not None and self.pre.available else None

    def epoch_metrics(self, outcome: EpochOutcome) -> dict[str, float]:
        """The metrics logged at an epoch's end (names and units: ``docs/callback.md``)."""
        point = outcome.projection
        expected = self.expected[-1] if self.expected else None
        if expected is not None and (point is None or expected.epoch != point.epoch):
            expected = None
        return epoch_metrics(
            self.ledger,
            outcome.record,
            point,
            expected=expected,
            pre_j=self._pre_total_j(),
            carbon=self.carbon,
        )

    def window_metrics(self, window: WindowRecord, live_total_j: float | None) -> dict[str, float]:
        """The metrics logged at a window's end (at the global step)."""
        return WindowSeries.metrics(window, live_total_j)

    def stability_line(self) -> str:
        """One line on STEP for the console (:func:`~lightning_energy.run_text.stability_line`)."""
        return stability_line(self.projections, self.budget, may_stop_early=bool(self.expected))

    def status(self, failed: bool = False) -> RunStatus:
        if failed:
            return "failed"
        return "partial" if self.ledger.missing_epochs or not self.ledger.measured else "complete"

    def report(self, status: RunStatus, facts: TrainerFacts | None = None, **keywords: Any) -> RunReport:
        """The typed report of the run as it stands, in the setting ``facts`` describes
        (:func:`~lightning_energy.run_report.build_report`; default: one rank, nothing known about the
        hardware). ``facts``' fields as keywords still work, deprecated."""
        return build_report(self, status, facts_from_keywords(facts, keywords))

    # -------------------------------------------------------------------------------------------- state
    def write_report(
        self,
        directory: str | os.PathLike[str],
        status: RunStatus,
        facts: TrainerFacts | None = None,
        *,
        built: RunReport | None = None,
        **keywords: Any,
    ) -> str | None:
        """Write ``energy_report.json`` and ``energy_epochs.csv`` (``facts`` as in :meth:`report`; ``built``:
        the report :meth:`report` returned for them, written as it is instead of built again); the warning to
        show when they were not written, else ``None``."""
        facts = facts_from_keywords(facts, keywords)
        return write_run_report(self, directory, status, facts, built)

    def state_dict(self) -> dict[str, Any]:
        return save_state(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the run saved by :meth:`state_dict` (version 1 checkpoints too), or raise
        :class:`RunStateError` and leave this run unchanged."""
        try:
            loaded = load_state(state)
            saved_stop = StopTracker.check_state(state.get("stop"))
            expected = [ExpectedPoint.from_json(e) for e in state.get("expected") or []]
        except RunStateError:
            raise
        except Exception as exc:  # any malformed field: the state as a whole is unreadable
            raise RunStateError(f"unreadable lightning_energy state ({type(exc).__name__}: {exc})") from exc
        self.projector.load_state_dict(loaded.projector_state)
        windows_problem = self.window_series.load_state_dict(loaded.window_state)
        self.ledger, self.projections, self.pre = loaded.ledger, loaded.projections, loaded.pre
        self.warnings, self.unit = loaded.warnings, loaded.unit
        self.started_at = loaded.started_at or self.started_at
        self.earlier_fits_j, self.fit_through_epoch_j = loaded.fit_energy_j, 0.0
        self.saved_stop, self.expected = saved_stop, expected
        if windows_problem is not None:
            self.warn(windows_problem)

    def load_or_start_afresh(self, state: Mapping[str, Any]) -> str | None:
        """:meth:`load_state_dict`, or keep this run (metering starts afresh) and return the warning."""
        try:
            self.load_state_dict(state)
        except RunStateError as exc:
            self.warn(f"checkpoint state not loaded: {exc}")
            return f"{exc}; energy metering starts afresh from this epoch"
        return None
