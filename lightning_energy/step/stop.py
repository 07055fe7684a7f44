"""Forecast when an ``EarlyStopping`` run will stop, from the monitored metric seen so far (pure numpy).

:class:`StopForecaster` is fed the monitored value once per evaluation. It fits a weighted set of learning
curve families (:mod:`lightning_energy.step.curves`; reweighed by a backtest on the run itself,
:mod:`lightning_energy.step.stop_fit`), draws futures of the curve with noise, runs the
stopping rule (:mod:`lightning_energy.step.stop_rule`) on each, and returns a :class:`StopForecast`: the
predicted number of evaluations of the whole run (counting those done) with a 90 % interval. The interval is
calibrated: the remaining evaluations of every simulated stop are spread on the log scale by a normal
error (the curve model's own error), of standard deviation ``kappa_low`` downward and ``kappa_high``
upward, both fitted on tuning curves
(``tools/fit_stop.py``; ``stop_params.json``). Before that, a learned correction (``correction``) can
re-centre the simulated stops: a linear model of the log of the remaining evaluations on features of the
curve model's own forecast and on how well the curve families fit the run (:func:`correction_features`,
:func:`~lightning_energy.step.stop_noise.misfit_ratio`), fitted on tuning curves. The families' weights
can be tested on the run itself (``holdout_weight``, :func:`holdout_reweigh`: each family refitted on the
first two thirds of the evaluations and scored on the last third), the futures' noise can remember
(``noise_memory``, :func:`start_memory`: a first-order autoregression) and can be the series' own
evaluation-to-evaluation noise rather than the fits' residuals (``series_noise``,
:mod:`lightning_energy.step.stop_noise`). See ``docs/step.md``.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lightning_energy._validate import finite_number
from lightning_energy.step.curves import (
    REL_NOISE_FLOOR,
    CurveFit,
    DesignGroup,
    Draws,
    best_fit,
    draw_curves,
    fit_all,
    future_values,
    mean_curve,
)
from lightning_energy.step.stop_fit import holdout_scores
from lightning_energy.step.stop_noise import misfit_ratio, with_series_noise
from lightning_energy.step.stop_rule import Paths, RuleState, StopRule, advance, simulate_chunk

PARAMS_FILE = Path(__file__).with_name("stop_params.json")
CONFIDENCE = 0.9
SPREAD_REF = 0.5  # a run spread (log scale) at which the spreads are kappa_low / kappa_high
SPREAD_CLIP = (0.1, 10.0)  # bounds of the run-dependent factor on the spreads
CHUNK = 32  # evaluations simulated at once; doubled until every future stopped or the horizon
# Features of the learned correction, in this order (``StopParams.correction`` uses the first ones; a
# coefficient of 0 leaves a feature out); see :func:`correction_features`.
CORRECTION_FEATURES = (
    "prior_median",
    "model_median",
    "unstopped",
    "prior_median_x_log_misfit",
    "log_misfit",
    "no_misfit",
    "prior_median_x_no_misfit",
)
MISFIT_LOG_CLIP = (0.0, 3.0)  # log of the misfit ratio as a feature: below 1 is estimation noise; 20 at most
MIN_MEMORY_POINTS = 6  # residuals needed to estimate the noise's lag-1 correlation (else independent)
MAX_RHO = 0.95  # the estimated lag-1 correlation is clipped to [0, MAX_RHO]
HOLDOUT_SHARE = 1.0 / 3.0  # the last share of the evaluations seen that the reweighing holds out
MIN_HOLDOUT_FIT = 6  # evaluations the refit before the held-out ones needs (fewer: no reweighing)


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
            fewer than ``seen`` more or fewer than ``min_horizon`` more than the patience; :func:`horizon`).
        min_horizon: see ``horizon_factor``.
        max_horizon: see ``horizon_factor``.
        length_prior: the prior on the run's length ``T`` given ``seen`` evaluations weighs
            ``(seen / T) ^ length_prior`` (0: none; 1: scale-free; 2: the run is seen at a uniformly random
            point of its length, Gott's "Copernican" prior); see :func:`weigh_by_length`.
        shapes: fit the delayed-rise families too (``sigmoid``: a delayed rise, a late drop or a jump;
            ``jump``: a jump then a slow creep); see :mod:`lightning_energy.step.curves`.
        offsets: fit the ``power``, ``log`` and ``drift`` families with their origin before the first
            evaluation too (a curve seen from a late first evaluation); see
            :mod:`lightning_energy.step.curves`.
        spread_power: the model error's spreads are scaled by ``(d / SPREAD_REF) ^ spread_power``, ``d`` the
            run's own spread of simulated stops (:func:`run_spread`: how much the weighted curve families
            and the curve's noise disagree about the stop); 0 (the default): one spread for every run.
        correction: the learned re-centring of the simulated stops (empty, the default: none). The
            intercept then one coefficient for each of the first ``len(correction) - 1`` features of
            :data:`CORRECTION_FEATURES` (0 for a feature left out); the model predicts
            ``log(remaining / seen)`` (see :func:`correct`).
        noise_memory: the futures' noise remembers (False, the default: independent normal noise at every
            evaluation): a first-order autoregression whose lag-1 correlation is estimated from each fit's
            own residuals and which starts from the fit's last residual (see :func:`start_memory`), so a
            curve that runs above its fit near the threshold stays above it for a while and crosses later.
        holdout_weight: how much the fitted (family, shape) pairs are reweighed by how well each, fitted
            to the run's first two thirds, forecasts its last third (0, the default: not at all; 1: by
            that held-out predictive likelihood); see :func:`holdout_reweigh`.
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


@dataclass(frozen=True)
class StopForecast:
    """The forecast after ``seen`` evaluations.

    ``epochs`` is the predicted number of evaluations of the whole run (counting those done), ``None``
    while the forecaster cannot tell (too few evaluations, or most simulated futures do not stop within
    the simulated horizon); ``[low, high]`` a 90 % interval (``high`` is ``None`` when the interval's top
    lies beyond the horizon). ``stopped`` says the run ends at the last value (the rule fired there, or
    fired earlier and the run was held to the minimum, or the bound is reached). ``reason`` is one line.
    """

    seen: int
    epochs: int | None
    low: int | None
    high: int | None
    stopped: bool
    reason: str
    samples: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def p_stop_before(self, n: int) -> float:
        """Probability that the run stops before ``n`` evaluations (ends with fewer than ``n``)."""
        n = int(finite_number("n", n))
        if self.stopped:
            return 1.0 if self.seen < n else 0.0
        if n <= self.seen + 1 or not self.samples:
            return 0.0 if self.samples or n <= self.seen + 1 else math.nan
        return bisect.bisect_left(self.samples, n) / len(self.samples)


class StopForecaster:
    """Online forecast of the number of evaluations an ``EarlyStopping`` run will make.

    Args:
        mode: ``"min"`` or ``"max"``, as the ``EarlyStopping`` callback.
        stopping_threshold: stop as soon as the value is past it (better).
        patience: stop after this many evaluations without an improvement larger than ``min_delta``.
        min_delta: the smallest change that counts as an improvement (>= 0).
        divergence_threshold: stop as soon as the value is past it (worse).
        max_evaluations: a bound on the number of evaluations (``max_epochs`` mapped to evaluations).
        check_finite: a non-finite value stops the run (``EarlyStopping(check_finite=...)``); without it
            a non-finite value is compared as the callback compares it (a NaN is no improvement) and is
            left out of the curve fit.
        min_evaluations: a firing before this many evaluations does not end the run, which goes on to it
            (``min_epochs`` mapped to evaluations; :class:`~lightning_energy.step.stop_rule.StopRule`).
        params: constants (default: :meth:`StopParams.shipped`).
        seed: seed of the simulation, >= 0 (the forecasts are deterministic for a given seed).
    """

    def __init__(
        self,
        mode: str = "min",
        stopping_threshold: float | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
        divergence_threshold: float | None = None,
        *,
        max_evaluations: int | None = None,
        check_finite: bool = True,
        min_evaluations: int | None = None,
        params: StopParams | None = None,
        seed: int = 0,
    ) -> None:
        self.rule = StopRule(
            mode=mode,
            stopping_threshold=stopping_threshold,
            patience=patience,
            min_delta=min_delta,
            divergence_threshold=divergence_threshold,
            max_evaluations=max_evaluations,
            check_finite=check_finite,
            min_evaluations=min_evaluations,
        )
        if params is not None and not isinstance(params, StopParams):
            raise TypeError(f"params must be a StopParams or None, got {type(params).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed!r}")
        self.params = StopParams.shipped() if params is None else params
        self.seed = seed
        self._state = RuleState()
        self._z: list[float] = []
        self._went_on: int | None = None  # the last evaluation at which the run stopped and then went on

    @classmethod
    def from_rule(cls, rule: StopRule, *, params: StopParams | None = None, seed: int = 0) -> StopForecaster:
        """A forecaster for the settings of ``rule`` (every field of it, bounds included)."""
        return cls(
            rule.mode,
            rule.stopping_threshold,
            rule.patience,
            rule.min_delta,
            rule.divergence_threshold,
            max_evaluations=rule.max_evaluations,
            check_finite=rule.check_finite,
            min_evaluations=rule.min_evaluations,
            params=params,
            seed=seed,
        )

    @property
    def seen(self) -> int:
        """Evaluations seen so far."""
        return self._state.evaluations

    def update(self, value: float) -> StopForecast:
        """Add one evaluation of the monitored metric and forecast the stop.

        A value after a stop means the run went on (the Trainer's ``should_stop`` was reset outside
        ``EarlyStopping``): the rule carries on from its best and wait, as ``EarlyStopping`` does, and the
        forecast goes on (its ``reason`` says so).
        """
        self._add(value)
        return self._forecast()

    def replay(self, values: Iterable[float]) -> StopForecast | None:
        """Feed ``values`` (a resumed run's evaluations, oldest first) and forecast once, after the last.

        The same forecast as :meth:`update` on the last value; ``None`` when ``values`` is empty. A value
        after a stop means the run went on, as in :meth:`update`.
        """
        fed = 0
        for value in values:
            self._add(value)
            fed += 1
        return self._forecast() if fed else None

    def _add(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"value must be a number, got {value!r}")
        if self._state.stopped:
            self._went_on = self._state.evaluations
        self._state = advance(self.rule, self._state, float(value))
        if math.isfinite(float(value)):
            self._z.append(self.rule.sign * float(value))

    def _forecast(self) -> StopForecast:
        state, rule = self._state, self.rule
        went_on = (
            "" if self._went_on is None else f"the run went on after its stop at evaluation {self._went_on}; "
        )
        if state.stopped:
            n = state.evaluations
            return StopForecast(n, n, n, n, True, f"{went_on}stopped at evaluation {n}: {state.why}")
        if state.pending:  # should_stop is set: the run ends where the minimum holds it to
            m = rule.hold
            why = f"the rule fired at evaluation {state.fired_at} ({state.why}); the minimum holds the run"
            draws = (float(m),) * self.params.draws
            return StopForecast(
                state.evaluations, m, m, m, False, f"{went_on}stop at evaluation {m}: {why}", draws
            )
        if rule.hold <= state.evaluations + 1:
            out = forecast(rule, state, np.asarray(self._z), self.params, self.seed)
            return dataclasses.replace(out, reason=went_on + out.reason) if went_on else out
        # the rule's firing is forecast on its own; a firing before the minimum ends the run at the minimum
        free = dataclasses.replace(rule, min_evaluations=None)
        out = forecast(free, state, np.asarray(self._z), self.params, self.seed)
        if out.epochs is None:  # too few evaluations, or most simulated runs go on past the horizon
            return dataclasses.replace(out, reason=went_on + out.reason)
        samples = np.maximum(np.asarray(out.samples), float(rule.hold))
        mid, low, high = summarise(samples, state.evaluations)
        top = "beyond the horizon" if high is None else str(high)
        reason = (
            f"{went_on}stop predicted at evaluation {mid} [{low}, {top}], not before evaluation {rule.hold} "
            f"(the minimum); the rule alone: {out.reason}"
        )
        return StopForecast(
            state.evaluations, mid, low, high, False, reason, tuple(float(v) for v in samples)
        )


def noise_scale(z: np.ndarray) -> float:
    """Robust unit noise of a curve from the second differences of its recent half (0 below 4 points)."""
    recent = z[-max(4, z.size // 2) :]
    if recent.size < 4:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(recent, 2))) / math.sqrt(6.0))


def resolution(z: np.ndarray) -> float:
    """The smallest noise a fit is given: ``REL_NOISE_FLOOR`` of the curve's range (0 for a constant one).

    A pair that fits ``z`` exactly (two coefficients on two evaluations, a noiseless curve) leaves a
    residual of rounding errors only; without this floor its noise and its BIC weight against the other
    exact pairs would be decided by those rounding errors, which change when the metric is scaled or
    shifted. Relative to the curve's range the floor is unchanged by a positive scale and a shift of the
    metric (and of the rule's thresholds with it), and it is far below any real noise."""
    if z.size == 0:
        return 0.0
    spread = float(np.max(z) - np.min(z))
    return REL_NOISE_FLOOR * spread


def horizon(rule: StopRule, seen: int, params: StopParams) -> int:
    """Evaluations simulated beyond ``seen``: up to ``max_evaluations``, else up to ``horizon_factor x seen``
    evaluations in all (at least ``min_horizon`` more), at most ``max_horizon`` in all unless that leaves
    fewer than ``seen`` more or fewer than ``min_horizon`` more than the rule's patience.

    ``max_horizon`` bounds the cost of simulating far ahead of a short run; a long run (thousands of
    evaluations) is still simulated as far ahead again as it has run (the cost stays of the order of its
    fit's) and far enough for its patience to run out, so that its forecast does not shrink to "cannot
    tell" as it nears ``max_horizon``."""
    if rule.max_evaluations is not None:
        return max(rule.max_evaluations - seen, 0)
    total = max(int(params.horizon_factor * seen), seen + params.min_horizon)
    cap = max(params.max_horizon, 2 * seen, seen + params.min_horizon + (rule.patience or 0))
    return min(total, cap) - seen


def raw_stop_samples(
    rule: StopRule, state: RuleState, z: np.ndarray, params: StopParams, seed: int
) -> tuple[np.ndarray, list[CurveFit]] | None:
    """Simulated stop evaluations (``inf``: beyond the horizon) and the fits; ``None`` with too few points."""
    seen = state.evaluations
    if z.size < params.min_evaluations:
        return None
    noise = max(params.noise_floor * noise_scale(z), resolution(z))
    fits = fitted(z, params, noise)
    if not fits:
        return None
    if params.series_noise:
        fits = with_series_noise(fits, z)
    rng = np.random.default_rng([seed, seen])
    curves = draw_curves(fits, z.size, params.draws, rng)
    memory = start_memory(curves, z) if params.noise_memory else None
    paths = Paths.start(state, params.draws)
    steps = horizon(rule, seen, params)
    chunk = CHUNK
    while paths.evaluations < seen + steps and paths.running.any():
        size = min(chunk, seen + steps - paths.evaluations)
        if memory is None:
            block = future_values(curves, paths.evaluations, size, rng)
        else:
            block = memory_values(curves, memory, paths.evaluations, size, rng)
        simulate_chunk(rule, paths, block)
        chunk *= 2
    return paths.stop_at, fits


def fitted(z: np.ndarray, params: StopParams, noise: float) -> list[CurveFit]:
    """The (family, shape) pairs :func:`~lightning_energy.step.curves.fit_curves` fits to ``z``, reweighed
    by :func:`holdout_reweigh` when ``holdout_weight`` > 0 (empty when none can be fitted): the same values,
    bit for bit, in a few batched solves (:func:`~lightning_energy.step.curves.fit_all`) that keep the
    pairs' designs for the held-out refits."""
    fast = fit_all(z, params.recency, noise, params.bootstrap, params.shapes, params.offsets)
    if fast is None:
        return []
    held = holdout_size(int(z.size))
    if params.holdout_weight <= 0.0 or held is None:
        return fast.curve_fits()
    scores = holdout_scores(fast.groups, len(fast.families), z, held, params.recency, noise)
    return fast.curve_fits(reweighed(fast.weights, scores, params.holdout_weight))


def holdout_size(n: int) -> int | None:
    """Evaluations of ``n`` the reweighing holds out (``None``: fewer than ``MIN_HOLDOUT_FIT`` left)."""
    held = max(round(HOLDOUT_SHARE * n), 1)
    return held if n - held >= MIN_HOLDOUT_FIT else None


def reweighed(weights: np.ndarray, scores: np.ndarray, holdout_weight: float) -> np.ndarray | None:
    """``weights`` times ``exp(holdout_weight x (score - best score))``, normalised; ``None`` (keep the
    weights) when no score is finite or no weight is left."""
    if not np.isfinite(scores).any():
        return None
    out = weights * np.exp(holdout_weight * (scores - scores.max()))
    total = float(out.sum())
    if not math.isfinite(total) or total <= 0.0:
        return None
    return out / total


def holdout_reweigh(fits: list[CurveFit], z: np.ndarray, params: StopParams, noise: float) -> list[CurveFit]:
    """``fits`` reweighed by how well each (family, shape) pair forecasts the run's own recent past.

    Every pair's design, exactly as fitted to all of ``z`` (its shape and origin in evaluations), is fitted
    again to the first ``1 - HOLDOUT_SHARE`` of ``z`` (the same recency weighting and noise floor) and
    scored by the log predictive density of the held-out last evaluations (normal: the pair's noise plus
    its coefficients' uncertainty; :func:`~lightning_energy.step.stop_fit.holdout_scores`); each weight is
    multiplied by ``exp(holdout_weight x (score - best))`` and the weights normalised. A pair that
    extrapolated badly on this run loses weight; the coefficients are those of the fit to all of ``z``.
    Unchanged below ``MIN_HOLDOUT_FIT`` evaluations to refit.
    """
    n = int(z.size)
    held = holdout_size(n)
    if held is None:
        return fits
    x = np.arange(1, n + 1, dtype=float)
    designs = [f.design(x, n) for f in fits]
    groups = []
    for k in sorted({d.shape[1] for d in designs}):
        index = [i for i, d in enumerate(designs) if d.shape[1] == k]
        groups.append(DesignGroup(np.array(index), np.stack([designs[i] for i in index])))
    scores = holdout_scores(tuple(groups), len(fits), z, held, params.recency, noise)
    weights = reweighed(np.array([f.weight for f in fits]), scores, params.holdout_weight)
    if weights is None:
        return fits
    return [dataclasses.replace(f, weight=float(v)) for f, v in zip(fits, weights, strict=True)]


@dataclass
class NoiseMemory:
    """Per-future state of an autoregressive noise: lag-1 correlation ``rho``, marginal standard deviation
    ``sigma`` and the noise at the last evaluation simulated (``last``; updated in place)."""

    rho: np.ndarray
    sigma: np.ndarray
    last: np.ndarray


def lag1(residuals: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``residuals`` (centred), clipped to ``[0, MAX_RHO]``; 0 below
    ``MIN_MEMORY_POINTS`` residuals or for a constant series."""
    if residuals.size < MIN_MEMORY_POINTS:
        return 0.0
    r = residuals - residuals.mean()
    total = float(r @ r)
    if total <= 0.0:
        return 0.0
    return float(np.clip(float(r[1:] @ r[:-1]) / total, 0.0, MAX_RHO))


def start_memory(curves: Draws, z: np.ndarray) -> NoiseMemory:
    """The autoregressive noise of every future, started at the last evaluation seen.

    For each fitted (family, shape) pair the lag-1 correlation of its residuals on ``z`` (:func:`lag1`);
    each future's noise starts at the last value's distance from that future's drawn curve (a curve that
    runs above its fit now stays above it for a while) and keeps the pair's noise level ``sigma``.
    """
    n = int(z.size)
    draws = curves.picks.size
    x = np.arange(1, n + 1, dtype=float)
    rho, sigma, last = np.zeros(draws), np.zeros(draws), np.zeros(draws)
    for f, coefs, rows in zip(curves.fits, curves.coefs, curves.rows, strict=True):
        if rows.size == 0:
            continue
        design_seen = f.design(x, n)
        rho[rows] = lag1(z - design_seen @ f.coef)
        sigma[rows] = f.sigma
        last[rows] = z[-1] - coefs @ design_seen[-1]
    return NoiseMemory(rho, sigma, last)


def memory_values(
    curves: Draws, memory: NoiseMemory, start: int, steps: int, rng: np.random.Generator
) -> np.ndarray:
    """The futures at evaluations ``start + 1 .. start + steps``: each drawn curve plus its
    autoregressive noise ``e[t] = rho e[t - 1] + sqrt(1 - rho^2) sigma eta[t]`` (``eta`` standard normal),
    carried on from ``memory`` (updated in place, for the next block)."""
    x = np.arange(start + 1, start + steps + 1, dtype=float)
    out = np.empty((curves.picks.size, steps))
    for f, coefs, rows in zip(curves.fits, curves.coefs, curves.rows, strict=True):
        if rows.size:
            out[rows] = coefs @ f.design(x, curves.seen).T
    shocks = (
        rng.standard_normal((curves.picks.size, steps))
        * (np.sqrt(1.0 - memory.rho**2) * memory.sigma)[:, None]
    )
    e = memory.last
    for j in range(steps):
        e = memory.rho * e + shocks[:, j]
        out[:, j] += e
    memory.last = e
    return out


def calibrate(
    raw: np.ndarray, seen: int, rule: StopRule, kappa: tuple[float, float], seed: int
) -> np.ndarray:
    """Sorted calibrated stop evaluations: each raw one's remaining evaluations spread on the log scale
    (``kappa`` = (downward, upward) standard deviations)."""
    rng = np.random.default_rng([seed, seen, 1])
    eps = rng.standard_normal(raw.size)
    remaining = np.maximum(raw - seen, 1.0) * np.exp(np.where(eps < 0, kappa[0], kappa[1]) * eps)
    out = seen + np.maximum(np.round(remaining), 1.0)
    if rule.max_evaluations is not None:
        out = np.minimum(out, float(rule.max_evaluations))
    return np.sort(out)


def run_spread(samples: np.ndarray, seen: int, limit: float) -> float:
    """The run's own spread of its simulated stops: the 5-95 % range of the log of the remaining
    evaluations, in normal standard deviations (a stop beyond the horizon counts at ``limit``).

    It grows when the weighted curve families disagree about the stop and when the curve's noise is large
    against its distance to the stopping threshold or to the patience's plateau."""
    if samples.size == 0:
        return 0.0
    remaining = np.log(np.maximum(np.minimum(samples, limit) - seen, 1.0))
    q05, q95 = np.quantile(remaining, [0.05, 0.95])
    return float(q95 - q05) / (2.0 * 1.6449)


def spread_factor(samples: np.ndarray, seen: int, limit: float, spread_power: float) -> float:
    """The factor on the model error's spreads: ``(run_spread / SPREAD_REF) ^ spread_power``, clipped."""
    if spread_power == 0.0:
        return 1.0
    ratio = run_spread(samples, seen, limit) / SPREAD_REF
    return float(np.clip(max(ratio, SPREAD_CLIP[0]) ** spread_power, *SPREAD_CLIP))


def weigh_by_length(samples: np.ndarray, seen: int, length_prior: float, limit: float) -> np.ndarray:
    """Sorted ``samples`` resampled with weights ``(seen / T) ^ length_prior`` (deterministic, same size).

    The simulated stops are the curve model's distribution of the run's length ``T``; the
    weights multiply in a prior on ``T`` (a run is more likely seen early in a short run than in a long one).
    A stop beyond the simulated horizon (``inf``) weighs as one at the horizon ``limit`` (an upper bound of
    its weight). Resampling keeps the forecast a plain sorted sample (``StopForecast.samples``).
    """
    if length_prior <= 0.0 or samples.size == 0:
        return samples
    weights = (seen / np.minimum(samples, limit)) ** length_prior
    cdf = np.cumsum(weights)
    picks = np.searchsorted(cdf / cdf[-1], (np.arange(samples.size) + 0.5) / samples.size)
    return samples[np.minimum(picks, samples.size - 1)]


def correction_features(
    raw: np.ndarray, weighed: np.ndarray, seen: int, limit: float, *, misfit: float | None
) -> np.ndarray:
    """The correction's features (:data:`CORRECTION_FEATURES`) from the sorted raw simulated stops, the
    same weighed by the length prior (a stop beyond the horizon counts at ``limit``) and the run's
    ``misfit`` ratio (:func:`~lightning_energy.step.stop_noise.misfit_ratio`; ``None``: not computable):

    * ``prior_median``: ``log(remaining / seen)`` at the median of the weighed stops (the forecast without
      the correction);
    * ``model_median``: the same at the median of the raw stops (the curve model alone, no prior);
    * ``unstopped``: the share of the raw stops beyond the horizon;
    * ``prior_median_x_log_misfit``: ``prior_median`` times ``log_misfit`` (a slope on the forecast that
      depends on how well the families fit: a forecast of a curve they miss can be shrunk harder);
    * ``log_misfit``: the log of the misfit ratio, clipped to ``MISFIT_LOG_CLIP`` (0 where not computable);
    * ``no_misfit``: 1 where the misfit ratio cannot be computed (fewer than ``MIN_MISFIT`` evaluations,
      a series without third differences), else 0;
    * ``prior_median_x_no_misfit``: ``prior_median`` times ``no_misfit`` (a slope of its own for them).
    """

    def log_remaining(samples: np.ndarray) -> float:
        mid = float(np.quantile(np.minimum(samples, limit), 0.5))
        return math.log(max(mid - seen, 1.0) / seen)

    prior = log_remaining(weighed)
    missing, log_misfit = True, 0.0
    if misfit is not None and math.isfinite(misfit) and misfit > 0.0:
        missing, log_misfit = False, float(np.clip(math.log(misfit), *MISFIT_LOG_CLIP))
    return np.array(
        [
            prior,
            log_remaining(raw),
            float(np.mean(~np.isfinite(raw))),
            prior * log_misfit,
            log_misfit,
            float(missing),
            prior * float(missing),
        ]
    )


def correct(
    raw: np.ndarray,
    weighed: np.ndarray,
    seen: int,
    limit: float,
    correction: tuple[float, ...],
    *,
    misfit: float | None,
) -> np.ndarray:
    """The weighed stops re-centred by the learned correction (sorted; unchanged when it is empty).

    The correction predicts ``log(remaining / seen)`` of the run, ``y = c0 + sum(c_i x_i)`` over the first
    features ``x`` of :func:`correction_features` (``misfit``: the run's misfit ratio, ``None`` where it
    cannot be computed); the remaining evaluations of every weighed stop are
    multiplied by ``exp(y - prior_median)``, so that their median moves to ``y`` and their spread is kept.
    A stop moved beyond the horizon ``limit`` is beyond it (``inf``).
    """
    if not correction or weighed.size == 0:
        return weighed
    x = correction_features(raw, weighed, seen, limit, misfit=misfit)
    y = correction[0] + float(np.dot(correction[1:], x[: len(correction) - 1]))
    moved = seen + (weighed - seen) * math.exp(y - x[0])
    return np.sort(np.where(moved > limit, math.inf, moved))


def centred(
    raw: np.ndarray, seen: int, rule: StopRule, params: StopParams, *, misfit: float | None
) -> tuple[np.ndarray, float]:
    """The raw simulated stops weighed by the length prior (:func:`weigh_by_length`) and re-centred by the
    learned correction (:func:`correct`, with the run's ``misfit`` ratio), sorted; and the run's
    :func:`spread_factor` on ``kappa``."""
    limit = float(seen + horizon(rule, seen, params))
    ordered = np.sort(raw)
    weighed = weigh_by_length(ordered, seen, params.length_prior, limit)
    weighed = correct(ordered, weighed, seen, limit, params.correction, misfit=misfit)
    return weighed, spread_factor(weighed, seen, limit, params.spread_power)


def predictive(
    raw: np.ndarray,
    seen: int,
    rule: StopRule,
    params: StopParams,
    seed: int,
    kappa: tuple[float, float] | None = None,
    *,
    misfit: float | None,
) -> np.ndarray:
    """Sorted stop samples of the forecast: the raw simulated stops weighed by the length prior and
    re-centred by the learned correction (:func:`centred`, with the run's ``misfit`` ratio), then
    calibrated (:func:`calibrate`, with
    ``kappa`` or the params' pair, scaled by the run's :func:`spread_factor`).

    The prior acts on the curve model's stops and the model error is spread after it, so the interval
    widens steadily with ``kappa`` and ``kappa`` can be fitted for coverage (``tools/fit_stop.py``).
    """
    pair = (params.kappa_low, params.kappa_high) if kappa is None else kappa
    weighed, factor = centred(raw, seen, rule, params, misfit=misfit)
    return calibrate(weighed, seen, rule, (pair[0] * factor, pair[1] * factor), seed)


def summarise(samples: np.ndarray, seen: int) -> tuple[int | None, int | None, int | None]:
    """Median and 90 % interval of sorted calibrated samples (``None`` where beyond the horizon)."""
    tail = (1.0 - CONFIDENCE) / 2.0
    qs = np.quantile(samples, [tail, 0.5, 1.0 - tail], method="inverted_cdf")
    low, mid, high = (int(q) if math.isfinite(q) else None for q in qs)
    return mid, low, high


def binary_unit(z: np.ndarray) -> int:
    """The power of two ``e`` that puts the largest magnitude of ``z`` in ``[0.5, 1)`` when ``z`` is divided
    by ``2 ** e`` (0 for an empty or all-zero ``z``)."""
    top = float(np.max(np.abs(z))) if z.size else 0.0
    return math.frexp(top)[1] if top > 0.0 else 0


def rescaled(rule: StopRule, state: RuleState, z: np.ndarray) -> tuple[StopRule, RuleState, np.ndarray]:
    """The rule, its state and the curve measured from the curve's first value, in units of the power of
    two that brings the curve's largest distance from it near 1 (:func:`forecast` fits and simulates in
    them).

    The forecast is unchanged by construction (up to the rounding of the subtraction, which is exact for
    values within a factor of two of the first) while the fit's arithmetic no longer depends on where
    the metric lies: a metric of ``1e-200`` or ``1e200`` (whose squares underflow or overflow), one far
    from 0 (``1e6 + loss``: the fit's rounding errors are those of the curve's changes, not of its level),
    and a constant metric, which becomes exactly zero at every level: every family fits it without
    noise and the futures do not move."""
    if z.size == 0:
        return rule, state, z
    # a power of two first (exact: no value overflows when the first is subtracted), then that of the
    # distances from the first value
    top = binary_unit(z)
    first = math.ldexp(float(z[0]), -top)
    unit = binary_unit(np.ldexp(z, -top) - first)

    def scale(v: float) -> float:
        return math.ldexp(math.ldexp(v, -top) - first, -unit)

    def threshold(v: float | None) -> float | None:  # beyond the floats in these units: unreachable
        if v is None:
            return None
        try:
            return rule.sign * scale(rule.sign * v)
        except OverflowError:
            return None

    try:
        min_delta = math.ldexp(rule.min_delta, -top - unit)
    except OverflowError:  # no change of the curve can be an improvement
        min_delta = sys.float_info.max
    scaled = dataclasses.replace(
        rule,
        stopping_threshold=threshold(rule.stopping_threshold),
        min_delta=min_delta,
        divergence_threshold=threshold(rule.divergence_threshold),
    )
    curve = np.ldexp(np.ldexp(z, -top) - first, -unit)
    return scaled, dataclasses.replace(state, best=scale(state.best)), curve


def forecast(rule: StopRule, state: RuleState, z: np.ndarray, params: StopParams, seed: int) -> StopForecast:
    """The forecast from the lower-is-better curve ``z`` and the rule's state (the run has not stopped);
    fitted and simulated in the units of :func:`rescaled`."""
    seen = state.evaluations
    if not rule.can_stop:
        return StopForecast(seen, None, None, None, False, "cannot tell: the rule has no stopping criterion")
    shown = rule
    rule, state, z = rescaled(rule, state, z)
    simulated = raw_stop_samples(rule, state, z, params, seed)
    if simulated is None:
        return StopForecast(
            seen,
            None,
            None,
            None,
            False,
            f"cannot tell: {params.min_evaluations} evaluations needed, {seen} seen",
        )
    raw, fits = simulated
    samples = predictive(raw, seen, rule, params, seed, misfit=misfit_ratio(fits, z))
    mid, low, high = summarise(samples, seen)
    limit = seen + horizon(rule, seen, params)
    if mid is None:
        reason = f"cannot tell: most simulated runs go on past {limit} evaluations"
    else:
        reason = (
            f"stop predicted at evaluation {mid} [{low}, {high if high is not None else '>' + str(limit)}]: "
        )
        reason += _why(rule, shown, fits, z)
    return StopForecast(seen, mid, low, high, False, reason, tuple(float(s) for s in samples))


def _why(rule: StopRule, shown: StopRule, fits: list[CurveFit], z: np.ndarray) -> str:
    """Why the stop is predicted there, in one clause (``rule`` and ``z`` in the fit's units, ``shown``:
    the rule in the metric's own units, for the text)."""
    family = best_fit(fits).family if fits else "flat"

    def end() -> float:  # the fitted curve far ahead
        return float(mean_curve(fits, np.array([float(z.size * 10)]), z.size)[0]) if fits else math.nan

    if rule.stopping_threshold is not None:
        side = "reaches" if end() < rule.sign * rule.stopping_threshold else "falls short of"
        return f"the fitted curve ({family}) {side} the threshold {shown.stopping_threshold:g}"
    if rule.patience is not None:
        return f"the fitted curve ({family}) flattens; patience {rule.patience}"
    if rule.divergence_threshold is not None:
        side = "worsens past" if end() > rule.sign * rule.divergence_threshold else "stays within"
        return f"the fitted curve ({family}) {side} the divergence threshold {shown.divergence_threshold:g}"
    return f"the fitted curve ({family}) runs to the bound of {rule.max_evaluations} evaluations"
