"""Every learning-curve family fitted at once, for the stop forecast (pure numpy).

:func:`fit_all` gives bit for bit what :func:`lightning_energy.step.curves.fit_curves` gives (the same
(family, shape, origin) pairs in the same order, with the same coefficients, covariances, noise and BIC
weights) with the pairs' designs built, multiplied and inverted stack by stack: the designs of the pairs
with the same number of coefficients are stacked (:class:`DesignGroup`), each least-squares solve is the
one ``numpy.linalg.lstsq`` call a single pair's fit makes (:func:`lstsq`), and every product and inverse
runs the kernel a single pair's fit runs on the same values. Bit for bit matters: a badly conditioned
pair's covariance (a far origin makes ``x^-c`` nearly constant) is decided by rounding, and the futures
drawn from it by ``eigh`` with it, so a solver that agreed only to rounding would change some forecasts.
The stacked designs stay with the fits (:class:`FitSet`), and :func:`holdout_scores` refits them for the
stop forecast's backtest of the families on the run itself (``StopParams.holdout_weight``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from lightning_energy.step.curves import (
    EXP_SHAPES,
    MIN_BOOTSTRAP,
    MIN_DRIFT_POINTS,
    OFFSET_RATIOS,
    POWER_SHAPES,
    SHIFTED,
    SIGMOID_GRID,
    CurveFit,
)


@dataclass(frozen=True)
class DesignGroup:
    """Stacked designs of pairs with the same number of coefficients ``k``: ``design`` has the shape
    ``(pairs, n, k)`` (evaluations ``1 .. n``), ``index`` is each pair's position among the fitted pairs."""

    index: np.ndarray
    design: np.ndarray


@dataclass(frozen=True)
class FitSet:
    """The pairs :func:`~lightning_energy.step.curves.fit_curves` keeps, in its order, with their BIC
    weights and their stacked designs (``groups``)."""

    families: tuple[str, ...]
    shapes: tuple[float, ...]
    offsets: tuple[float, ...]
    coefs: tuple[np.ndarray, ...]
    covs: tuple[np.ndarray, ...]
    sigmas: tuple[float, ...]
    weights: np.ndarray
    standard: tuple[np.ndarray | None, ...]  # standardised residuals to resample as noise (bootstrap)
    groups: tuple[DesignGroup, ...]

    def curve_fits(self, weights: np.ndarray | None = None) -> list[CurveFit]:
        """The pairs as :class:`~lightning_energy.step.curves.CurveFit`, weighted by ``weights`` when given
        (else by their BIC weights)."""
        chosen = self.weights if weights is None else weights
        return [
            CurveFit(family, shape, coef, cov, sigma, float(weight), standard, offset)
            for family, shape, coef, cov, sigma, weight, standard, offset in zip(
                self.families,
                self.shapes,
                self.coefs,
                self.covs,
                self.sigmas,
                chosen,
                self.standard,
                self.offsets,
                strict=True,
            )
        ]


@dataclass(frozen=True)
class Solved:
    """Weighted least squares of a stack of ``G`` designs with ``k`` coefficients: the coefficients
    ``(G, k)``, the weighted residual sum of squares over the mean weight ``(G,)``, the fitted values
    ``(G, n)``, and ``inv(X'WX / mean weight)`` ``(G, k, k)`` where ``ok`` (else that matrix is singular)."""

    coef: np.ndarray
    rss: np.ndarray
    fitted: np.ndarray
    inverse: np.ndarray
    ok: np.ndarray


def recency_weights(n: int, recency: float) -> np.ndarray:
    """Evaluation ``i`` of ``n`` weighs ``exp(-(n - i) / (recency x n))`` (all 1 when ``recency <= 0``)."""
    x = np.arange(1, n + 1, dtype=float)
    return np.ones(n) if recency <= 0 else np.exp(-(n - x) / (recency * n))


Block = tuple[str, list[float], list[float], np.ndarray]  # family, shapes, origins, designs (pairs, n, k)


