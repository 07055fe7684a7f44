"""StopForecaster under the Trainer's and EarlyStopping's less common settings: ``check_finite=False``,
``min_evaluations`` (``min_epochs``) and a run that goes on after a stop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_energy.step.stop import StopForecaster

RISING = [0.9 - 0.5 * math.exp(-(i + 1) / 4.0) for i in range(40)]  # passes 0.85 at evaluation 10


def test_a_value_after_a_stop_goes_on_and_the_forecast_carries_on() -> None:
    fc = StopForecaster("min", patience=3, seed=1)
    flat = [1.0, 0.8, 0.7, 0.7, 0.7, 0.7]  # patience 3 fires at the sixth
    assert [fc.update(v) for v in flat][-1].stopped
    on = [fc.update(0.7 - 0.01 * k) for k in range(1, 6)]  # the run went on, and improves
    assert not any(f.stopped for f in on)
    assert all("went on after its stop at evaluation 6" in f.reason for f in on)
    last = on[-1]
    assert last.seen == 11 and last.epochs is not None and last.epochs > 11 and last.samples
    assert "stop predicted at evaluation" in last.reason
    again = fc.update(0.7)  # no improvement: the wait is 1, not yet 3
    assert not again.stopped
    assert not fc.update(0.7).stopped and fc.update(0.7).stopped  # the third without improvement fires


def test_replay_through_a_stop_equals_updates() -> None:
    values = [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6, 0.55, 0.5]
    one, two = StopForecaster("min", patience=3), StopForecaster("min", patience=3)
    last = [one.update(v) for v in values][-1]
    assert two.replay(values) == last and "went on" in last.reason


def test_a_firing_before_the_minimum_makes_the_stop_known() -> None:
    fc = StopForecaster("max", stopping_threshold=0.85, min_evaluations=15)
    out = [fc.update(v) for v in RISING[:15]]
    for seen in range(10, 15):  # fired at 10: should_stop stays set, the run ends at 15
        f = out[seen - 1]
        assert not f.stopped and f.epochs == f.low == f.high == 15
        assert f.p_stop_before(15) == 0.0 and f.p_stop_before(16) == 1.0
        assert "fired at evaluation 10" in f.reason
    assert out[-1].stopped and out[-1].seen == 15 and "held to evaluation 15" in out[-1].reason


@pytest.mark.parametrize("seen", [5, 7])
def test_the_minimum_floors_the_forecast_of_the_firing(seen: int) -> None:
    free = StopForecaster("max", stopping_threshold=0.85, seed=3)
    held = StopForecaster("max", stopping_threshold=0.85, min_evaluations=14, seed=3)
    f = [free.update(v) for v in RISING[:seen]][-1]
    h = [held.update(v) for v in RISING[:seen]][-1]
    assert f.epochs is not None and f.low is not None and f.low < 14  # the rule alone may fire earlier
    assert h.samples == tuple(np.maximum(np.asarray(f.samples), 14.0))
    assert h.low == max(f.low, 14) and h.epochs == max(f.epochs, 14)
    assert h.p_stop_before(14) == 0.0 and "not before evaluation 14" in h.reason


def test_without_check_finite_a_nan_is_no_stop_and_is_left_out_of_the_fit() -> None:
    values = [*RISING[:6], math.nan, *RISING[6:8]]
    strict = StopForecaster("max", stopping_threshold=0.85)
    assert [strict.update(v) for v in values][6].stopped  # check_finite (the default) stops on the NaN
    lax = StopForecaster("max", stopping_threshold=0.85, patience=4, check_finite=False)
    out = [lax.update(v) for v in values]
    assert not any(f.stopped for f in out) and lax.seen == 9
    assert out[-1].epochs is not None and out[-1].epochs > 9
    nans = StopForecaster("max", stopping_threshold=0.85, patience=2, check_finite=False)
    assert [nans.update(v) for v in [0.5, math.nan, math.nan]][-1].stopped  # no improvement twice


def test_the_keyword_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="min_evaluations"):
        StopForecaster("min", patience=3, min_evaluations=0)
    with pytest.raises(TypeError, match="check_finite"):
        StopForecaster("min", patience=3, check_finite="no")  # type: ignore[arg-type]
