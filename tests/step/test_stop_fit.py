"""The stop forecast's batched held-out reweighing (``stop_fit.holdout_scores``) equals the pair-by-pair
refits it replaced, bit for bit."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from lightning_energy.step.curves import CurveFit, fit_curves
from lightning_energy.step.stop import StopParams
from lightning_energy.step.stop_fit import fitted, holdout_reweigh, holdout_size, reweighed
from lightning_energy.step.stop_noise import noise_scale
from tests.step.test_curve_fit import _curves


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