def design_blocks(seen: int, shapes: bool, offsets: bool) -> list[Block]:
    """The pairs fitted after ``seen`` evaluations, family by family in ``fit_curves``' order, with their
    stacked designs at evaluations ``1 .. seen`` (the values of ``CurveFit.design``)."""
    x = np.arange(1, seen + 1, dtype=float)
    ones = np.ones_like(x)
    shifts = [0.0, *(r * seen for r in OFFSET_RATIOS)] if offsets else [0.0]
    shifted = x[None, :] + np.array(shifts)[:, None]  # (origins, seen); the first row is x itself
    power = np.array(POWER_SHAPES)[:, None, None]

    def origins(family: str) -> list[float]:
        return shifts if family in SHIFTED else [0.0]

    def block(family: str, grid: list[float], *columns: np.ndarray) -> Block:
        at = origins(family)
        size = len(grid) * len(at)
        stacked = np.stack([np.broadcast_to(c, (size, seen)) for c in columns], axis=2)
        return family, [s for s in grid for _ in at], [o for _ in grid for o in at], stacked

    def powers(family: str) -> np.ndarray:  # x^-c for every shape c (outer) and origin (inner)
        return (shifted[: len(origins(family))] ** -power).reshape(-1, seen)

    out = [block("flat", [0.0], ones), block("power", list(POWER_SHAPES), ones, powers("power"))]
    out.append(
        block("exp", list(EXP_SHAPES), ones, np.exp(-x[None, :] / (np.array(EXP_SHAPES)[:, None] * seen)))
    )
    out.append(block("log", [0.0], ones, np.log(shifted[: len(origins("log"))])))
    if seen >= MIN_DRIFT_POINTS:
        linear = np.tile(shifted[: len(origins("drift"))] / seen, (len(POWER_SHAPES), 1))
        out.append(block("drift", list(POWER_SHAPES), ones, powers("drift"), linear))
    if shapes and seen >= MIN_DRIFT_POINTS:
        mid = np.array([m for m, _ in SIGMOID_GRID])[:, None]
        width = np.array([w for _, w in SIGMOID_GRID])[:, None]
        step = 0.5 * (1.0 + np.tanh(0.5 * ((x[None, :] - mid * seen) / (width * seen))))
        index = [float(i) for i in range(len(SIGMOID_GRID))]
        out.append(block("sigmoid", index, ones, step))
        out.append(block("jump", index, ones, step, np.log(x)))
    return out


def lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``numpy.linalg.lstsq(a[g], b, rcond=None)[0]`` for every matrix of the stack ``a`` ``(G, n, k)``.

    One call per matrix: the public ``lstsq`` solves one matrix at a time, and no other public solver gives
    its bits (LAPACK's ``gelsd``). Its stacked kernel (numpy's private ``_umath_linalg.lstsq``, the same bits)
    would take another ~3.5 ms off an update of 60 evaluations; the project reads no private attributes."""
    return np.array([np.linalg.lstsq(a[g], b, rcond=None)[0] for g in range(a.shape[0])]).reshape(
        a.shape[0], a.shape[2]
    )


def solve(design: np.ndarray, z: np.ndarray, w: np.ndarray) -> Solved:
    """Weighted least squares of ``z`` on every design of the stack ``(G, n, k)`` (weights ``w``), with
    the operations and kernels of one pair's fit in ``fit_curves`` (the same bits)."""
    sw = np.sqrt(w)
    weighted = design * sw[None, :, None]
    coef = lstsq(weighted, z * sw)
    fitted = (design @ coef[:, :, None])[:, :, 0]
    resid = (z[None, :] - fitted) * sw[None, :]
    mean_w = float(w.mean())
    rss = (resid[:, None, :] @ resid[:, :, None])[:, 0, 0] / mean_w
    inverse, ok = inverses(np.swapaxes(weighted, 1, 2) @ weighted / mean_w)
    return Solved(coef, rss, fitted, inverse, ok)


