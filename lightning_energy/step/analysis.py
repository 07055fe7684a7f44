"""Pure functions of STEP: analyse a series of per-unit levels, decide stability, build the interval.

A "unit" is an epoch (or a window of training steps); ``values`` are the energies per unit (J) of the main
unit kind, or the mean powers (W) with a time budget, oldest first. Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from lightning_energy.step.params import (
    HAZARD_CONFIDENCE,
    INTERVAL_GROUPS,
    IntervalGroup,
    StepParams,
    hazard_bucket,
    hazard_scale,
)

_WINSOR_SIGMAS = 3.0  # values are winsorised at median +- this many sigma in the change test
SETTLE_SIGMAS = 2.0  # leading units of a regime further than this from the rest are settling, not level
HOMOGENEITY_SIGMAS = 8.0  # a new regime's units must agree within this many sigma (else a transient)
MIN_TREND_POINTS = 5
TREND_HORIZON = 20  # units over which a visible trend is assumed to continue (the interval's trend term)
PATTERN_SIGMAS = 6.0  # a periodic pattern's phase medians must span this many sigma of the residual noise
MAX_RHO = 0.9
MIN_RHO_POINTS = 6
_NORMAL = NormalDist()


def normal_quantile(p: float) -> float:
    """Standard normal quantile."""
    return _NORMAL.inv_cdf(p)


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyse` reads from a series: the current regime, its level, noise and trend."""

    start: int  # index in ``values`` where the current regime begins (after settling)
    level: float  # level of the regime: mean of its last ``window`` units without a transient
    recent: float  # robust recent level used before stability
    n: int  # units used for the level
    regime_n: int  # settled units of the regime
    noise_rel: float  # unit-to-unit noise relative to the level
    long_run_rel: float  # long-run noise (autocorrelation included) relative to the level
    spread_rel: float  # standard deviation of the level's units relative to it
    slope_rel: float  # Theil-Sen slope per unit relative to the level (0 with fewer than 5 units)
    trend_significant: bool  # the slope's confidence interval excludes 0
    pending: bool  # the last unit departs from the level beyond the change threshold
    pattern: tuple[float, ...] = (1.0,)  # periodic pattern: cost of the next units' phases, mean 1


def robust_sigma(values: np.ndarray) -> float:
    """Robust unit-to-unit noise: 1.4826 x median |first difference| / sqrt(2)."""
    if values.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(values))) / math.sqrt(2.0))


def block_sigma(values: np.ndarray, block: int = 3) -> float:
    """Long-run noise from the differences of ``block``-unit moving means (0 below ``2 x block`` units)."""
    if values.size < 2 * block:
        return 0.0
    means = np.convolve(values, np.ones(block) / block, mode="valid")
    return float(math.sqrt(block) * 1.4826 * np.median(np.abs(means[block:] - means[:-block])) / math.sqrt(2))


def lag1_autocorrelation(values: np.ndarray, max_rho: float = MAX_RHO) -> float:
    """Lag-1 autocorrelation of ``values`` winsorised at median +- 3 MAD-sigma, bias-corrected (Kendall),
    clipped to [0, max_rho]; 0 below ``MIN_RHO_POINTS`` values."""
    if values.size < MIN_RHO_POINTS:
        return 0.0
    med = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - med)))
    if mad <= 0:
        return 0.0
    x = np.clip(values, med - _WINSOR_SIGMAS * mad, med + _WINSOR_SIGMAS * mad)
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return 0.0
    rho = float(np.dot(x[1:], x[:-1])) / denom
    rho += (1.0 + 3.0 * rho) / values.size  # Kendall's small-sample bias
    return float(min(max(rho, 0.0), max_rho))


def change_threshold(n_splits: int, alpha: float) -> float:
    """Bonferroni-corrected two-sided normal quantile for ``n_splits`` candidate change points."""
    return normal_quantile(1.0 - alpha / (2.0 * max(n_splits, 1)))


