"""The stop forecast's calibration of the simulated stops into its interval (pure numpy).

The raw simulated stops (:func:`~lightning_energy.step.stop_simulation.raw_stop_samples`) are weighed by
the prior on the run's length (:func:`weigh_by_length`), re-centred by the learned correction
(:func:`correct`, a linear model on :func:`correction_features`; ``StopParams.correction``), and their
remaining evaluations spread on the log scale by the curve model's own error (:func:`calibrate`, of
standard deviations ``kappa_low`` downward and ``kappa_high`` upward, scaled by the run's
:func:`spread_factor`); :func:`predictive` chains them and :func:`summarise` reads the median and the 90 %
interval. ``kappa`` and the correction are fitted on tuning curves (``tools/fit_stop.py``). See
``docs/step.md``.
"""

from __future__ import annotations

import math

import numpy as np

from lightning_energy.step.stop_params import StopParams
from lightning_energy.step.stop_rule import StopRule
from lightning_energy.step.stop_simulation import horizon

CONFIDENCE = 0.9
SPREAD_REF = 0.5  # a run spread (log scale) at which the spreads are kappa_low / kappa_high
SPREAD_CLIP = (0.1, 10.0)  # bounds of the run-dependent factor on the spreads
MISFIT_LOG_CLIP = (0.0, 3.0)  # log of the misfit ratio as a feature: below 1 is estimation noise; 20 at most


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
    """The correction's features (:data:`~lightning_energy.step.stop_params.CORRECTION_FEATURES`) from the
    sorted raw simulated stops, the same weighed by the length prior (a stop beyond the horizon counts at
    ``limit``) and the run's
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
