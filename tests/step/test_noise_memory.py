"""The futures' autoregressive noise (``StopParams.noise_memory``): when a noisy curve first crosses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lightning_energy.step.curves import Draws, draw_curves, fit_curves
from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_noise import (
    MAX_RHO,
    MIN_MEMORY_POINTS,
    NoiseMemory,
    lag1,
    memory_values,
    start_memory,
)
from tools import fit_stop


def _ar1(rho: float, sd: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = np.empty(n)
    e[0] = sd * rng.standard_normal()
    for i in range(1, n):
        e[i] = rho * e[i - 1] + np.sqrt(1.0 - rho**2) * sd * rng.standard_normal()
    return e


def test_lag1_estimates_the_correlation_and_is_clipped() -> None:
    assert lag1(np.arange(MIN_MEMORY_POINTS - 1, dtype=float)) == 0.0  # too few residuals
    assert lag1(np.full(20, 3.0)) == 0.0  # constant: no correlation to estimate
    assert lag1(np.array([1.0, -1.0] * 10)) == 0.0  # negative correlation is clipped to 0
    assert lag1(np.arange(200.0)) == MAX_RHO  # a trend left in the residuals is clipped to MAX_RHO
    assert lag1(_ar1(0.7, 1.0, 4000, 1)) == pytest.approx(0.7, abs=0.05)
    assert lag1(_ar1(0.0, 1.0, 4000, 2)) == pytest.approx(0.0, abs=0.05)


def _draws(z: np.ndarray, draws: int = 8) -> tuple[np.ndarray, Draws]:
    fits = fit_curves(z, 0.0, 0.0)
    return z, draw_curves(fits, z.size, draws, np.random.default_rng(0))


def test_without_shocks_the_noise_decays_geometrically_from_the_last_residual() -> None:
    z = 1.0 + 0.01 * np.arange(12.0) ** 0.5
    _, curves = _draws(z)
    mean = memory_values(
        curves, NoiseMemory(np.zeros(8), np.zeros(8), np.zeros(8)), 12, 5, np.random.default_rng(1)
    )
    last = np.linspace(-0.2, 0.2, 8)
    memory = NoiseMemory(np.full(8, 0.5), np.zeros(8), last.copy())
    out = memory_values(curves, memory, 12, 5, np.random.default_rng(1))
    expected = mean + last[:, None] * 0.5 ** np.arange(1, 6)[None, :]
    assert np.allclose(out, expected)
    assert np.allclose(memory.last, last * 0.5**5)  # carried on for the next block


def test_blocks_carry_the_noise_on() -> None:
    z = 2.0 - 0.1 * np.log(np.arange(1.0, 15.0))
    _, curves = _draws(z)
    last = np.linspace(-0.1, 0.1, 8)
    whole = memory_values(
        curves, NoiseMemory(np.full(8, 0.8), np.zeros(8), last.copy()), 14, 7, np.random.default_rng(2)
    )
    memory = NoiseMemory(np.full(8, 0.8), np.zeros(8), last.copy())
    first = memory_values(curves, memory, 14, 3, np.random.default_rng(2))
    second = memory_values(curves, memory, 17, 4, np.random.default_rng(3))
    assert np.allclose(np.hstack([first, second]), whole)


def test_the_memory_starts_at_each_future_s_distance_from_its_curve() -> None:
    rng = np.random.default_rng(4)
    z = 1.0 + 0.5 * np.arange(1.0, 31.0) ** -0.5 + _ar1(0.8, 0.01, 30, 5)
    z[-1] += 0.05  # the last value lies well above the curve
    fits = fit_curves(z, 0.0, 0.0)
    curves = draw_curves(fits, z.size, 64, rng)
    memory = start_memory(curves, z)
    assert memory.rho.shape == memory.sigma.shape == memory.last.shape == (64,)
    assert np.all((memory.rho >= 0.0) & (memory.rho <= MAX_RHO))
    assert np.median(memory.last) > 0.03
    assert np.all(memory.sigma > 0.0)


def _plateau_near_threshold() -> tuple[np.ndarray, float]:
    # a plateau whose noise is strongly correlated; the threshold just below its lowest value so far
    values = 1.0 + _ar1(0.9, 0.03, 40, 7)
    return values, float(values.min()) - 0.005


def test_correlated_noise_crosses_a_threshold_later_than_independent_noise() -> None:
    values, threshold = _plateau_near_threshold()
    base = StopParams.shipped()
    results = {}
    for flag in (False, True):
        params = dataclasses.replace(base, noise_memory=flag, correction=(), length_prior=0.0)
        fc = StopForecaster("min", stopping_threshold=threshold, params=params).replay(values)
        again = StopForecaster("min", stopping_threshold=threshold, params=params).replay(values)
        assert fc is not None and fc == again  # deterministic
        results[flag] = fc
    later, earlier = results[True].epochs, results[False].epochs
    assert later is not None and earlier is not None
    assert later > earlier


def test_the_flag_is_validated_defaults_off_and_is_searched() -> None:
    with pytest.raises(TypeError, match="noise_memory"):
        StopParams(noise_memory=1)  # type: ignore[arg-type]
    assert StopParams().noise_memory is False
    assert fit_stop.GRID["noise_memory"] == (False, True)
    assert "noise_memory" not in fit_stop.FIXED_WHEN_REDUCED  # simulated: --reduced keeps the shipped
