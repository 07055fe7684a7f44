"""The stop forecast's fit of the learning-curve families to the run, and their backtest on the run itself
(pure numpy).

:func:`fitted` fits the (family, shape) pairs to the run (:func:`~lightning_energy.step.curves.fit_all`).
:func:`holdout_scores` refits every fitted (family, shape, origin) pair's stacked design
(:class:`~lightning_energy.step.curves.DesignGroup`, kept by :func:`~lightning_energy.step.curves.fit_all`)
to the evaluations before the last few, stack by stack as the fit itself
(:func:`~lightning_energy.step.curves.solve`), and scores how well it forecasts them; the stop forecast
reweighs the pairs by it (``StopParams.holdout_weight``; :func:`reweighed`, :func:`holdout_reweigh`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lightning_energy.step.curves import CurveFit, DesignGroup, fit_all, recency_weights, solve
from lightning_energy.step.stop_params import StopParams

HOLDOUT_SHARE = 1.0 / 3.0  # the last share of the evaluations seen that the reweighing holds out
MIN_HOLDOUT_FIT = 6  # evaluations the refit before the held-out ones needs (fewer: no reweighing)


def holdout_scores(
    groups: tuple[DesignGroup, ...], count: int, z: np.ndarray, held: int, recency: float, noise: float
) -> np.ndarray:
    """The log predictive density of the last ``held`` evaluations of ``z`` under each of ``count`` pairs
    refitted to the evaluations before them (``groups``: the pairs' designs at all of ``z``; the refit
    weighs its evaluations by ``recency`` and floors its noise at ``noise``): normal, its variance the
    refit's noise plus its coefficients' uncertainty; ``-inf`` where the refit's covariance is singular."""
    m = int(z.size) - held
    w = recency_weights(m, recency)
    n_eff = float(w.sum() ** 2 / np.sum(w**2))
    scores = np.full(count, -math.inf)
    for group in groups:
        k = group.design.shape[2]
        result = solve(group.design[:, :m], z[:m], w)
        sigma2 = np.maximum(result.rss / max(n_eff - k, 1.0), noise**2)
        ahead = group.design[:, m:]
        spread = np.einsum("gij,gjk,gik->gi", ahead, sigma2[:, None, None] * result.inverse, ahead)
        var = np.maximum(sigma2[:, None] + spread, 1e-300)
        error = z[None, m:] - (ahead @ result.coef[:, :, None])[:, :, 0]
        score = np.sum(-0.5 * np.log(2.0 * math.pi * var) - 0.5 * error**2 / var, axis=1)
        scores[group.index[result.ok]] = score[result.ok]
    return scores


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
