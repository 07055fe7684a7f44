"""STEP: detect the stable energy per unit (epoch, or window of steps) online and project the run's total.

Pure numpy: :mod:`~lightning_energy.step.analysis` holds the small pure functions (``analyse``,
``is_stable``, the interval), :mod:`~lightning_energy.step.params` the tuning constants (one frozen
:class:`StepParams`), :mod:`~lightning_energy.step.projector` the online :class:`StepProjector`,
:mod:`~lightning_energy.step.projection` the :class:`Projection` it returns and how it is made;
:mod:`~lightning_energy.step.stop` the :class:`StopForecaster` (when an ``EarlyStopping`` run will stop),
:mod:`~lightning_energy.step.hints` the announced change points and the evaluation schedule,
:mod:`~lightning_energy.step.expected` the expected total of a run that may stop early.
See ``docs/step.md`` for the method and how the constants were chosen.
"""

from __future__ import annotations

from lightning_energy.step.analysis import (
    Analysis,
    analyse,
    block_sigma,
    is_stable,
    lag1_autocorrelation,
    regime_start,
    robust_sigma,
    seasonal_period,
)
from lightning_energy.step.expected import ExpectedTotal, expected_total
from lightning_energy.step.hints import EvalSchedule, KnownChange, known_changes
from lightning_energy.step.params import StepParams
from lightning_energy.step.projection import PROJECTION_METHODS, Projection, ProjectionMethod
from lightning_energy.step.projector import StepProjector
from lightning_energy.step.stop import StopForecast, StopForecaster, StopParams
from lightning_energy.step.stop_rule import StopRule

__all__ = [
    "PROJECTION_METHODS",
    "Analysis",
    "EvalSchedule",
    "ExpectedTotal",
    "KnownChange",
    "Projection",
    "ProjectionMethod",
    "StepParams",
    "StepProjector",
    "StopForecast",
    "StopForecaster",
    "StopParams",
    "StopRule",
    "analyse",
    "block_sigma",
    "expected_total",
    "is_stable",
    "known_changes",
    "lag1_autocorrelation",
    "regime_start",
    "robust_sigma",
    "seasonal_period",
]
