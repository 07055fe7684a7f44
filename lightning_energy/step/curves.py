"""Learning-curve families fitted online, and sampled futures of the curve (pure numpy).

A curve is the monitored metric, sign-flipped so that lower is better (``z = value`` for ``mode="min"``,
``z = -value`` for ``mode="max"``), against the evaluation number ``x = 1, 2, ...``. Every family is linear
in its coefficients once one shape constant is fixed, so a fit is a handful of weighted least-squares
solves over a small grid of shape constants:

* ``flat``: ``z = a`` (a plateau: noise only);
* ``power``: ``z = a + b x^-c`` (the usual saturating learning curve), ``c`` on a grid;
* ``exp``: ``z = a + b exp(-x / tau)``, ``tau`` on a grid relative to the evaluations seen;
* ``log``: ``z = a + b log x`` (a slow creep that does not saturate within the run);
* ``drift``: ``z = a + b x^-c + d x`` (a saturating curve that turns: over-fitting, divergence).

With ``shapes=True`` two families for curves that do not start to saturate at once are added:

* ``sigmoid``: ``z = a + b s(x)``, ``s(x) = 1 / (1 + exp(-(x - m) / w))`` with the midpoint ``m`` and the
  width ``w`` on a grid relative to the evaluations seen (a delayed rise, a late drop, a jump);
* ``jump``: ``z = a + b s(x) + d log x`` (a jump followed by a slow creep that does not saturate).

With ``offsets=True`` the families whose shape depends on where the curve starts (``power``, ``log``,
``drift``) are also fitted against ``x + x0``, the origin ``x0`` on a grid relative to the evaluations seen
(``OFFSET_RATIOS``): the first evaluation of a real run often comes after several evaluations' worth of
training (a warm-up, a late first evaluation, a resumed or fine-tuned model), and a curve that saturates in
its training progress is then far less curved in the evaluation number than ``x^-c`` from ``x = 1``
(``exp`` and ``sigmoid`` are unchanged by a shift of ``x``).

Every (family, shape) pair is weighted by its BIC (``exp(-BIC / 2)``, a uniform prior over the families
and over each family's grid), and a future is drawn by picking a pair by weight, its coefficients from their
Gaussian posterior and independent Gaussian noise of the pair's residual standard deviation.

The pairs are fitted stack by stack (:func:`fit_all`): the designs of the pairs with the same number of
coefficients are stacked (:class:`DesignGroup`), each least-squares solve is one ``numpy.linalg.lstsq``
call per pair (:func:`lstsq`), and the products and inverses run on the stacks with the kernels a single
pair's fit would run, so every pair's values are those of fitting it on its own, bit for bit. Bit for bit
matters: a badly conditioned pair's covariance (a far origin makes ``x^-c`` nearly constant) is decided by
rounding, and the futures drawn from it by ``eigh`` with it, so a solver that agreed only to rounding (a
stacked singular value decomposition) would change some forecasts. The stacked designs stay with the fits
(:class:`FitSet`) for the stop forecast's held-out refits (:mod:`lightning_energy.step.stop_fit`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

POWER_SHAPES = tuple(float(c) for c in np.geomspace(0.05, 3.0, 16))
EXP_SHAPES = tuple(float(r) for r in np.geomspace(0.05, 3.0, 16))  # tau / evaluations seen
SIGMOID_MIDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # midpoint / evaluations seen
SIGMOID_WIDTHS = (0.02, 0.08, 0.25)  # width / evaluations seen
SIGMOID_GRID = tuple((m, w) for m in SIGMOID_MIDS for w in SIGMOID_WIDTHS)  # a sigmoid's shape: an index
OFFSET_RATIOS = (0.5, 1.0, 2.0, 4.0, 8.0)  # the curve's origin before the first evaluation / evaluations seen
SHIFTED = ("power", "log", "drift")  # the families fitted with an origin offset too (offsets=True)
MIN_DRIFT_POINTS = 6  # the three-coefficient family needs this many evaluations
MIN_BOOTSTRAP = 8  # residuals needed before they are resampled as noise
REL_NOISE_FLOOR = 1e-6  # of the curve's scale: a noiseless curve still gets a tiny noise


@dataclass(frozen=True)
class CurveFit:
    """One fitted (family, shape) pair: its coefficients, their covariance, noise and posterior weight."""

    family: str
    shape: float
    coef: np.ndarray
    cov: np.ndarray
    sigma: float
    weight: float
    shapes: np.ndarray | None = None  # standardised residuals (unit sd) to resample as noise, or None
    offset: float = 0.0  # the curve's origin lies ``offset`` evaluations before the first (x -> x + offset)

    def design(self, x: np.ndarray, seen: int) -> np.ndarray:
        """This pair's design matrix at evaluation numbers ``x``."""
        return design(self.family, self.shape, x + self.offset, seen)


