"""The stop forecast's backtest of the learning-curve families on the run itself (pure numpy).

:func:`holdout_scores` refits every fitted (family, shape, origin) pair's stacked design
(:class:`~lightning_energy.step.curves.DesignGroup`, kept by :func:`~lightning_energy.step.curves.fit_all`)
to the evaluations before the last few, stack by stack as the fit itself
(:func:`~lightning_energy.step.curves.solve`), and scores how well it forecasts them; the stop forecast
reweighs the pairs by it (``StopParams.holdout_weight``).
"""

from __future__ import annotations

import math

import numpy as np

from lightning_energy.step.curves import DesignGroup, recency_weights, solve


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
