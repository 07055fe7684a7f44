"""The stop forecaster's data (tools/stop_data.py): generated curves and the real MLPerf eval curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_energy.step.stop import StopForecaster
from lightning_energy.step.stop_rule import RuleState, advance
from tools.stop_data import KINDS, MLPERF_CURVES, generated, load_mlperf, make, parts


def test_generated_curves_stop_where_their_rule_stops_them() -> None:
    for kind in KINDS:
        curve = make(kind, 3)
        assert np.array_equal(curve.values, make(kind, 3).values)  # deterministic
        state = RuleState()
        for i, value in enumerate(curve.values):
            state = advance(curve.rule, state, float(value))
            assert state.stopped == (i == curve.stop - 1)


def test_split_is_by_group_and_disjoint() -> None:
    curves = generated()
    report, tune = parts(curves)
    assert {c.group for c in report}.isdisjoint({c.group for c in tune})
    assert len(report) + len(tune) == len(curves)


mlperf = load_mlperf()


@pytest.mark.skipif(not mlperf, reason=f"MLPerf eval curves not found at {MLPERF_CURVES}")
def test_mlperf_runs_stop_at_the_first_evaluation_past_the_target() -> None:
    for curve in mlperf:
        state = curve.state_after(curve.stop)
        assert state.stopped and state.evaluations == curve.stop
        assert not curve.state_after(curve.stop - 1).stopped


@pytest.mark.skipif(not mlperf, reason=f"MLPerf eval curves not found at {MLPERF_CURVES}")
def test_forecaster_on_real_resnet_runs_is_close_at_half_way() -> None:
    runs = [c for c in mlperf if c.group == "resnet"]
    errors = []
    for curve in runs:
        fc = StopForecaster(curve.rule.mode, stopping_threshold=curve.rule.stopping_threshold)
        seen = math.ceil(0.5 * curve.stop)
        forecast = [fc.update(float(v)) for v in curve.values[:seen]][-1]
        assert forecast.epochs is not None
        errors.append(abs(forecast.epochs - curve.stop) / curve.stop)
    assert float(np.median(errors)) < 0.3
