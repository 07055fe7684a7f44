"""The expected total energy of a run that an ``EarlyStopping`` callback may end early (pure numpy).

:func:`expected_total` combines STEP's projection to the ``max_epochs`` bound (:class:`Projection`: the
energy per remaining epoch and its interval) with the stop forecast (:class:`StopForecast`: the number of
evaluations, mapped to epochs by :class:`EvalSchedule`). Both uncertainties are combined by sampling: every
simulated stop of the forecast is paired with an energy-per-epoch factor drawn from the projection's
interval (log-normal, each side its own spread), and the expected total is the median of
``measured + rate x factor x remaining epochs``, the interval its 5 % and 95 % quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lightning_energy.step.analysis import normal_quantile
from lightning_energy.step.hints import EvalSchedule
from lightning_energy.step.projection import Projection
from lightning_energy.step.stop import StopForecast


@dataclass(frozen=True)
class ExpectedTotal:
    """The expected total energy (J) with a 90 % interval, and the predicted stop in epochs."""

    total_j: float
    low_j: float
    high_j: float
    stop_epoch: float
    stop_epoch_low: float
    stop_epoch_high: float | None  # None: the top of the stop interval lies beyond the forecast's horizon
    bound_j: float  # the projection to the max_epochs bound, for comparison


def expected_total(
    projection: Projection,
    forecast: StopForecast,
    schedule: EvalSchedule,
    *,
    seed: int = 0,
    min_epochs: float = 0.0,
) -> ExpectedTotal | None:
    """The expected total, or ``None`` when the forecast cannot tell or the projection has no total.

    ``projection`` must project to an epoch budget (``remaining_epochs`` set); the stop is capped at it.
    ``min_epochs`` (the Trainer's) floors the stop epoch: a rule that fired earlier ends the fit at the
    first epoch boundary where ``min_epochs`` is met, which need not be an evaluation's epoch.
    """
    if projection.remaining_epochs is None or not math.isfinite(projection.total_j):
        return None
    if not math.isfinite(min_epochs) or min_epochs < 0:
        raise ValueError(f"min_epochs must be a finite number >= 0, got {min_epochs!r}")
    seen_epochs = float(projection.epochs_seen)
    bound_epochs = seen_epochs + projection.remaining_epochs

    def epoch_of(evaluations: float) -> float:
        return min(max(schedule.epochs_at(evaluations), min_epochs), bound_epochs)

    if forecast.stopped:
        stop = epoch_of(forecast.seen)
        if stop <= seen_epochs:
            return ExpectedTotal(
                projection.measured_j, projection.measured_j, projection.measured_j, stop, stop, stop,
                projection.total_j,
            )  # fmt: skip
        # the rule fired, but the fit goes on to min_epochs: the epochs until then are still to come
        samples: tuple[float, ...] = (float(forecast.seen),) * 512
        point, low_n = float(forecast.seen), float(forecast.seen)
        top: float | None = point
    elif forecast.epochs is None or forecast.low is None or not forecast.samples:
        return None
    else:
        samples = tuple(forecast.samples)
        point, low_n, top = float(forecast.epochs), float(forecast.low), forecast.high
    stops = np.array([epoch_of(s) for s in samples])
    left = np.maximum(stops - seen_epochs, 0.0)
    remaining_j = projection.total_j - projection.measured_j
    rate = remaining_j / projection.remaining_epochs if projection.remaining_epochs > 0 else 0.0
    z = normal_quantile(0.5 + projection.confidence / 2.0)
    sd_low = math.log(max(projection.total_j, 1e-300) / max(projection.low_j, 1e-300)) / z
    sd_high = math.log(max(projection.high_j, 1e-300) / max(projection.total_j, 1e-300)) / z
    # the projection's interval is on the total; on the remaining energy it is wider by total / remaining
    scale = projection.total_j / remaining_j if remaining_j > 0 else 0.0
    eps = np.random.default_rng([seed, projection.epochs_seen]).standard_normal(left.size)
    factor = np.exp(np.clip(np.where(eps < 0, sd_low, sd_high) * scale * eps, -5.0, 5.0))
    totals = projection.measured_j + rate * factor * left
    low, mid, high = np.quantile(totals, [0.05, 0.5, 0.95])
    return ExpectedTotal(
        total_j=float(mid),
        low_j=float(max(low, projection.measured_j)),
        high_j=float(high),
        stop_epoch=epoch_of(point),
        stop_epoch_low=epoch_of(low_n),
        stop_epoch_high=None if top is None else epoch_of(top),
        bound_j=projection.total_j,
    )
