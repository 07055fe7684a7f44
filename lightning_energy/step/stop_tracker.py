"""The run's stop forecast, fed by the Lightning adapter with plain values (pure; no torch, no Lightning).

:class:`StopTracker` owns a :class:`StopForecaster` and the evaluation schedule; :meth:`StopTracker.evaluate`
takes each value of the monitored metric, :meth:`StopTracker.expected` turns STEP's projection to the
``max_epochs`` bound into the expected total (:func:`~lightning_energy.step.expected.expected_total`). A
failure of the forecast never stops training: it is kept as :attr:`StopTracker.problem`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_energy.step.expected import ExpectedTotal, expected_total
from lightning_energy.step.hints import EvalSchedule
from lightning_energy.step.projector import Projection
from lightning_energy.step.stop import StopForecast, StopForecaster


@dataclass(frozen=True)
class StopSettings:
    """An ``EarlyStopping`` callback's settings, as plain values (``min_delta`` >= 0)."""

    monitor: str
    mode: str = "min"
    patience: int | None = 3
    min_delta: float = 0.0
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None


class StopTracker:
    """The stop forecast of one fit (see the module docstring)."""

    def __init__(self, settings: StopSettings, schedule: EvalSchedule, max_epochs: int | None) -> None:
        self.settings = settings
        self.schedule = schedule
        bound = None if max_epochs is None else max(schedule.evaluations_in(max_epochs), 1)
        self.forecaster = StopForecaster(
            settings.mode,
            settings.stopping_threshold,
            settings.patience,
            settings.min_delta,
            settings.divergence_threshold,
            max_evaluations=bound,
        )
        self.forecast: StopForecast | None = None
        self.problem: str | None = None

    def evaluate(self, value: float) -> StopForecast | None:
        """One evaluation of the monitored metric; the forecast, or ``None`` once the forecast failed."""
        if self.problem is not None or (self.forecast is not None and self.forecast.stopped):
            return self.forecast
        try:
            self.forecast = self.forecaster.update(float(value))
        except (TypeError, ValueError) as exc:
            self.problem = f"stop forecast failed: {exc}"
        return self.forecast

    def expected(self, projection: Projection) -> ExpectedTotal | None:
        """The expected total from ``projection`` (to the ``max_epochs`` bound) and the last forecast."""
        if self.forecast is None or self.problem is not None:
            return None
        return expected_total(projection, self.forecast, self.schedule)