def design(family: str, shape: float, x: np.ndarray, seen: int) -> np.ndarray:
    """Design matrix of ``family`` with shape constant ``shape`` at evaluation numbers ``x`` (float)."""
    ones = np.ones_like(x)
    if family == "flat":
        return ones[:, None]
    if family == "power":
        return np.column_stack([ones, x**-shape])
    if family == "exp":
        return np.column_stack([ones, np.exp(-x / (shape * seen))])
    if family == "log":
        return np.column_stack([ones, np.log(x)])
    if family == "drift":
        return np.column_stack([ones, x**-shape, x / seen])
    if family == "sigmoid":
        return np.column_stack([ones, _sigmoid(x, shape, seen)])
    if family == "jump":
        return np.column_stack([ones, _sigmoid(x, shape, seen), np.log(x)])
    raise ValueError(f"unknown curve family {family!r}")


def _sigmoid(x: np.ndarray, shape: float, seen: int) -> np.ndarray:
    """The logistic step whose (midpoint, width), as fractions of ``seen``, is ``SIGMOID_GRID[shape]``."""
    mid, width = SIGMOID_GRID[int(shape)]
    u = (x - mid * seen) / (width * seen)
    return 0.5 * (1.0 + np.tanh(0.5 * u))


@dataclass(frozen=True)
class DesignGroup:
    """Stacked designs of pairs with the same number of coefficients ``k``: ``design`` has the shape
    ``(pairs, n, k)`` (evaluations ``1 .. n``), ``index`` is each pair's position among the fitted pairs."""

    index: np.ndarray
    design: np.ndarray


