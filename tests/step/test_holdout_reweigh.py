"""Families reweighed by a backtest on the run itself (``StopParams.holdout_weight``, ``holdout_reweigh``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lightning_energy.step.curves import fit_curves, mean_curve
from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_fit import MIN_HOLDOUT_FIT, holdout_reweigh
from lightning_energy.step.stop_noise import noise_scale
from tests.step.test_fit_stop import record_and_forecast
from tools import fit_stop


def _fits(z: np.ndarray, params: StopParams) -> tuple[list, float]:
    noise = params.noise_floor * noise_scale(z)
    return fit_curves(z, params.recency, noise, False, params.shapes, params.offsets), noise


def _params(weight: float) -> StopParams:
    return dataclasses.replace(StopParams.shipped(), holdout_weight=weight)


def test_too_few_evaluations_leave_the_fits_as_they_are() -> None:
    z = 1.0 + np.arange(1.0, MIN_HOLDOUT_FIT + 2.0) ** -0.5  # refit on fewer than MIN_HOLDOUT_FIT points
    fits, noise = _fits(z, _params(1.0))
    assert holdout_reweigh(fits, z, _params(1.0), noise) is fits


def test_only_the_weights_change_and_they_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    z = 3.0 - 0.2 * np.log(np.arange(1.0, 31.0)) + 0.003 * rng.standard_normal(30)
    fits, noise = _fits(z, _params(1.0))
    new = holdout_reweigh(fits, z, _params(1.0), noise)
    assert len(new) == len(fits)
    assert sum(f.weight for f in new) == pytest.approx(1.0)
    assert all(f.weight >= 0.0 for f in new)
    for a, b in zip(fits, new, strict=True):
        assert (a.family, a.shape, a.offset, a.sigma) == (b.family, b.shape, b.offset, b.sigma)
        assert np.array_equal(a.coef, b.coef)
    assert any(not math.isclose(a.weight, b.weight) for a, b in zip(fits, new, strict=True))


def test_a_family_that_forecast_the_recent_past_badly_loses_weight() -> None:
    # a curve that saturates in its first two thirds, then creeps on: the saturating fits of the early part
    # forecast the last third badly, the creep (log) well
    x = np.arange(1.0, 31.0)
    rng = np.random.default_rng(1)
    z = 2.0 - 0.3 * np.log(x) + 0.002 * rng.standard_normal(30)
    params = dataclasses.replace(_params(1.0), shapes=False, offsets=False)
    fits, noise = _fits(z, params)
    new = holdout_reweigh(fits, z, params, noise)

    def share(fs: list, family: str) -> float:
        return sum(f.weight for f in fs if f.family == family)

    assert share(new, "flat") <= share(fits, "flat") + 1e-12
    future = np.array([60.0, 120.0])
    truth = 2.0 - 0.3 * np.log(future)
    before = np.abs(mean_curve(fits, future, 30) - truth)
    after = np.abs(mean_curve(new, future, 30) - truth)
    assert np.all(after <= before + 1e-3)


def test_a_stronger_weight_moves_the_weights_further() -> None:
    rng = np.random.default_rng(2)
    z = 1.0 + 2.0 * np.arange(1.0, 41.0) ** -0.6 + 0.01 * rng.standard_normal(40)
    fits, noise = _fits(z, _params(1.0))
    weights = {}
    for w in (0.0, 1.0, 3.0):
        weights[w] = np.array([f.weight for f in holdout_reweigh(fits, z, _params(w), noise)])
    base = np.array([f.weight for f in fits])
    assert np.allclose(weights[0.0], base)  # exp(0 x ...) changes nothing
    assert np.abs(weights[3.0] - base).sum() > np.abs(weights[1.0] - base).sum()


def test_the_weight_is_validated_defaults_off_changes_the_forecast_and_is_searched() -> None:
    with pytest.raises(ValueError, match="holdout_weight"):
        StopParams(holdout_weight=-1.0)
    assert StopParams().holdout_weight == 0.0
    rng = np.random.default_rng(3)
    values = 0.5 + 2.0 * np.arange(1.0, 31.0) ** -0.5 + 0.01 * rng.standard_normal(30)
    out = {}
    for w in (0.0, 1.0):
        fc = StopForecaster("min", stopping_threshold=0.75, params=_params(w)).replay(values)
        again = StopForecaster("min", stopping_threshold=0.75, params=_params(w)).replay(values)
        assert fc is not None and fc == again  # deterministic
        out[w] = fc
    assert out[0.0].samples != out[1.0].samples
    assert fit_stop.GRID["holdout_weight"] == (0.0, 1.0)
    assert "holdout_weight" not in fit_stop.FIXED_WHEN_REDUCED  # simulated: --reduced keeps the shipped


@pytest.mark.parametrize(("weight", "memory"), [(1.0, False), (0.0, True), (1.0, True)])
def test_a_fit_stop_record_equals_the_forecast(weight: float, memory: bool) -> None:
    params = dataclasses.replace(StopParams.shipped(), holdout_weight=weight, noise_memory=memory)
    _, interval, expected = record_and_forecast(params, "powerlaw_loss", 5)
    assert interval == expected