def inverses(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.linalg.inv`` of every matrix of a stack, and which were invertible (a singular one, where
    ``inv`` raises, gives NaNs)."""
    try:
        return np.linalg.inv(matrices), np.ones(matrices.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        out = np.full_like(matrices, math.nan)
        ok = np.zeros(matrices.shape[0], dtype=bool)
        for g in range(matrices.shape[0]):
            try:
                out[g] = np.linalg.inv(matrices[g])
                ok[g] = True
            except np.linalg.LinAlgError:
                continue
        return out, ok


def standardised(residuals: np.ndarray) -> np.ndarray | None:
    """Centred residuals of unit standard deviation (``None`` below ``MIN_BOOTSTRAP`` or when constant)."""
    centred = residuals - residuals.mean()
    sd = float(centred.std())
    return centred / sd if centred.size >= MIN_BOOTSTRAP and sd > 0 else None


def fit_all(
    z: np.ndarray, recency: float, noise_sigma: float, bootstrap: bool, shapes: bool, offsets: bool
) -> FitSet | None:
    """What :func:`~lightning_energy.step.curves.fit_curves` fits to ``z`` with the same arguments (the same
    pairs, order and values), with the pairs' designs; ``None`` when no pair can be fitted."""
    n = int(z.size)
    w = recency_weights(n, recency)
    n_eff = float(w.sum() ** 2 / np.sum(w**2))
    names: list[str] = []
    grid: list[float] = []
    origins: list[float] = []
    by_size: dict[int, list[tuple[int, np.ndarray]]] = {}  # k -> (first pair, designs) of its blocks
    for family, shape, offset, design in design_blocks(n, shapes, offsets):
        if n >= design.shape[2]:
            by_size.setdefault(design.shape[2], []).append((len(names), design))
            names += [family] * len(shape)
            grid += shape
            origins += offset
    solved: list[tuple[np.ndarray, np.ndarray, Solved]] = []  # (pair positions, designs, solution)
    for parts in by_size.values():
        design = np.concatenate([d for _, d in parts])
        pairs = np.concatenate([np.arange(first, first + d.shape[0]) for first, d in parts])
        solved.append((pairs, design, solve(design, z, w)))
    total = len(names)
    ks, rss, ok = np.zeros(total), np.zeros(total), np.zeros(total, dtype=bool)
    for pairs, design, result in solved:
        ks[pairs], rss[pairs], ok[pairs] = design.shape[2], result.rss, result.ok
    kept = np.flatnonzero(ok)
    if kept.size == 0:
        return None
    families = [names[p] for p in kept.tolist()]
    sigmas, weights = noise_and_weights(rss[kept], ks[kept], families, n_eff, noise_sigma)
    position = np.full(total, -1)
    position[kept] = np.arange(kept.size)
    coefs: list[np.ndarray] = [np.empty(0)] * kept.size
    covs: list[np.ndarray] = [np.empty(0)] * kept.size
    standard: list[np.ndarray | None] = [None] * kept.size
    groups = []
    for pairs, design, result in solved:
        mine = position[pairs[result.ok]]
        if mine.size == 0:
            continue
        groups.append(DesignGroup(mine, design[result.ok]))
        squares = np.array([sigmas[i] ** 2 for i in mine.tolist()])  # Python floats, as fit_curves
        cov = squares[:, None, None] * result.inverse[result.ok]
        for i, coef, matrix in zip(mine.tolist(), result.coef[result.ok], cov, strict=True):
            coefs[i], covs[i] = coef, matrix
        if bootstrap:
            for i, fitted in zip(mine.tolist(), result.fitted[result.ok], strict=True):
                standard[i] = standardised(z - fitted)
    return FitSet(
        tuple(families),
        tuple(grid[p] for p in kept.tolist()),
        tuple(origins[p] for p in kept.tolist()),
        tuple(coefs),
        tuple(covs),
        tuple(sigmas),
        weights,
        tuple(standard),
        tuple(groups),
    )


def noise_and_weights(
    rss: np.ndarray, ks: np.ndarray, families: list[str], n_eff: float, noise: float
) -> tuple[list[float], np.ndarray]:
    """Each pair's noise (its residual standard deviation, at least ``noise``) and its BIC weight (a
    uniform prior over the families and over each family's pairs), from its residual sum of squares
    ``rss`` and its number of coefficients ``ks``: ``fit_curves``' arithmetic, in the same order and with
    the same ``math`` functions (the same bits)."""
    sigmas = np.maximum(np.sqrt(rss / np.maximum(n_eff - ks, 1.0)), noise)
    floored = np.maximum(np.maximum(rss / n_eff, noise**2 / 4.0), 1e-300)
    bic = n_eff * np.array([math.log(v) for v in floored.tolist()]) + ks * math.log(n_eff)
    best = float(bic.min())
    counts = Counter(families)
    prior = np.array([counts[f] for f in families], dtype=float)
    raw = np.array([math.exp(-(b - best) / 2.0) for b in bic.tolist()]) / prior
    return sigmas.tolist(), raw / raw.sum()


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
