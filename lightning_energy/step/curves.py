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
"""

from __future__ import annotations

import math
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


def _candidates(seen: int, shapes: bool = False, offsets: bool = False) -> list[tuple[str, float, float]]:
    """Every (family, shape, offset) triple fitted after ``seen`` evaluations."""
    pairs: list[tuple[str, float]] = [("flat", 0.0)]
    pairs += [("power", c) for c in POWER_SHAPES]
    pairs += [("exp", r) for r in EXP_SHAPES]
    pairs.append(("log", 0.0))
    if seen >= MIN_DRIFT_POINTS:
        pairs += [("drift", c) for c in POWER_SHAPES]
    if shapes and seen >= MIN_DRIFT_POINTS:
        pairs += [("sigmoid", float(i)) for i in range(len(SIGMOID_GRID))]
        pairs += [("jump", float(i)) for i in range(len(SIGMOID_GRID))]
    shifts = (0.0,) + (tuple(r * seen for r in OFFSET_RATIOS) if offsets else ())
    return [(f, s, x0) for f, s in pairs for x0 in (shifts if f in SHIFTED else (0.0,))]


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
    n = int(z.size)
    x = np.arange(1, n + 1, dtype=float)
    w = np.ones(n) if recency <= 0 else np.exp(-(n - x) / (recency * n))
    n_eff = float(w.sum() ** 2 / np.sum(w**2))
    sw = np.sqrt(w)
    fits: list[tuple[str, float, float, np.ndarray, np.ndarray, float, float, np.ndarray]] = []
    for family, shape, offset in _candidates(n, shapes, offsets):
        X = design(family, shape, x + offset, n)
        k = X.shape[1]
        if n < k:
            continue
        Xw = X * sw[:, None]
        coef, *_ = np.linalg.lstsq(Xw, z * sw, rcond=None)
        resid = (z - X @ coef) * sw
        rss = float(resid @ resid) / float(w.mean())
        dof = max(n_eff - k, 1.0)
        sigma = max(math.sqrt(rss / dof), noise_sigma)
        bic = n_eff * math.log(max(rss / n_eff, noise_sigma**2 / 4.0, 1e-300)) + k * math.log(n_eff)
        try:
            cov = sigma**2 * np.linalg.inv(Xw.T @ Xw / float(w.mean()))
        except np.linalg.LinAlgError:
            continue
        raw_resid = z - X @ coef
        fits.append((family, shape, offset, coef, cov, sigma, bic, raw_resid))
    if not fits:
        return []
    family_sizes: dict[str, int] = {}
    for f in fits:
        family_sizes[f[0]] = family_sizes.get(f[0], 0) + 1
    best = min(f[6] for f in fits)
    raw = np.array([math.exp(-(f[6] - best) / 2.0) / family_sizes[f[0]] for f in fits])
    raw /= raw.sum()
    out = []
    for f, p in zip(fits, raw, strict=True):
        resid = f[7] - f[7].mean()
        sd = float(resid.std())
        standard = resid / sd if bootstrap and resid.size >= MIN_BOOTSTRAP and sd > 0 else None
        out.append(CurveFit(f[0], f[1], f[3], f[4], f[5], float(p), standard, f[2]))
    return out


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
