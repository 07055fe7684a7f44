"""The stop forecaster's constants: :class:`StopParams` and its shipped values (``stop_params.json``).

The defaults of :class:`~lightning_energy.step.stop.StopForecaster` are :meth:`StopParams.shipped`, the
values ``tools/fit_stop.py`` chose on the tuning curves. :data:`CORRECTION_FEATURES` names the features of
the learned correction (``StopParams.correction``;
:func:`~lightning_energy.step.stop_calibration.correction_features`). See ``docs/step.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lightning_energy._validate import finite_number

PARAMS_FILE = Path(__file__).with_name("stop_params.json")
# Features of the learned correction, in this order (``StopParams.correction`` uses the first ones; a
# coefficient of 0 leaves a feature out); see ``stop_calibration.correction_features``.
CORRECTION_FEATURES = (
    "prior_median",
    "model_median",
    "unstopped",
    "prior_median_x_log_misfit",
    "log_misfit",
    "no_misfit",
    "prior_median_x_no_misfit",
)


@dataclass(frozen=True)
class StopParams:
    """Constants of the stop forecaster (defaults: ``stop_params.json``, written by ``tools/fit_stop.py``).

    Attributes:
        draws: simulated futures per update.
        min_evaluations: no forecast before this many evaluations.
        recency: old evaluations weigh ``exp(-age / (recency x seen))`` in the fit (0: all weigh 1).
        noise_floor: the fit's noise is at least this times the series' robust second-difference noise.
        bootstrap: resample each fit's standardised residuals as the futures' noise (else normal noise).
        kappa_low: the model error's standard deviation on the log of the remaining evaluations, downward.
        kappa_high: the same, upward.
        horizon_factor: without ``max_evaluations`` futures are simulated up to ``horizon_factor x seen``
            evaluations (at least ``min_horizon`` more; at most ``max_horizon`` in all, unless that leaves
            fewer than ``seen`` more or fewer than ``min_horizon`` more than the patience;
            :func:`~lightning_energy.step.stop_simulation.horizon`).
        min_horizon: see ``horizon_factor``.
        max_horizon: see ``horizon_factor``.
        length_prior: the prior on the run's length ``T`` given ``seen`` evaluations weighs
            ``(seen / T) ^ length_prior`` (0: none; 1: scale-free; 2: the run is seen at a uniformly random
            point of its length, Gott's "Copernican" prior); see
            :func:`~lightning_energy.step.stop_calibration.weigh_by_length`.
        shapes: fit the delayed-rise families too (``sigmoid``: a delayed rise, a late drop or a jump;
            ``jump``: a jump then a slow creep); see :mod:`lightning_energy.step.curves`.
        offsets: fit the ``power``, ``log`` and ``drift`` families with their origin before the first
            evaluation too (a curve seen from a late first evaluation); see
            :mod:`lightning_energy.step.curves`.
        spread_power: the model error's spreads are scaled by ``(d / SPREAD_REF) ^ spread_power``, ``d`` the
            run's own spread of simulated stops (:func:`~lightning_energy.step.stop_calibration.run_spread`:
            how much the weighted curve families and the curve's noise disagree about the stop); 0 (the
            default): one spread for every run.
        correction: the learned re-centring of the simulated stops (empty, the default: none). The
            intercept then one coefficient for each of the first ``len(correction) - 1`` features of
            :data:`CORRECTION_FEATURES` (0 for a feature left out); the model predicts
            ``log(remaining / seen)`` (see :func:`~lightning_energy.step.stop_calibration.correct`).
        noise_memory: the futures' noise remembers (False, the default: independent normal noise at every
            evaluation): a first-order autoregression whose lag-1 correlation is estimated from each fit's
            own residuals and which starts from the fit's last residual (see
            :func:`~lightning_energy.step.stop_noise.start_memory`), so a curve that runs above its fit near
            the threshold stays above it for a while and crosses later.
        holdout_weight: how much the fitted (family, shape) pairs are reweighed by how well each, fitted
            to the run's first two thirds, forecasts its last third (0, the default: not at all; 1: by
            that held-out predictive likelihood); see :func:`~lightning_energy.step.stop_fit.holdout_reweigh`.
        series_noise: the futures' noise is the series' own evaluation-to-evaluation noise (a robust scale
            of its recent third differences) instead of each fitted pair's residual standard deviation,
            which also holds the fit's lack of fit (False, the default); see
            :mod:`lightning_energy.step.stop_noise`.
    """

    draws: int = 256
    min_evaluations: int = 3
    recency: float = 0.0
    noise_floor: float = 0.0
    bootstrap: bool = False
    kappa_low: float = 0.3
    kappa_high: float = 0.3
    horizon_factor: float = 10.0
    min_horizon: int = 100
    max_horizon: int = 5000
    length_prior: float = 0.0
    shapes: bool = False
    spread_power: float = 0.0
    offsets: bool = False
    correction: tuple[float, ...] = ()
    noise_memory: bool = False
    holdout_weight: float = 0.0
    series_noise: bool = False

    def __post_init__(self) -> None:
        for name, low, high in (
            ("draws", 16, 100_000),
            ("min_evaluations", 2, 10_000),
            ("min_horizon", 1, 10**6),
            ("max_horizon", 2, 10**7),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        for name in (
            "recency",
            "noise_floor",
            "kappa_low",
            "kappa_high",
            "horizon_factor",
            "length_prior",
            "holdout_weight",
        ):
            finite_number(name, getattr(self, name), minimum=0.0)
        finite_number("spread_power", self.spread_power)
        for name in ("bootstrap", "shapes", "offsets", "noise_memory", "series_noise"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.correction, tuple) or len(self.correction) > 1 + len(CORRECTION_FEATURES):
            raise TypeError(
                f"correction must be a tuple of at most {1 + len(CORRECTION_FEATURES)} numbers, "
                f"got {self.correction!r}"
            )
        for value in self.correction:
            finite_number("correction", value)

    @classmethod
    def shipped(cls) -> StopParams:
        """The constants chosen on the tuning data (``stop_params.json``)."""
        data = json.loads(PARAMS_FILE.read_text())
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data["params"].items():
            if key in names:
                values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)
