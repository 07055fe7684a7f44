"""StopForecaster and the pure EarlyStopping rule: semantics, validation, forecasts, determinism, speed."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from lightning_energy.step.stop import StopForecast, StopForecaster, StopParams
from lightning_energy.step.stop_rule import RuleState, StopRule, final_state, simulate


def test_rule_follows_early_stopping_semantics() -> None:
    # patience counts evaluations without an improvement larger than min_delta
    state = final_state(StopRule("min", patience=2, min_delta=0.1), [1.0, 0.95, 0.93, 0.5])
    assert state.stopped and state.evaluations == 3 and "no improvement" in state.why
    state = final_state(StopRule("max", stopping_threshold=0.9), [0.5, 0.8, 0.91, 0.95])
    assert state.stopped and state.evaluations == 3
    state = final_state(StopRule("min", divergence_threshold=5.0, patience=100), [1.0, 2.0, 6.0])
    assert state.stopped and state.evaluations == 3 and "divergence" in state.why
    state = final_state(StopRule("min", patience=100), [1.0, math.nan])
    assert state.stopped and "finite" in state.why
    state = final_state(StopRule("min", max_evaluations=4), [1.0, 0.9, 0.8, 0.7, 0.6])
    assert state.stopped and state.evaluations == 4


def test_simulate_matches_the_sequential_rule() -> None:
    rng = np.random.default_rng(3)
    rule = StopRule("min", patience=3, min_delta=0.01, stopping_threshold=0.2, max_evaluations=40)
    futures = 1.0 / np.arange(1, 41) + 0.05 * rng.standard_normal((50, 40))
    stops = simulate(rule, RuleState(), futures)
    for row, stop in zip(futures, stops, strict=True):
        assert final_state(rule, list(row)).evaluations == stop


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "best"}, "mode"),
        ({"patience": -1}, "patience"),
        ({"patience": 2.5}, "patience"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"stopping_threshold": math.nan}, "stopping_threshold"),
        ({"divergence_threshold": "x"}, "divergence_threshold"),
        ({"max_evaluations": 0}, "max_evaluations"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        StopForecaster(**kwargs)  # type: ignore[arg-type]


def test_forecast_of_a_clean_threshold_run_is_close_and_covered() -> None:
    n = np.arange(1, 61)
    values = 0.9 - 0.5 * np.exp(-n / 12.0)
    truth = int(np.argmax(values > 0.85)) + 1
    fc = StopForecaster("max", stopping_threshold=0.85, seed=1)
    results = [fc.update(float(v)) for v in values[: truth // 2]]
    last = results[-1]
    assert last.epochs is not None and last.low is not None and last.high is not None
    assert abs(last.epochs - truth) / truth < 0.3  # 25 % under the shipped constants (raw median 18 %)
    assert last.low <= truth <= last.high
    assert results[0].epochs is None and "cannot tell" in results[0].reason
    assert 0.0 <= last.p_stop_before(truth) <= 1.0
    assert last.p_stop_before(last.seen + 1) == 0.0
    assert last.p_stop_before(10 * truth) > 0.9  # the calibrated spread leaves a thin tail beyond


def test_patience_run_on_a_plateau_predicts_a_near_stop() -> None:
    rng = np.random.default_rng(0)
    values = 0.3 + 0.002 * rng.standard_normal(40)
    fc = StopForecaster("min", patience=5, min_delta=0.01)
    last = None
    for v in values[:4]:
        last = fc.update(float(v))
    assert last is not None and last.epochs is not None
    assert last.epochs <= 8  # no improvement of 0.01 is in sight: stop 5 evaluations after the first
    assert last.p_stop_before(last.epochs + 1) >= 0.5


def test_stopped_run_and_rule_without_criterion() -> None:
    fc = StopForecaster("max", stopping_threshold=0.5)
    done = [fc.update(v) for v in (0.1, 0.2, 0.6)][-1]
    assert done.stopped and done.epochs == done.low == done.high == 3
    assert done.p_stop_before(4) == 1.0 and done.p_stop_before(3) == 0.0
    again = fc.update(0.7)  # the run went on (should_stop reset elsewhere): still past the threshold
    assert again.stopped and again.seen == 4 and "went on after its stop at evaluation 3" in again.reason
    free = StopForecaster("min")
    assert [free.update(1.0 / k) for k in range(1, 6)][-1].epochs is None


def test_forecasts_are_deterministic_and_frozen() -> None:
    values = [2.0, 1.5, 1.3, 1.2, 1.15, 1.12]
    a, b = StopForecaster("min", patience=3), StopForecaster("min", patience=3)
    fa = [a.update(v) for v in values][-1]
    fb = [b.update(v) for v in values][-1]
    assert fa == fb and isinstance(fa, StopForecast)
    with pytest.raises(AttributeError):
        fa.epochs = 3  # type: ignore[misc]


def test_max_evaluations_bounds_the_forecast() -> None:
    fc = StopForecaster("min", patience=50, max_evaluations=20)
    last = [fc.update(1.0 / k) for k in range(1, 8)][-1]
    assert last.epochs is not None and last.high is not None
    assert last.epochs <= 20 and last.high <= 20


def test_shipped_params_load_and_validate() -> None:
    params = StopParams.shipped()
    assert params.kappa_low >= 0 and params.kappa_high >= 0 and params.draws >= 16
    with pytest.raises(ValueError, match="draws"):
        StopParams(draws=1)


def test_update_costs_milliseconds() -> None:
    values = 1.0 + 2.0 * np.arange(1, 41) ** -0.7
    fc = StopForecaster("min", patience=5)
    started = time.perf_counter()
    for v in values:
        fc.update(float(v))
    assert (time.perf_counter() - started) / values.size < 0.25  # generous: a loaded CI box; typical ~5 ms


def test_p_stop_before_is_a_distribution_function() -> None:
    fc = StopForecaster("min", patience=4, seed=2)
    last = [fc.update(1.0 + 2.0 * k**-0.6) for k in range(1, 9)][-1]
    probs = [last.p_stop_before(n) for n in range(last.seen, last.seen + 200)]
    assert probs[0] == 0.0 and probs[-1] <= 1.0
    assert all(b >= a for a, b in itertools.pairwise(probs))
    assert last.low is not None and last.p_stop_before(last.low) <= 0.05 + 1e-9


def test_divergence_threshold_must_lie_beyond_the_stopping_threshold() -> None:
    with pytest.raises(ValueError, match="divergence_threshold"):
        StopRule("min", stopping_threshold=1.0, divergence_threshold=0.5)
    StopRule("max", stopping_threshold=0.9, divergence_threshold=0.1)