@dataclass(frozen=True)
class FitSet:
    """The fitted (family, shape, origin) pairs, in :func:`design_blocks`' order, with their BIC weights
    and their stacked designs (``groups``)."""

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
        """The pairs as :class:`CurveFit`, weighted by ``weights`` when given
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
    """The pairs fitted after ``seen`` evaluations, family by family (``flat``, ``power``, ``exp``, ``log``,
    ``drift``, ``sigmoid``, ``jump``; within a family shape by shape, origin by origin), with their stacked
    designs at evaluations ``1 .. seen`` (the values of ``CurveFit.design``)."""
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
    the operations and kernels of one pair's fit on its own (the same bits)."""
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
    """Every pair fitted to ``z``, with the pairs' designs; ``None`` when no pair can be fitted (the
    arguments are :func:`fit_curves`'). A pair with more coefficients than evaluations, or whose
    ``X'WX`` is singular, is left out."""
    n = int(z.size)
    if n == 0:
        return None
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
        squares = np.array([sigmas[i] ** 2 for i in mine.tolist()])  # Python floats: a pair's own arithmetic
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
    ``rss`` and its number of coefficients ``ks``, pair by pair with ``math`` functions (the bits of one
    pair's own arithmetic)."""
    sigmas = np.maximum(np.sqrt(rss / np.maximum(n_eff - ks, 1.0)), noise)
    floored = np.maximum(np.maximum(rss / n_eff, noise**2 / 4.0), 1e-300)
    bic = n_eff * np.array([math.log(v) for v in floored.tolist()]) + ks * math.log(n_eff)
    best = float(bic.min())
    counts = Counter(families)
    prior = np.array([counts[f] for f in families], dtype=float)
    raw = np.array([math.exp(-(b - best) / 2.0) for b in bic.tolist()]) / prior
    return sigmas.tolist(), raw / raw.sum()


def fit_curves(
    z: np.ndarray,
    recency: float,
    noise_sigma: float,
    bootstrap: bool = False,
    shapes: bool = False,
    offsets: bool = False,
) -> list[CurveFit]:
    """Fit every (family, shape) pair to ``z`` (lower is better), oldest first, weighted and normalised.

    ``recency`` > 0 down-weights old evaluations: evaluation ``i`` of ``n`` weighs
    ``exp(-(n - i) / (recency x n))`` (0: all weigh 1). ``noise_sigma`` floors each pair's residual
    standard deviation (the series' own unit-to-unit noise, so a lucky fit is not believed too much).
    ``bootstrap``: the futures' noise is resampled from each pair's standardised residuals (skewed or
    heavy-tailed noise, from ``MIN_BOOTSTRAP`` evaluations on) instead of drawn from a normal.
    ``shapes``: fit the ``sigmoid`` and ``jump`` families too (from ``MIN_DRIFT_POINTS`` evaluations on).
    ``offsets``: fit ``power``, ``log`` and ``drift`` with their origin ``OFFSET_RATIOS x seen``
    evaluations before the first too (each family's prior weight is shared by all its shapes and origins).
    """
    fits = fit_all(z, recency, noise_sigma, bootstrap, shapes, offsets)
    return [] if fits is None else fits.curve_fits()


@dataclass(frozen=True)
class Draws:
    """Sampled curves: the (family, shape) pair and the coefficients of every future."""

    fits: list[CurveFit]
    picks: np.ndarray
    coefs: list[np.ndarray]  # per fit index: the coefficients of the futures that picked it
    rows: list[np.ndarray]  # per fit index: which futures picked it
    seen: int


def draw_curves(fits: list[CurveFit], seen: int, draws: int, rng: np.random.Generator) -> Draws:
    """Pick a (family, shape) pair per future by weight and draw its coefficients from their posterior."""
    weights = np.array([f.weight for f in fits])
    picks = rng.choice(len(fits), size=draws, p=weights)
    coefs, rows = [], []
    for index, f in enumerate(fits):
        mine = np.flatnonzero(picks == index)
        rows.append(mine)
        if mine.size:
            # a nearly collinear design (a far origin makes x^-c nearly constant) can leave the covariance
            # indefinite by rounding; "eigh" draws with the eigenvalues' magnitudes, so the check is off
            coefs.append(
                rng.multivariate_normal(f.coef, f.cov, size=mine.size, method="eigh", check_valid="ignore")
            )
        else:
            coefs.append(np.empty((0, f.coef.size)))
    return Draws(fits, picks, coefs, rows, seen)


def future_values(curves: Draws, start: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """The futures at evaluations ``start + 1 .. start + steps`` (1-based): curve plus Gaussian noise."""
    x = np.arange(start + 1, start + steps + 1, dtype=float)
    out = np.empty((curves.picks.size, steps))
    for f, coefs, rows in zip(curves.fits, curves.coefs, curves.rows, strict=True):
        if rows.size:
            X = f.design(x, curves.seen)
            if f.shapes is None:
                noise = rng.standard_normal((rows.size, steps))
            else:
                noise = f.shapes[rng.integers(f.shapes.size, size=(rows.size, steps))]
            out[rows] = coefs @ X.T + noise * f.sigma
    return out


def sample_futures(
    fits: list[CurveFit], seen: int, start: int, steps: int, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """``draws`` sampled futures of the curve at evaluations ``start + 1 .. start + steps`` (1-based)."""
    return future_values(draw_curves(fits, seen, draws, rng), start, steps, rng)


def mean_curve(fits: list[CurveFit], x: np.ndarray, seen: int) -> np.ndarray:
    """The weighted mean of the fitted curves at evaluation numbers ``x`` (no noise)."""
    total = np.zeros_like(x, dtype=float)
    for f in fits:
        total += f.weight * (f.design(x, seen) @ f.coef)
    return total


def best_fit(fits: list[CurveFit]) -> CurveFit:
    """The pair with the largest posterior weight."""
    return max(fits, key=lambda f: f.weight)
