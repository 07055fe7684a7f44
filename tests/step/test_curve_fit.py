"""The learning-curve fit (``curves.fit_curves`` / ``curves.fit_all``): what it recovers, weighs and skips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lightning_energy.step.curves import (
    EXP_SHAPES,
    MIN_BOOTSTRAP,
    MIN_DRIFT_POINTS,
    POWER_SHAPES,
    best_fit,
    fit_all,
    fit_curves,
    inverses,
    lstsq,
)


def _curves() -> list[np.ndarray]:
    """Noisy, noiseless, constant and quantised curves of 2 to 60 evaluations."""
    rng = np.random.default_rng(3)
    out = []
    for n in (2, 3, 5, 6, 9, 20, 60):
        x = np.arange(1.0, n + 1.0)
        out += [
            1.0 + 2.0 * x**-0.7 + 0.003 * rng.standard_normal(n),
            np.full(n, 0.5),
            1.0 + 2.0 * x**-0.7,
            np.round(0.6 + 0.3 * (1.0 - np.exp(-x / 5.0)) + 0.02 * rng.standard_normal(n), 2),
        ]
    return out


X20 = np.arange(1.0, 21.0)
NOISELESS = {  # a curve of each family on its grid, and the family, shape and coefficients to recover
    "flat": (np.full(20, 0.7), "flat", 0.0, [0.7]),
    "power": (1.0 + 2.0 * X20 ** -POWER_SHAPES[6], "power", POWER_SHAPES[6], [1.0, 2.0]),
    "exp": (0.5 + 1.5 * np.exp(-X20 / (EXP_SHAPES[7] * 20)), "exp", EXP_SHAPES[7], [0.5, 1.5]),
    "log": (2.0 - 0.3 * np.log(X20), "log", 0.0, [2.0, -0.3]),
}


@pytest.mark.parametrize("kind", sorted(NOISELESS))
def test_a_noiseless_curve_of_a_family_is_recovered_exactly_with_the_highest_weight(kind: str) -> None:
    z, family, shape, coef = NOISELESS[kind]
    best = best_fit(fit_curves(z, 0.0, 1e-4))
    assert (best.family, best.shape, best.offset) == (family, shape, 0.0)
    assert np.allclose(best.coef, coef, rtol=0.0, atol=1e-9)
    assert best.sigma == 1e-4  # the noise floor: nothing is left to explain
    assert best.weight > 0.5


@pytest.mark.parametrize("shapes,offsets", [(False, False), (True, True), (True, False)])
def test_the_weights_are_a_distribution_and_the_noise_is_floored(shapes: bool, offsets: bool) -> None:
    for z, recency, noise in itertools.product(_curves(), (0.0, 0.5), (0.0, 0.003)):
        fits = fit_curves(z, recency, noise, False, shapes, offsets)
        weights = np.array([f.weight for f in fits])
        assert fits and (weights >= 0.0).all()
        assert abs(float(weights.sum()) - 1.0) < 1e-12
        assert all(f.sigma >= noise and f.cov.shape == (f.coef.size, f.coef.size) for f in fits)


def test_recency_down_weights_old_evaluations() -> None:
    z = np.concatenate([np.zeros(10), np.ones(10)])  # an old level, then a new one
    n = z.size
    for recency in (0.1, 0.3, 1.0):
        flat = next(f for f in fit_curves(z, recency, 1e-4) if f.family == "flat")
        w = np.exp(-(n - np.arange(1.0, n + 1.0)) / (recency * n))  # evaluation i of n
        assert flat.coef[0] == pytest.approx(float(np.average(z, weights=w)), abs=1e-12)
        assert flat.coef[0] > 0.5  # nearer the new level than the unweighted mean
    plain = next(f for f in fit_curves(z, 0.0, 1e-4) if f.family == "flat")
    assert plain.coef[0] == pytest.approx(0.5, abs=1e-12)


def test_too_few_evaluations_skip_the_families_with_more_coefficients() -> None:
    rng = np.random.default_rng(1)
    z = 1.0 + 2.0 * np.arange(1.0, 21.0) ** -0.5 + 0.01 * rng.standard_normal(20)

    def families(n: int) -> set[str]:
        return {f.family for f in fit_curves(z[:n], 0.0, 1e-4, shapes=True, offsets=True)}

    assert families(1) == {"flat"}  # one evaluation: only the one-coefficient family
    assert families(2) == families(MIN_DRIFT_POINTS - 1) == {"flat", "power", "exp", "log"}
    assert families(MIN_DRIFT_POINTS) == {"flat", "power", "exp", "log", "drift", "sigmoid", "jump"}
    assert fit_all(z[:0], 0.0, 1e-4, False, True, True) is None  # no evaluation: nothing is fitted
    assert fit_curves(z[:0], 0.0, 1e-4) == []


def test_bootstrap_keeps_standardised_residuals_from_enough_evaluations() -> None:
    rng = np.random.default_rng(2)
    z = 1.0 + 2.0 * np.arange(1.0, 31.0) ** -0.7 + 0.01 * rng.standard_exponential(30)
    assert all(f.shapes is None for f in fit_curves(z, 0.0, 1e-4))  # bootstrap off
    assert all(f.shapes is None for f in fit_curves(z[: MIN_BOOTSTRAP - 1], 0.0, 1e-4, bootstrap=True))
    for f in fit_curves(z, 0.0, 1e-4, bootstrap=True):
        assert f.shapes is not None and f.shapes.size == z.size
        assert abs(float(f.shapes.mean())) < 1e-9 and float(f.shapes.std()) == pytest.approx(1.0)


def test_fit_curves_is_fit_all_as_curve_fits() -> None:
    z = _curves()[-4]
    fits = fit_all(z, 0.5, 0.003, True, True, True)
    assert fits is not None
    expected = fits.curve_fits()
    got = fit_curves(z, 0.5, 0.003, True, True, True)
    assert [(f.family, f.shape, f.offset, f.weight, f.sigma) for f in got] == [
        (f.family, f.shape, f.offset, f.weight, f.sigma) for f in expected
    ]
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a.coef, b.coef) and np.array_equal(a.cov, b.cov)
    # the stacked designs are the pairs' own designs, at the evaluations seen
    x = np.arange(1.0, z.size + 1.0)
    for group in fits.groups:
        for i, design in zip(group.index.tolist(), group.design, strict=True):
            assert np.array_equal(design, expected[i].design(x, z.size))


def test_lstsq_is_numpys_lstsq_slice_by_slice() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 12, 3))
    a[3, :, 2] = a[3, :, 1]  # a rank-deficient slice: the minimum-norm solution, as lstsq
    b = rng.standard_normal(12)
    expected = np.array([np.linalg.lstsq(a[g], b, rcond=None)[0] for g in range(7)])
    assert np.array_equal(lstsq(a, b), expected)
    assert lstsq(a[:0], b).shape == (0, 3)


def test_a_singular_matrix_is_flagged_and_the_others_inverted() -> None:
    stack = np.array([[[2.0, 0.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]], [[1.0, 2.0], [3.0, 4.0]]])
    out, ok = inverses(stack)
    assert ok.tolist() == [True, False, True]
    assert np.array_equal(out[0], np.linalg.inv(stack[0]))
    assert np.array_equal(out[2], np.linalg.inv(stack[2]))
    assert np.isnan(out[1]).all()
