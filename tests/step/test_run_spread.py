"""The run-dependent spread of the stop interval (``StopParams.spread_power``; off in the shipped file)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_calibration import SPREAD_CLIP, SPREAD_REF, run_spread, spread_factor

CLEAN = [0.5 + 0.45 * (1.0 - math.exp(-k / 8.0)) for k in range(1, 13)]  # toward 0.95, threshold 0.9


def _width(power: float, values: list[float]) -> tuple[int, int]:
    params = dataclasses.replace(StopParams.shipped(), spread_power=power)
    f = StopForecaster("max", stopping_threshold=0.9, params=params).replay(values)
    assert f is not None and f.low is not None and f.high is not None
    return f.low, f.high


def test_the_run_spread_is_the_normal_spread_of_the_log_remaining_evaluations() -> None:
    rng = np.random.default_rng(0)
    samples = 10.0 + np.exp(2.0 + 0.7 * rng.standard_normal(20_000))
    assert run_spread(samples, 10, 1e9) == pytest.approx(0.7, rel=0.03)
    assert run_spread(np.full(100, 30.0), 10, 1e9) == 0.0
    assert run_spread(np.array([]), 10, 100.0) == 0.0


def test_a_stop_beyond_the_horizon_counts_at_the_horizon() -> None:
    samples = np.array([20.0] * 50 + [math.inf] * 50)
    assert math.isfinite(run_spread(samples, 10, 100.0)) and run_spread(samples, 10, 100.0) > 0.0


def test_the_factor_is_one_when_off_and_follows_the_spread_when_on() -> None:
    rng = np.random.default_rng(1)
    narrow = 10.0 + np.exp(2.0 + 0.1 * rng.standard_normal(5000))
    wide = 10.0 + np.exp(5.0 + 2.0 * rng.standard_normal(5000))
    assert spread_factor(wide, 10, 1e9, 0.0) == 1.0
    assert spread_factor(narrow, 10, 1e9, 1.0) < 1.0 < spread_factor(wide, 10, 1e9, 1.0)
    assert spread_factor(wide, 10, 1e9, 1.0) == pytest.approx(2.0 / SPREAD_REF, rel=0.05)
    assert spread_factor(np.full(10, 30.0), 10, 1e9, 1.0) == SPREAD_CLIP[0]  # clipped, never zero


def test_off_is_the_global_spread() -> None:
    shipped = StopParams.shipped()
    assert shipped.spread_power == 0.0  # the nested selection kept one spread (docs/step.md)
    on = dataclasses.replace(shipped, spread_power=0.5)
    a = StopForecaster("max", stopping_threshold=0.9, params=shipped).replay(CLEAN)
    b = StopForecaster("max", stopping_threshold=0.9, params=on).replay(CLEAN)
    assert a is not None and b is not None
    assert a.epochs == b.epochs  # the spread acts on the interval's tails, the median barely moves
    assert (a.low, a.high) != (b.low, b.high)


def test_a_positive_power_narrows_the_interval_of_a_run_whose_futures_agree() -> None:
    low0, high0 = _width(0.0, CLEAN)
    low1, high1 = _width(1.0, CLEAN)
    assert high1 - low1 < high0 - low0


def test_spread_power_is_validated() -> None:
    with pytest.raises(TypeError, match="spread_power"):
        StopParams(spread_power="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spread_power"):
        StopParams(spread_power=math.nan)
