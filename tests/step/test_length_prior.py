"""The length prior of the stop forecast: simulated stops reweighed by (seen / T) ^ length_prior."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_calibration import weigh_by_length


def test_no_prior_leaves_the_samples_as_they_are() -> None:
    samples = np.array([12.0, 20.0, 40.0, math.inf])
    assert weigh_by_length(samples, 10, 0.0, 100.0) is samples


def test_the_prior_moves_mass_toward_short_runs_in_proportion_to_the_weights() -> None:
    samples = np.array([20.0] * 500 + [40.0] * 500)  # even odds before the prior
    out = weigh_by_length(samples, 10, 2.0, 1000.0)
    assert out.size == samples.size and np.all(np.diff(out) >= 0)
    # weights (10/20)^2 = 1/4 and (10/40)^2 = 1/16: the short run gets 4/5 of the mass
    assert np.mean(out == 20.0) == pytest.approx(0.8, abs=0.002)


def test_a_stop_beyond_the_horizon_weighs_as_one_at_the_horizon() -> None:
    samples = np.array([100.0] * 500 + [math.inf] * 500)
    out = weigh_by_length(samples, 10, 1.0, 100.0)
    assert np.mean(np.isinf(out)) == pytest.approx(0.5, abs=0.002)


def test_the_prior_shortens_an_open_forecast() -> None:
    values = [0.5 + 0.02 * k for k in range(6)]  # a slow rise toward a far threshold
    plain = dataclasses.replace(StopParams.shipped(), length_prior=0.0)
    prior = dataclasses.replace(plain, length_prior=2.0)
    fa = StopForecaster("max", stopping_threshold=0.8, params=plain).replay(values)
    fb = StopForecaster("max", stopping_threshold=0.8, params=prior).replay(values)
    assert fa is not None and fb is not None
    assert fb.epochs is not None
    assert fa.epochs is None or fb.epochs <= fa.epochs
    assert fb.p_stop_before(30) >= fa.p_stop_before(30)


def test_length_prior_is_validated() -> None:
    with pytest.raises(ValueError, match="length_prior"):
        StopParams(length_prior=-1.0)