def regime_start(
    values: np.ndarray, sigma: float, alpha: float, confirm: int, min_change_rel: float = 0.0
) -> int:
    """Index where the last regime begins: binary segmentation of the tail with a winsorised z test of means.

    A split is accepted when its z statistic exceeds the Bonferroni threshold, the step between the means
    exceeds ``min_change_rel`` of the level (smaller steps are wander, left to the long-run noise), and the
    new part is a level (its units, bar the first, agree within ``HOMOGENEITY_SIGMAS`` sigma: a stall is
    not a regime).
    """
    start = 0
    while values.size - start > confirm:
        seg = values[start:]
        n = seg.size
        med = float(np.median(seg))
        clipped = np.clip(seg, med - _WINSOR_SIGMAS * sigma, med + _WINSOR_SIGMAS * sigma)
        splits = np.arange(1, n - confirm + 1)
        csum = np.cumsum(clipped)
        left = csum[splits - 1] / splits
        right = (csum[-1] - csum[splits - 1]) / (n - splits)
        z = np.abs(left - right) / (sigma * np.sqrt(1.0 / splits + 1.0 / (n - splits)))
        best = int(np.argmax(z))
        if z[best] <= change_threshold(splits.size, alpha):
            break
        if abs(left[best] - right[best]) <= min_change_rel * abs(med):
            break
        tail = seg[int(splits[best]) :]
        tail = tail[1:] if tail.size > confirm else tail
        if np.max(np.abs(tail - np.median(tail))) > HOMOGENEITY_SIGMAS * sigma:
            break
        start += int(splits[best])
    return start


