"""The batched fits of the stop forecast (``stop_fit``) equal the pair-by-pair fits bit for bit."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from lightning_energy.step.curves import CurveFit, fit_curves
from lightning_energy.step.stop import (
    StopParams,
    fitted,
    holdout_reweigh,
    holdout_size,
    noise_scale,
    reweighed,
)
from lightning_energy.step.stop_fit import fit_all, inverses, lstsq


def _curves() -> list[np.ndarray]:
    """Noisy, noiseless, constant and quantised curves of 2 to 60 evaluations."""
    rng = np.random.default_rng(3)
    out = []
    for n in (2, 3, 5, 6, 9, 20, 60):
        x = np.arange(1.0, n + 1.0)
        out += [
            1.0 + 2.0 * x**-0.7 + 0.003 * rng.standard_normal(n),
            np.full(n, 0.5),  # every pair fits to rounding: its weight is decided by the rounding
            1.0 + 2.0 * x**-0.7,
            np.round(0.6 + 0.3 * (1.0 - np.exp(-x / 5.0)) + 0.02 * rng.standard_normal(n), 2),
        ]
    return out


def _same(a: list[CurveFit], b: list[CurveFit]) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b, strict=True):
        assert (fa.family, fa.shape, fa.offset, fa.sigma, fa.weight) == (
            fb.family,
            fb.shape,
            fb.offset,
            fb.sigma,
            fb.weight,
        )
        assert np.array_equal(fa.coef, fb.coef)
        assert np.array_equal(fa.cov, fb.cov)
        assert (fa.shapes is None) == (fb.shapes is None)
        assert fa.shapes is None or np.array_equal(fa.shapes, fb.shapes)


@pytest.mark.parametrize("shapes,offsets", [(False, False), (True, True), (True, False)])
def test_fit_all_equals_fit_curves_bit_for_bit(shapes: bool, offsets: bool) -> None:
    for z, recency, noise, bootstrap in itertools.product(_curves(), (0.0, 0.5), (0.0, 0.003), (False, True)):
        reference = fit_curves(z, recency, noise, bootstrap, shapes, offsets)
        fast = fit_all(z, recency, noise, bootstrap, shapes, offsets)
        assert fast is not None
        _same(fast.curve_fits(), reference)


def _reference_holdout(
    fits: list[CurveFit], z: np.ndarray, params: StopParams, noise: float
) -> list[CurveFit]:
    """The held-out reweighing as it was written pair by pair (before it was batched)."""
    n = int(z.size)
    held_out = holdout_size(n)
    if held_out is None:
        return fits
    m = n - held_out
    x = np.arange(1, n + 1, dtype=float)
    w = np.ones(m) if params.recency <= 0 else np.exp(-(m - x[:m]) / (params.recency * m))
    n_eff = float(w.sum() ** 2 / np.sum(w**2))
    sw = np.sqrt(w)
    scores = np.full(len(fits), -math.inf)
    for i, f in enumerate(fits):
        X = f.design(x, n)
        Xw = X[:m] * sw[:, None]
        coef, *_ = np.linalg.lstsq(Xw, z[:m] * sw, rcond=None)
        resid = (z[:m] - X[:m] @ coef) * sw
        sigma2 = max(float(resid @ resid) / float(w.mean()) / max(n_eff - X.shape[1], 1.0), noise**2)
        try:
            cov = sigma2 * np.linalg.inv(Xw.T @ Xw / float(w.mean()))
        except np.linalg.LinAlgError:
            continue
        ahead = X[m:]
        var = np.maximum(sigma2 + np.einsum("ij,jk,ik->i", ahead, cov, ahead), 1e-300)
        scores[i] = float(
            np.sum(-0.5 * np.log(2.0 * math.pi * var) - 0.5 * (z[m:] - ahead @ coef) ** 2 / var)
        )
    weights = reweighed(np.array([f.weight for f in fits]), scores, params.holdout_weight)
    if weights is None:
        return fits
    return [dataclasses.replace(f, weight=float(v)) for f, v in zip(fits, weights, strict=True)]


@pytest.mark.parametrize("holdout_weight", [1.0, 3.0])
def test_the_batched_holdout_reweighing_equals_the_pair_by_pair_one(holdout_weight: float) -> None:
    for z, recency in itertools.product(_curves(), (0.0, 0.5)):
        params = dataclasses.replace(StopParams.shipped(), recency=recency, holdout_weight=holdout_weight)
        noise = params.noise_floor * noise_scale(z)
        fits = fit_curves(z, params.recency, noise, params.bootstrap, params.shapes, params.offsets)
        reference = _reference_holdout(fits, z, params, noise)
        _same(holdout_reweigh(fits, z, params, noise), reference)
        _same(fitted(z, params, noise), reference)


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
