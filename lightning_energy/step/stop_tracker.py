"""The run's stop forecast, fed by the Lightning adapter with plain values (pure; no torch, no Lightning).

:class:`StopTracker` owns a :class:`StopForecaster` and the evaluation schedule; :meth:`StopTracker.evaluate`
takes each value of the monitored metric, :meth:`StopTracker.expected` turns STEP's projection to the
``max_epochs`` bound into the expected total (:func:`~lightning_energy.step.expected.expected_total`). A
failure of the forecast never stops training: it is kept as :attr:`StopTracker.problem`.

Its state (:meth:`StopTracker.state_dict`) is the monitored metric's name and every value fed so far: a
resumed run replays them (:meth:`StopTracker.load_state_dict`), so the forecast goes on where it was, under
the ``EarlyStopping`` settings of the resumed Trainer. :meth:`StopTracker.check_state` validates a saved
state before anything is changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lightning_energy.step.expected import ExpectedTotal, expected_total
from lightning_energy.step.hints import EvalSchedule
from lightning_energy.step.projection import Projection
from lightning_energy.step.stop import StopForecast, StopForecaster

STATE_VERSION = 1
MAX_SAVED_VALUES = 1_000_000  # a saved state with more evaluations than this is damaged


@dataclass(frozen=True)
class StopSettings:
    """An ``EarlyStopping`` callback's settings, as plain values (``min_delta`` >= 0).

    ``at_train_epoch_end``: the callback checks the metric at the end of every training epoch (Lightning's
    ``check_on_train_epoch_end``, resolved), not after each validation. ``check_finite``: a non-finite value
    stops the run (else it is no improvement).
    """

    monitor: str
    mode: str = "min"
    patience: int | None = 3
    min_delta: float = 0.0
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None
    at_train_epoch_end: bool = False
    check_finite: bool = True


@dataclass(frozen=True)
class SavedStop:
    """A validated saved state: the monitored metric and its values, oldest first (NaN: not finite)."""

    monitor: str
    values: tuple[float, ...]


class StopTracker:
    """The stop forecast of one fit (see the module docstring).

    ``max_epochs`` bounds the run; ``min_epochs`` (the Trainer's, as its fit loop resolved it) holds a run
    whose rule fired earlier to the evaluations the schedule makes in that many epochs (Lightning keeps
    ``should_stop`` set and ends the fit at the first epoch boundary where ``min_epochs`` is met), and
    ``min_batches`` (the Trainer's ``min_steps`` in training batches, :func:`batches_for_steps`) to the
    evaluations made when the fit ends at that batch (:meth:`EvalSchedule.evaluations_at_stop`).
    """

    def __init__(
        self,
        settings: StopSettings,
        schedule: EvalSchedule,
        max_epochs: int | None,
        *,
        min_epochs: int | None = None,
        min_batches: int | None = None,
    ) -> None:
        self.settings = settings
        self.schedule = schedule
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.min_batches = min_batches
        self.forecaster = self._new_forecaster()
        self.forecast: StopForecast | None = None
        self.problem: str | None = None
        self.values: list[float] = []
        self.reads_late: bool | None = None  # the metric is logged after the epoch-end read (decided once)
        self.pending_epoch: int | None = None  # the epoch whose evaluation is read at the next hook

    def fresh(self) -> StopTracker:
        """A tracker with the same settings that has seen nothing (and has not yet decided where to read)."""
        return StopTracker(
            self.settings,
            self.schedule,
            self.max_epochs,
            min_epochs=self.min_epochs,
            min_batches=self.min_batches,
        )

    def _new_forecaster(self, used: StopForecaster | None = None) -> StopForecaster:
        """A forecaster of these settings that has seen nothing (``used``'s constants and seed when given)."""
        s = self.settings
        bound = None if self.max_epochs is None else max(self.schedule.evaluations_in(self.max_epochs), 1)
        return StopForecaster(
            s.mode,
            s.stopping_threshold,
            s.patience,
            s.min_delta,
            s.divergence_threshold,
            max_evaluations=bound,
            check_finite=s.check_finite,
            min_evaluations=self.min_evaluations(),
            params=None if used is None else used.params,
            seed=0 if used is None else used.seed,
        )

    def min_evaluations(self) -> int | None:
        """The evaluation the run is held to after an early firing (``None``: none), from ``min_epochs``
        and ``min_batches`` (both must be met, as Lightning's ``_can_stop_early`` requires)."""
        lows = [0]
        if self.min_epochs:
            lows.append(self.schedule.evaluations_in(self.min_epochs))
        if self.min_batches:
            lows.append(self.schedule.evaluations_at_stop(self.min_batches) or 0)
        return max(lows) or None

    def evaluate(self, value: float) -> StopForecast | None:
        """One evaluation of the monitored metric; the forecast, or ``None`` once the forecast failed.

        A value after a stopped forecast is fed too: the run went on (see :meth:`StopForecaster.update`).
        """
        if self.problem is not None:
            return self.forecast
        try:
            value = float(value)
            self.forecast = self.forecaster.update(value)
            self.values.append(value)
        except (TypeError, ValueError) as exc:
            self.problem = f"stop forecast failed: {exc}"
        return self.forecast

    def at_epoch_end(self, epoch: int, value: float | None) -> None:
        """The monitored value as it stands when the energy callback's ``on_train_epoch_end`` runs.

        Lightning calls that hook before the module's ``on_train_epoch_end`` (``EarlyStopping`` reads the
        metric after it): a metric missing here at the first epoch end is one the module logs there, and
        every epoch's evaluation is then read at the next hook (:meth:`after_epoch_end`), attributed to
        ``epoch``. A metric present here is fed now.
        """
        if self.reads_late is None:
            self.reads_late = value is None
        if self.reads_late:
            self.pending_epoch = epoch
        elif value is not None:
            self.evaluate(value)

    def after_epoch_end(self, value: float | None) -> int | None:
        """At the first hook after the module's ``on_train_epoch_end`` (the next epoch's start, the fit's
        end): the pending epoch's evaluation. Returns that epoch when a value was fed, else ``None``."""
        epoch, self.pending_epoch = self.pending_epoch, None
        if epoch is None or value is None:
            return None
        self.evaluate(value)
        return epoch

    def expected(self, projection: Projection) -> ExpectedTotal | None:
        """The expected total from ``projection`` (to the ``max_epochs`` bound) and the last forecast."""
        if self.forecast is None or self.problem is not None:
            return None
        floor = float(self.min_epochs or 0)
        return expected_total(projection, self.forecast, self.schedule, min_epochs=floor)

    # ----------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Plain state: the monitored metric and every value fed (a non-finite one is stored as ``None``)."""
        return {
            "version": STATE_VERSION,
            "monitor": self.settings.monitor,
            "values": [v if math.isfinite(v) else None for v in self.values],
        }

    @staticmethod
    def check_state(state: object) -> SavedStop | None:
        """The validated saved state (``None``: none); else ``ValueError`` or ``TypeError`` saying why."""
        if state is None:
            return None
        if not isinstance(state, Mapping):
            raise TypeError(f"the saved stop forecast is a {type(state).__name__}, not a mapping")
        version = state.get("version")
        if isinstance(version, bool) or version != STATE_VERSION:
            raise ValueError(
                f"the saved stop forecast has version {version!r}; this release reads {STATE_VERSION}"
            )
        monitor = state.get("monitor")
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"the saved stop forecast's monitor must be a non-empty str, got {monitor!r}")
        raw = state.get("values")
        if not isinstance(raw, list | tuple):
            raise TypeError(f"the saved stop forecast's values must be a list, got {type(raw).__name__}")
        if len(raw) > MAX_SAVED_VALUES:
            raise ValueError(f"the saved stop forecast holds {len(raw)} values (at most {MAX_SAVED_VALUES})")
        values = []
        for i, v in enumerate(raw):
            if v is None:
                values.append(math.nan)
            elif isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(f"the saved stop forecast's value {i} must be a number or None, got {v!r}")
            elif not math.isfinite(v):
                raise ValueError(f"the saved stop forecast's value {i} is {v!r} (a non-finite one is None)")
            else:
                values.append(float(v))
        return SavedStop(monitor, tuple(values))

    def load_state_dict(self, saved: SavedStop) -> str | None:
        """Replay a saved state (from :meth:`check_state`) into this fresh tracker: the forecast goes on.

        Returns a one-line note when the state was not used (another monitored metric, or a replay that
        failed), else ``None``; this tracker then starts afresh. Values after a stop of this tracker's rule
        (a resumed run under other ``EarlyStopping`` settings) replay as a run that went on.
        """
        if self.values or self.forecast is not None:
            raise ValueError("load_state_dict needs a tracker that has seen nothing")
        if saved.monitor != self.settings.monitor:
            return (
                f"the saved stop forecast monitored {saved.monitor!r}, this run monitors "
                f"{self.settings.monitor!r}: the forecast starts afresh"
            )
        fresh = self.forecaster
        try:
            self.forecast = self.forecaster.replay(saved.values)
        except (TypeError, ValueError) as exc:  # as evaluate: a failed forecast never stops training
            self.forecaster, self.forecast = self._new_forecaster(fresh), None
            return f"the saved stop forecast was not used ({exc}): the forecast starts afresh"
        self.values = list(saved.values)
        return None
