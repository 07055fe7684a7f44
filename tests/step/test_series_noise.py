"""The futures' noise from the series itself (``StopParams.series_noise``, ``stop_noise``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lightning_energy.step.curves import fit_curves
from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_noise import MIN_SERIES_NOISE, series_noise, with_series_noise
from lightning_energy.step.stop_rule import RuleState, StopRule, advance
from lightning_energy.step.stop_simulation import raw_stop_samples
from tests.step.test_fit_stop import record_and_forecast
from tools import fit_stop


def _noise(sd: float, n: int, seed: int) -> np.ndarray:
    return sd * np.random.default_rng(seed).standard_normal(n)


def test_the_series_noise_estimates_independent_normal_noise() -> None:
    x = np.arange(1.0, 401.0)
    for seed, sd in ((1, 0.01), (2, 0.003), (3, 0.05)):
        z = 1.0 + 2.0 * x**-0.7 + _noise(sd, x.size, seed)
        assert series_noise(z) == pytest.approx(sd, rel=0.12)


def test_a_quadratic_trend_does_not_reach_the_series_noise() -> None:
    x = np.arange(1.0, 41.0)
    noise = _noise(0.02, x.size, 4)
    trended = noise + 3.0 - 0.2 * x + 0.004 * x**2  # third differences of a quadratic are zero
    assert series_noise(trended) == pytest.approx(series_noise(noise), rel=1e-6)
    assert series_noise(3.0 - 0.2 * x + 0.004 * x**2) == pytest.approx(0.0, abs=1e-12)


def test_too_few_evaluations_leave_the_fits_noise() -> None:
    z = 1.0 + _noise(0.01, MIN_SERIES_NOISE - 1, 5)
    assert series_noise(z) == 0.0
    fits = fit_curves(z, 0.0, 0.0)
    assert with_series_noise(fits, z) is fits
    flat = np.full(20, 0.5)  # no difference at all: the fits keep theirs
    flat_fits = fit_curves(flat, 0.0, 0.0)
    assert with_series_noise(flat_fits, flat) is flat_fits


def _stepped() -> np.ndarray:
    """A saturating loss with a learning-rate drop at evaluation 40: no family follows the step, so the
    fits' residual standard deviation is mostly their lack of fit, far above the noise (0.004)."""
    x = np.arange(1.0, 61.0)
    return 0.8 + 0.6 * x**-0.5 - np.where(x > 40, 0.08, 0.0) + _noise(0.004, x.size, 6)


def test_only_the_futures_noise_changes() -> None:
    z = _stepped()
    fits = fit_curves(z, 0.5, 0.0, shapes=True, offsets=True)
    mine = with_series_noise(fits, z)
    assert len(mine) == len(fits)
    noise = series_noise(z)
    assert 0.002 < noise < 0.008  # the noise's own scale (0.004), the step in the recent half or not
    weighted_sigma = sum(f.weight * f.sigma for f in fits)
    assert weighted_sigma > 2.0 * noise  # the residuals hold the step the families miss
    for before, after in zip(fits, mine, strict=True):
        assert after.sigma == noise
        assert (after.family, after.shape, after.offset, after.weight) == (
            before.family,
            before.shape,
            before.offset,
            before.weight,
        )
        assert np.array_equal(after.coef, before.coef) and np.array_equal(after.cov, before.cov)


def test_the_series_noise_crosses_a_threshold_later_than_the_fits_lack_of_fit() -> None:
    # two learning-rate drops then a plateau (noise 0.004): the families' lack of fit inflates their noise
    x = np.arange(1.0, 41.0)
    z = 0.8 - 0.05 * (x > 12) - 0.05 * (x > 25) + _noise(0.004, x.size, 7)
    threshold = float(z.min()) - 0.01  # below every value so far: a chance crossing ends the run early
    rule = StopRule("min", stopping_threshold=threshold)
    state = RuleState()
    for value in z:
        state = advance(rule, state, float(value))
    assert not state.stopped
    base = dataclasses.replace(StopParams.shipped(), correction=(), length_prior=0.0)
    medians = {}
    for flag in (False, True):
        params = dataclasses.replace(base, series_noise=flag)
        simulated = raw_stop_samples(rule, state, z, params, seed=0)
        assert simulated is not None
        medians[flag] = float(np.median(simulated[0]))
    assert medians[True] > medians[False] + 2.0


def test_the_forecast_is_deterministic_with_the_series_noise() -> None:
    z = _stepped()
    params = dataclasses.replace(StopParams.shipped(), series_noise=True)
    first = StopForecaster("min", patience=5, params=params).replay(z.tolist())
    again = StopForecaster("min", patience=5, params=params).replay(z.tolist())
    assert first is not None and first == again and first.epochs is not None


def test_the_flag_is_validated_defaults_off_and_is_searched() -> None:
    with pytest.raises(TypeError, match="series_noise"):
        StopParams(series_noise=1)  # type: ignore[arg-type]
    assert StopParams().series_noise is False
    assert fit_stop.GRID["series_noise"] == (False, True)
    assert "series_noise" not in fit_stop.FIXED_WHEN_REDUCED  # simulated: --reduced keeps the shipped


def test_a_fit_stop_record_equals_the_forecast_with_the_series_noise() -> None:
    params = dataclasses.replace(StopParams.shipped(), series_noise=True)
    record, interval, expected = record_and_forecast(params, "powerlaw_loss", 6)  # stops after 66
    assert record.seen >= MIN_SERIES_NOISE  # the series noise acts
    assert interval == expected
