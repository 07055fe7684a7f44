"""The interval's hazard scaled by the run's own noise (``StepParams.hazard_noise_power``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from lightning_energy.step import StepParams, StepProjector
from lightning_energy.step.analysis import log_half_widths
from lightning_energy.step.params import HAZARD_NOISE_REF, hazard_scale

TABLE = (0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.1)


def _params(power: float) -> StepParams:
    tables: dict[str, Any] = {
        f.name: TABLE for f in dataclasses.fields(StepParams) if f.name.endswith(("_low", "_high"))
    }
    return dataclasses.replace(StepParams(), hazard_noise_power=power, **tables)


def test_hazard_scale_is_one_at_the_reference_and_grows_with_the_noise() -> None:
    assert hazard_scale(0.5, 0.0) == 1.0
    assert hazard_scale(HAZARD_NOISE_REF, 1.0) == pytest.approx(1.0)
    assert hazard_scale(4 * HAZARD_NOISE_REF, 0.5) == pytest.approx(2.0)
    assert hazard_scale(0.0, 1.0) == 0.25  # kept within HAZARD_SCALE_RANGE
    assert hazard_scale(1.0, 1.0) == 4.0
    assert hazard_scale(0.002, 1.0) < hazard_scale(0.02, 1.0)


def test_power_zero_keeps_one_hazard_per_group_and_bucket() -> None:
    params = _params(0.0)
    quiet = log_half_widths(0.001, 0.8, "steady", 0.9, params)
    noisy = log_half_widths(0.01, 0.8, "steady", 0.9, params)
    assert quiet[1] == pytest.approx(math.hypot(1.645 * 0.001, 0.1), rel=1e-3)
    assert noisy[1] == pytest.approx(math.hypot(1.645 * 0.01, 0.1), rel=1e-3)


def test_the_hazard_follows_the_runs_own_noise_half_width() -> None:
    params = _params(1.0)
    z = 1.6448536269514722
    for sd in (0.002, 0.005, 0.02):  # factors within HAZARD_SCALE_RANGE
        low, high = log_half_widths(sd, 0.8, "steady", 0.9, params)
        factor = z * sd / HAZARD_NOISE_REF
        assert low == pytest.approx(math.hypot(z * sd, 0.1 * factor))
        assert high == pytest.approx(math.hypot(z * sd, 0.1 * factor))
    # a 95 % interval scales the whole 90 % half-width by the quantile ratio
    h90 = log_half_widths(0.002, 0.8, "steady", 0.9, params)[1]
    h95 = log_half_widths(0.002, 0.8, "steady", 0.95, params)[1]
    assert h95 == pytest.approx(h90 * 1.959963984540054 / z)


def _run(x: np.ndarray, params: StepParams, total: int) -> list[float]:
    step = StepProjector(params=params)
    out = []
    for e in x:
        p = step.update(float(e), 1.0, total_epochs=total)
        out.append((p.high_j - p.low_j) / p.total_j)
    return out


def test_a_quiet_run_gets_a_narrower_interval_than_a_noisy_one_in_the_same_group() -> None:
    rng = np.random.default_rng(3)
    quiet = 1000.0 * (1 + 0.002 * rng.standard_normal(40))
    noisy = 1000.0 * (1 + 0.015 * rng.standard_normal(40))
    conditional, pooled = _params(1.0), _params(0.0)
    w_quiet, w_noisy = _run(quiet, conditional, 100)[-1], _run(noisy, conditional, 100)[-1]
    assert w_quiet < 0.6 * w_noisy
    # with one hazard per group both carry the same table term: the quiet run is hardly narrower
    p_quiet, p_noisy = _run(quiet, pooled, 100)[-1], _run(noisy, pooled, 100)[-1]
    assert p_quiet > 0.7 * p_noisy


def test_the_interval_narrows_as_the_run_nears_its_end() -> None:
    rng = np.random.default_rng(4)
    x = 1000.0 * (1 + 0.005 * rng.standard_normal(60))
    widths = _run(x, _params(1.0), 60)
    assert widths[20] > widths[40] > widths[58]


@pytest.mark.parametrize("power", [-0.1, 2.5])
def test_hazard_noise_power_is_validated(power: float) -> None:
    with pytest.raises(ValueError, match="hazard_noise_power"):
        StepParams(hazard_noise_power=power)
