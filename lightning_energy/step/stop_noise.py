"""The stop forecast's noise of the simulated futures, estimated from the series itself (pure numpy).

By default every simulated future of a fitted (family, shape) pair gets independent noise of that pair's
residual standard deviation (:mod:`lightning_energy.step.curves`). That standard deviation measures how far
the evaluations lie from the fitted curve: the noise, and also the fit's lack of fit (a step, a jump or a
warm-up no family follows exactly, or a curve that bends differently early on). Drawn as independent noise
at every future evaluation, the lack of fit makes the futures far noisier than the curve, and a noisy
future crosses a threshold (or misses an improvement) by chance much earlier than the curve does.

With ``StopParams.series_noise`` the futures' noise is the series' own evaluation-to-evaluation noise
instead (:func:`series_noise`): a robust scale of the third differences of its recent evaluations, which a
smooth trend (a constant, a slope, a curvature) does not reach. The coefficients' uncertainty and the
families' weights are left as fitted (they still carry the lack of fit). Below :data:`MIN_SERIES_NOISE`
evaluations, or for a series with no difference at all, each pair keeps its residual standard deviation.

The same noise also tells how well the curve families follow the run (:func:`misfit_ratio`): the fits'
residual standard deviation over the series' own noise is about 1 where a family follows the curve and
grows with the lack of fit; the stop forecast's learned correction can read it (``CORRECTION_FEATURES`` of
:mod:`lightning_energy.step.stop_params`).

The fit's own noise floor is here too (:func:`noise_scale`, :func:`resolution`), and the futures' noise
that remembers (``StopParams.noise_memory``: :class:`NoiseMemory`, :func:`start_memory`,
:func:`memory_values`, a first-order autoregression started from each fit's last residual).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lightning_energy.step.curves import REL_NOISE_FLOOR, CurveFit, Draws

MIN_SERIES_NOISE = 8  # evaluations the third-difference noise needs (5 third differences at least)
# var(third difference) = 20 sigma^2 for independent noise of sd sigma (1 + 9 + 9 + 1)
THIRD_DIFFERENCE_VARIANCE = 20.0
MAD_TO_SD = 1.4826  # a normal's standard deviation over its median absolute deviation
# evaluations the misfit ratio needs: two third differences (the median of one is a single absolute value)
# and three residual degrees of freedom for the two-coefficient families
MIN_MISFIT = 5
MIN_RELATIVE_NOISE = 1e-9  # of the series' largest magnitude: a noise below it is rounding, not noise
MIN_MEMORY_POINTS = 6  # residuals needed to estimate the noise's lag-1 correlation (else independent)
MAX_RHO = 0.95  # the estimated lag-1 correlation is clipped to [0, MAX_RHO]


def series_noise(z: np.ndarray, minimum: int = MIN_SERIES_NOISE) -> float:
    """The robust unit noise of the series ``z``: the scaled median absolute third difference of its
    recent half (at least its last ``MIN_SERIES_NOISE`` evaluations, or all of them when fewer); 0 below
    ``minimum`` evaluations (``MIN_SERIES_NOISE`` for the futures' noise, ``MIN_MISFIT`` for
    :func:`misfit_ratio`).

    For independent noise of standard deviation ``sigma`` around a curve that is locally a quadratic the
    third differences are the noise's alone, of variance ``20 sigma^2``; the median makes it robust to a
    few jumps (a learning-rate step, a spike)."""
    recent = np.asarray(z, dtype=float)[-max(MIN_SERIES_NOISE, int(np.size(z)) // 2) :]
    if recent.size < max(minimum, 4):
        return 0.0
    third = np.diff(recent, 3)
    return float(MAD_TO_SD * np.median(np.abs(third)) / math.sqrt(THIRD_DIFFERENCE_VARIANCE))


def with_series_noise(fits: list[CurveFit], z: np.ndarray) -> list[CurveFit]:
    """``fits`` whose futures' noise is :func:`series_noise` of ``z`` (their coefficients, covariances and
    weights unchanged); ``fits`` themselves when that noise is 0 (too few evaluations, or no difference)."""
    noise = series_noise(z)
    if not math.isfinite(noise) or noise <= 0.0:
        return fits
    return [dataclasses.replace(f, sigma=noise) for f in fits]


def misfit_ratio(fits: list[CurveFit], z: np.ndarray) -> float | None:
    """How far the weighted curve families miss the series ``z``, in units of its own noise: the
    mixture's residual standard deviation (``sqrt(sum weight x sigma^2)`` over the fitted pairs, the noise
    the futures are drawn with) over :func:`series_noise` of ``z`` (from ``MIN_MISFIT`` evaluations).

    About 1 where the families follow the curve, larger with their lack of fit. ``None`` where it cannot
    be computed: fewer than ``MIN_MISFIT`` evaluations, no fit, or a series without third differences
    beyond rounding (``MIN_RELATIVE_NOISE`` of its largest magnitude: a smooth or quantised metric)."""
    noise = series_noise(z, MIN_MISFIT)
    scale = float(np.max(np.abs(z))) if np.size(z) else 0.0
    if not fits or not math.isfinite(noise) or noise <= MIN_RELATIVE_NOISE * scale or noise <= 0.0:
        return None
    spread = math.sqrt(sum(f.weight * f.sigma**2 for f in fits))
    ratio = spread / noise
    return ratio if math.isfinite(ratio) else None


def noise_scale(z: np.ndarray) -> float:
    """Robust unit noise of a curve from the second differences of its recent half (0 below 4 points)."""
    recent = z[-max(4, z.size // 2) :]
    if recent.size < 4:
        return 0.0
    return float(MAD_TO_SD * np.median(np.abs(np.diff(recent, 2))) / math.sqrt(6.0))


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
