"""The misfit ratio (``stop_noise.misfit_ratio``) and the learned correction's misfit features."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lightning_energy.step.curves import fit_curves
from lightning_energy.step.stop import StopForecaster, StopParams, forecast
from lightning_energy.step.stop_calibration import MISFIT_LOG_CLIP, correct, correction_features
from lightning_energy.step.stop_noise import MIN_MISFIT, misfit_ratio, series_noise
from lightning_energy.step.stop_params import CORRECTION_FEATURES
from lightning_energy.step.stop_simulation import raw_stop_samples
from tools import fit_stop
from tools.stop_data import make


def _noise(sd: float, n: int, seed: int) -> np.ndarray:
    return sd * np.random.default_rng(seed).standard_normal(n)


def _ratio(z: np.ndarray) -> float | None:
    return misfit_ratio(fit_curves(z, 0.5, 0.0, shapes=True, offsets=True), z)


def test_the_misfit_is_near_one_where_a_family_follows_the_curve_and_large_where_none_does() -> None:
    x = np.arange(1.0, 61.0)
    smooth = 0.8 + 0.6 * x**-0.5 + _noise(0.004, x.size, 1)
    stepped = smooth - np.where(x > 40, 0.08, 0.0)  # a learning-rate drop no family follows
    followed, missed = _ratio(smooth), _ratio(stepped)
    assert followed is not None and missed is not None
    assert 0.6 < followed < 1.6
    assert missed > 3.0 * followed


def test_the_misfit_ratio_is_the_mixtures_residual_sd_over_the_series_noise() -> None:
    z = 1.0 + 2.0 * np.arange(1.0, 21.0) ** -0.7 + _noise(0.01, 20, 2)
    fits = fit_curves(z, 0.0, 0.0)
    spread = math.sqrt(sum(f.weight * f.sigma**2 for f in fits))
    assert misfit_ratio(fits, z) == pytest.approx(spread / series_noise(z, MIN_MISFIT), rel=1e-12)


def test_the_misfit_ratio_needs_min_misfit_evaluations_and_some_third_difference() -> None:
    z = 1.0 + _noise(0.01, 12, 3)
    assert misfit_ratio(fit_curves(z[: MIN_MISFIT - 1], 0.0, 0.0), z[: MIN_MISFIT - 1]) is None
    assert misfit_ratio(fit_curves(z[:MIN_MISFIT], 0.0, 0.0), z[:MIN_MISFIT]) is not None
    assert misfit_ratio([], z) is None
    x = np.arange(1.0, 13.0)
    quadratic = 3.0 - 0.2 * x + 0.004 * x**2  # no third difference: the series has no noise to compare
    assert misfit_ratio(fit_curves(quadratic, 0.0, 0.0), quadratic) is None
    # the futures' noise keeps its own minimum (8 evaluations)
    assert series_noise(z[:7]) == 0.0 and series_noise(z[:7], MIN_MISFIT) > 0.0


def test_the_features_read_the_misfit_and_say_where_it_is_missing() -> None:
    seen = 10
    raw = np.array([12.0, 20.0, 30.0, math.inf])
    weighed = np.array([12.0, 15.0, 15.0, 20.0])
    names = {name: i for i, name in enumerate(CORRECTION_FEATURES)}
    missing = correction_features(raw, weighed, seen, 100.0, misfit=None)
    prior = missing[names["prior_median"]]
    assert missing[names["no_misfit"]] == 1.0 and missing[names["log_misfit"]] == 0.0
    assert missing[names["prior_median_x_log_misfit"]] == 0.0
    assert missing[names["prior_median_x_no_misfit"]] == prior
    known = correction_features(raw, weighed, seen, 100.0, misfit=math.e)
    assert known[names["no_misfit"]] == 0.0 and known[names["prior_median_x_no_misfit"]] == 0.0
    assert known[names["log_misfit"]] == pytest.approx(1.0)
    assert known[names["prior_median_x_log_misfit"]] == pytest.approx(prior)
    # the first three features do not depend on the misfit
    assert np.array_equal(known[:3], missing[:3])
    # clipped: a ratio below 1 reads as 1, a huge one as exp(MISFIT_LOG_CLIP[1])
    low = correction_features(raw, weighed, seen, 100.0, misfit=0.3)
    high = correction_features(raw, weighed, seen, 100.0, misfit=1e6)
    assert low[names["log_misfit"]] == MISFIT_LOG_CLIP[0] and low[names["no_misfit"]] == 0.0
    assert high[names["log_misfit"]] == MISFIT_LOG_CLIP[1]
    for bad in (math.nan, math.inf, 0.0):
        assert correction_features(raw, weighed, seen, 100.0, misfit=bad)[names["no_misfit"]] == 1.0


def test_a_slope_that_falls_with_the_misfit_shrinks_a_misfit_runs_forecast_harder() -> None:
    seen = 20
    remaining = np.geomspace(30.0, 3000.0, 257)  # prior median 300 remaining: x = log(15)
    weighed = np.sort(seen + remaining)
    # y = 0 + (1 - 0.5 log m) x: the forecast itself where m = 1, pulled to seen remaining where m = e^2
    coef = (0.0, 1.0, 0.0, 0.0, -0.5)
    fitting = correct(weighed, weighed, seen, 1e9, coef, misfit=1.0)
    missing = correct(weighed, weighed, seen, 1e9, coef, misfit=None)
    misfit = correct(weighed, weighed, seen, 1e9, coef, misfit=math.exp(2.0))
    assert np.allclose(fitting, weighed) and np.allclose(missing, weighed)
    assert float(np.median(misfit - seen)) == pytest.approx(seen, rel=1e-9)


def _curve_fits(length: int) -> tuple[fit_stop.Record, np.ndarray]:
    curve = make("step_lr", 2)
    params = dataclasses.replace(StopParams.shipped(), correction=(0.1, 0.5, 0.0, 0.0, -0.1, 0.2, 0.3, -0.4))
    (record,) = fit_stop.records([curve], params, (length / curve.stop,))
    return record, curve.rule.sign * curve.values[: record.seen]


@pytest.mark.parametrize("length", [3, 30])
def test_a_record_carries_the_forecasts_misfit_and_scores_the_forecast(length: int) -> None:
    record, z = _curve_fits(length)
    curve, params = record.curve, record.params
    simulated = raw_stop_samples(curve.rule, curve.state_after(record.seen), z, params, seed=0)
    assert simulated is not None
    assert record.misfit == misfit_ratio(simulated[1], z)
    assert (record.misfit is None) == (record.seen < MIN_MISFIT)
    fc = forecast(curve.rule, curve.state_after(record.seen), z, params, seed=0)
    fit_stop.clear_memo()
    assert fit_stop.interval(record, (params.kappa_low, params.kappa_high)) == (fc.epochs, fc.low, fc.high)
    fed = StopForecaster.from_rule(curve.rule, params=params)
    assert fed.replay(curve.values[: record.seen]) == fc


def test_the_misfit_specs_are_searched_after_the_old_ones() -> None:
    specs = [s for s in fit_stop.CORRECTION_SPECS if s is not None]
    old = [s for s in specs if "prior_median_x_log_misfit" not in s[0]]
    new = [s for s in specs if "prior_median_x_log_misfit" in s[0]]
    assert fit_stop.CORRECTION_SPECS[0] is None and specs[: len(old)] == old  # a tie keeps an old spec
    assert {s[0] for s in new} == {fit_stop.MISFIT_SLOPE, fit_stop.MISFIT_LEVEL, fit_stop.MISFIT_OWN}
    for names, _ in specs:
        assert set(names) <= set(CORRECTION_FEATURES)