def theil_sen(values: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """Theil-Sen slope, intercept (x = 0 at the first value) and the slope's confidence interval (Sen)."""
    n = values.size
    i, j = np.triu_indices(n, 1)
    slopes = np.sort((values[j] - values[i]) / (j - i))
    slope = float(np.median(slopes))
    intercept = float(np.median(values - slope * np.arange(n)))
    c = normal_quantile(0.5 + confidence / 2.0) * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    m = slopes.size
    lo = int(min(max(math.floor((m - c) / 2.0), 0), m - 1))
    hi = int(min(max(math.ceil((m + c) / 2.0), 0), m - 1))
    return slope, intercept, float(slopes[lo]), float(slopes[hi])


def seasonal_period(values: np.ndarray, sigma: float, max_period: int) -> tuple[int, float]:
    """A periodic pattern (validation or checkpoint units not told): ``(period, residual sigma)``.

    For every period 2..``max_period`` with at least 4 cycles in ``values``, the phase medians are removed
    and the unit-to-unit noise of the rest measured; the period is kept when that noise is below ``sigma``
    and the phase medians span more than ``PATTERN_SIGMAS`` times it (a longer period, not a multiple of
    it, must beat a shorter one by 20 %). ``(1, sigma)`` when there is no such pattern.
    """
    best_p, best_s = 1, sigma
    for p in range(2, max_period + 1):
        if best_p > 1 and p % best_p == 0:
            continue  # a multiple of the period found fits no worse: not a new pattern
        m = (values.size // p) * p
        if m < 4 * p:
            break
        cycles = values[values.size - m :].reshape(-1, p)  # phases counted from the last value
        phase_median = np.median(cycles, axis=0)
        s = robust_sigma((cycles - phase_median).ravel())
        amplitude = float(np.max(phase_median) - np.min(phase_median))
        if s < (sigma if best_p == 1 else 0.8 * best_s) and amplitude > PATTERN_SIGMAS * s:
            best_p, best_s = p, s
    return best_p, best_s


def phase_pattern(values: np.ndarray, period: int) -> tuple[float, ...]:
    """Relative cost of each phase of a periodic pattern, mean 1, starting with the unit after the last."""
    m = (values.size // period) * period
    medians = np.median(values[values.size - m :].reshape(-1, period), axis=0)
    mean = float(np.mean(medians))
    return tuple(float(v) / mean for v in medians) if mean > 0 else (1.0,)


def pattern_units(pattern: tuple[float, ...], remaining_units: float) -> float:
    """The next ``remaining_units`` units (a fractional last one included) weighted by ``pattern``."""
    p = len(pattern)
    whole = math.floor(remaining_units)
    cycles, rest = divmod(whole, p)
    return cycles * sum(pattern) + sum(pattern[:rest]) + (remaining_units - whole) * pattern[rest % p]


def _pattern_residuals(values: np.ndarray, period: int) -> np.ndarray:
    """The last whole cycles of ``values`` minus their phase medians, plus the overall median."""
    m = (values.size // period) * period
    cycles = values[values.size - m :].reshape(-1, period)
    return (cycles - np.median(cycles, axis=0)).ravel() + float(np.median(cycles))


def _outlier_excess(regime: np.ndarray, clean_level: float, sigma: float, outlier_sigmas: float) -> float:
    """Mean excess per unit of the regime's outliers when they recur (2 blocks or more), else 0: recurring
    stalls or spikes are part of the run and counted at their rate; a one-off is not the level."""
    out = np.abs(regime - clean_level) > outlier_sigmas * sigma
    if not out.any():
        return 0.0
    blocks = int(out[0]) + int(np.sum(out[1:] & ~out[:-1]))
    if blocks < 2:
        return 0.0
    return float(np.sum(regime[out] - clean_level)) / regime.size


def analyse(values: np.ndarray, params: StepParams) -> Analysis:
    """Regime, level, noise and trend of a non-empty series of per-unit values (see the module doc)."""
    scale = float(np.median(np.abs(values))) or 1.0
    floor = params.noise_floor * scale
    sigma = max(robust_sigma(values[-50:]), floor)
    start = regime_start(values, sigma, params.change_alpha, params.confirm_units, params.min_change_rel)
    regime = values[start:]
    settled = 0  # the unit mixing two levels, then a settling ramp: dropped while it departs from the rest
    while (
        settled < params.confirm_units
        and regime.size > params.min_stable_units
        and abs(regime[0] - float(np.median(regime[1:]))) > SETTLE_SIGMAS * sigma
    ):
        regime = regime[1:]
        start += 1
        settled += 1
    if regime.size > MIN_TREND_POINTS:
        sigma = max(robust_sigma(regime[-50:]), floor)
    period, sigma_p = seasonal_period(regime[-60:], sigma, params.max_period)
    if period > 1:  # a periodic pattern: whole cycles for the level, the noise around the pattern
        sigma = max(sigma_p, floor)
        cycles = max(1, min(params.window, regime.size) // period) * period
        used = regime[-cycles:]
        level = float(np.mean(used))
        noise_window = _pattern_residuals(regime[-max(cycles, 3 * period) :], period)
        last_dev = float(noise_window[-1] - np.median(noise_window))
        spread = float(np.std(noise_window[-cycles:]))
        pattern = phase_pattern(regime[-max(cycles, 3 * period) :], period)
    else:
        window = regime[-params.window :]
        out = np.abs(window - np.median(window)) > params.outlier_sigmas * sigma
        used = window[~out] if (~out).sum() >= 2 else window
        level = float(np.mean(used))
        level += _outlier_excess(regime, level, sigma, params.outlier_sigmas)
        noise_window = used
        last_dev = float(values[-1]) - float(np.median(used))
        spread = float(np.std(used))
        pattern = (1.0,)
    slope = 0.0
    significant = False
    trend_window = noise_window[-params.window :]
    if trend_window.size >= MIN_TREND_POINTS:
        slope, _, low, high = theil_sen(trend_window, params.trend_confidence)
        significant = low > 0 or high < 0
        if significant:
            level = max(level + slope * (trend_window.size - 1) / 2.0, 0.0)  # the line's last value
    if not significant and regime.size < params.trend_units and values.size >= MIN_TREND_POINTS:
        # A young regime may be the last step of a ramp cut into steps (a warm-up tail, a drift): the trend
        # is also tested over the last ``trend_units`` values across the regime start.
        tail = values[-params.trend_units :]
        tail_slope, _, low, high = theil_sen(tail, params.trend_confidence)
        if low > 0 or high < 0:
            significant, slope = True, tail_slope
    # A young regime (or none yet): the median of the last units, so that one stall is never the level.
    recent = level if regime.size >= params.recent_units else float(np.median(values[-params.recent_units :]))
    rho = lag1_autocorrelation(trend_window)
    long_run = max(sigma * math.sqrt(1.0 + rho) / (1.0 - rho), block_sigma(trend_window))
    z_crit = change_threshold(max(regime.size - params.confirm_units, 1), params.change_alpha)
    ref = level if level > 0 else scale
    return Analysis(
        start=start,
        level=level,
        recent=recent,
        n=int(used.size),
        regime_n=int(regime.size),
        noise_rel=sigma / ref,
        long_run_rel=max(sigma, long_run) / ref,
        spread_rel=spread / ref,
        slope_rel=slope / ref,
        trend_significant=significant,
        pending=abs(last_dev) > z_crit * sigma,
        pattern=pattern,
    )


def needed_units(params: StepParams, total_units: float | None) -> int:
    """Units that must be seen before a declaration: ``min_units``, or less for a short planned run."""
    if total_units is None:
        return params.min_units
    short = max(2 + params.warmup_units, math.ceil(params.short_run_fraction * total_units - 1e-9))
    return min(params.min_units, short)


def is_stable(
    info: Analysis,
    *,
    seen: int,
    remaining_units: float,
    total_units: float | None,
    was_stable: bool,
    regime_first_unit: int,
    params: StepParams,
    unit: str = "epoch",
) -> tuple[bool, str]:
    """Whether the level is stable, and one short line saying why (or why not).

    ``regime_first_unit`` is the unit index where the regime begins (to name it in the reason).
    """
    need = needed_units(params, total_units)
    if seen < need:
        return False, f"not stable: {seen} of {need} {unit}s needed"
    min_regime = min(params.min_stable_units, max(2, need - params.warmup_units))  # short runs: fewer
    if info.regime_n < min_regime:
        return False, (
            f"not stable: new level since {unit} {regime_first_unit}, "
            f"{info.regime_n} of {min_regime} {unit}s needed"
        )
    # Hysteresis: a stable level is left at twice the tolerances (or on a confirmed change), so that noise
    # at the threshold does not make the declaration flicker.
    relax = 2.0 if was_stable else 1.0
    horizon = min(max(remaining_units, 1.0), float(params.window))
    if info.trend_significant and abs(info.slope_rel) * horizon > relax * params.trend_tolerance:
        return False, f"not stable: still trending {100 * info.slope_rel:+.2g} %/{unit}"
    se = info.long_run_rel / math.sqrt(info.n)
    if se > relax * params.level_tolerance:
        return False, (
            f"not stable: {unit} energy varies ±{100 * info.long_run_rel:.2g} % "
            f"(level ±{100 * se:.2g} %, needs ±{100 * params.level_tolerance:.2g} %)"
        )
    if info.pending and not was_stable:
        return False, f"not stable: the last {unit} departs from the level"
    return True, f"stable since {unit} {regime_first_unit}"


def noise_rel_sd(info: Analysis, remaining_units: float, stable: bool) -> float:
    """Relative standard deviation of the remaining energy from the series' own noise and trend."""
    spread = max(info.long_run_rel, info.spread_rel)
    var = spread**2 / max(info.n, 1)
    if remaining_units > 0:  # the future units' own noise, summed
        var += info.long_run_rel**2 / max(remaining_units, 1.0)
    if info.trend_significant:  # the trend continuing: to the end of a run it keeps from being declared
        # stable, over at most a window of units once the run is stable (a trend the level has settled)
        horizon = remaining_units if not stable else min(remaining_units, TREND_HORIZON)
        var += min(abs(info.slope_rel) * horizon / 2.0, 0.5) ** 2
    return math.sqrt(var)


def interval_group(
    info: Analysis, stable: bool, *, change_ahead: bool, regime_first_unit: int, params: StepParams
) -> IntervalGroup:
    """The run's condition for the interval (one of :data:`INTERVAL_GROUPS`, a Mondrian group).

    ``"ahead"``: the Trainer announced a change still to come; ``"unstable"``: not declared stable;
    ``"steady"``: stable, one regime since the warm-up (or a regime of ``window`` units), no significant
    trend, long-run noise at most ``steady_noise``, the last unit in line; ``"stable"``: any other stable run
    (a recent change, a trend, high noise).
    """
    if change_ahead:
        return "ahead"
    if not stable:
        return "unstable"
    settled = (
        regime_first_unit <= params.warmup_units + params.confirm_units or info.regime_n >= params.window
    )
    quiet = info.long_run_rel <= params.steady_noise and not info.trend_significant and not info.pending
    return "steady" if settled and quiet else "stable"


def log_half_widths(
    noise_log_sd: float,
    remaining_fraction: float,
    group: IntervalGroup,
    confidence: float,
    params: StepParams,
) -> tuple[float, float]:
    """Lower and upper half-widths (log scale of the total): noise term and hazard table in quadrature.

    ``group`` (:func:`interval_group`) picks the table. The hazard table holds 90 % half-widths of a run
    whose own 90 % noise half-width is ``HAZARD_NOISE_REF``, scaled for this run by
    :func:`~lightning_energy.step.params.hazard_scale` of its own noise half-width and
    ``params.hazard_noise_power`` (the shipped 0, chosen by nested selection, keeps one table value per
    group and bucket). Another ``confidence`` scales them by the normal quantiles.
    """
    if group not in INTERVAL_GROUPS:
        raise ValueError(f"group must be one of {', '.join(INTERVAL_GROUPS)}, got {group!r}")
    z = normal_quantile(0.5 + confidence / 2.0)
    scale = z / normal_quantile(0.5 + HAZARD_CONFIDENCE / 2.0)
    b = hazard_bucket(remaining_fraction, params.hazard_edges)
    low_table, high_table = params.hazard_table(group)
    a = z * noise_log_sd
    factor = scale * hazard_scale(
        noise_log_sd * normal_quantile(0.5 + HAZARD_CONFIDENCE / 2.0), params.hazard_noise_power
    )
    return math.hypot(a, factor * low_table[b]), math.hypot(a, factor * high_table[b])
