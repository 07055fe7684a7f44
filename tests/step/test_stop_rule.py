"""The pure stop rule against Lightning's own ``EarlyStopping`` and fit loop semantics: ``check_finite``,
``min_evaluations`` (the Trainer's ``min_epochs``) and a run that goes on after a stop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from lightning_energy.step.stop_rule import RuleState, StopRule, advance, simulate


def states(rule: StopRule, values: list[float]) -> list[RuleState]:
    """The rule's state after every value, fed on through stops (a run that goes on)."""
    out, state = [], RuleState()
    for v in values:
        state = advance(rule, state, v)
        out.append(state)
    return out


def first_stop(rule: StopRule, values: list[float]) -> int:
    """The evaluation at which the run ends (``inf``: none of the values ends it)."""
    return next((s.evaluations for s in states(rule, values) if s.stopped), math.inf)  # type: ignore[return-value]


# values on a grid of 1/8 (exact in float32, as Lightning compares), with NaN and infinities
SPECIAL = (math.nan, math.inf, -math.inf)


def curve(rng: np.random.Generator, size: int) -> list[float]:
    values = [float(v) for v in np.round(8.0 * rng.uniform(0.0, 2.0, size)) / 8.0]
    for i in rng.choice(size, size=rng.integers(0, 4), replace=False):
        values[int(i)] = SPECIAL[int(rng.integers(0, 3))]
    return values


@pytest.mark.parametrize("check_finite", [True, False])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_advance_is_lightnings_evaluate_stopping_criteria_value_by_value(
    mode: str, check_finite: bool
) -> None:
    """Every value's firing, best and wait equal ``EarlyStopping``'s, which is called on through its own
    firings (the run went on): its best and wait keep going and it fires again while the condition holds."""
    rng = np.random.default_rng(7 if mode == "min" else 8)
    for trial in range(60):
        threshold = None if trial % 3 == 0 else (0.25 if mode == "min" else 1.75)
        divergence = None if trial % 2 == 0 else (1.875 if mode == "min" else 0.125)
        patience = int(rng.integers(1, 5))
        min_delta = (0.0, 0.125, 0.25)[trial % 3]
        es = EarlyStopping(
            "m",
            mode=mode,
            patience=patience,
            min_delta=min_delta,
            check_finite=check_finite,
            stopping_threshold=threshold,
            divergence_threshold=divergence,
        )
        rule = StopRule(mode, threshold, patience, min_delta, divergence, check_finite=check_finite)
        sign = 1.0 if mode == "min" else -1.0
        for value, state in zip(values := curve(rng, 25), states(rule, values), strict=True):
            fired, _ = es._evaluate_stopping_criteria(torch.tensor(value, dtype=torch.float64))
            assert state.stopped == fired, (trial, values, state)
            assert state.wait == es.wait_count
            best = sign * float(es.best_score)
            assert state.best == best or (math.isnan(state.best) and math.isnan(best))


def test_without_check_finite_a_nan_is_no_improvement_and_counts_toward_the_patience() -> None:
    rule = StopRule("min", patience=2, check_finite=False)
    run = states(rule, [1.0, math.nan, 0.5, math.nan, math.nan, 0.1])
    assert [s.stopped for s in run] == [False, False, False, False, True, False]
    assert [s.wait for s in run] == [0, 1, 0, 1, 2, 0]
    assert run[4].best == 0.5 and "no improvement in 2" in run[4].why
    assert not states(StopRule("min", patience=100, check_finite=False), [1.0, math.nan])[-1].stopped
    assert states(StopRule("min", patience=100), [1.0, math.nan])[-1].stopped  # check_finite (default)
    # an infinity compares as a number: +inf passes a divergence threshold, -inf a stopping threshold
    assert states(StopRule("min", divergence_threshold=5.0, check_finite=False), [1.0, math.inf])[-1].stopped
    assert states(StopRule("min", stopping_threshold=0.1, check_finite=False), [-math.inf])[-1].stopped
    low = states(StopRule("min", patience=1, check_finite=False), [1.0, -math.inf, 0.5])
    assert low[1].best == -math.inf and not low[1].stopped and low[2].stopped  # nothing beats -inf


def test_a_firing_before_min_evaluations_ends_the_run_there_whatever_follows() -> None:
    # Lightning keeps should_stop set; the fit loop ends at the first boundary where min_epochs is met
    rule = StopRule("max", stopping_threshold=0.8, min_evaluations=6)
    run = states(rule, [0.5, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert [s.stopped for s in run] == [False, False, False, False, False, True, False]
    assert [s.fired_at for s in run[:6]] == [0, 2, 2, 2, 2, 2]
    assert run[2].pending and not run[0].pending
    assert run[5].why == "reached stopping_threshold 0.8 (first fired at evaluation 2, held to evaluation 6)"
    # a first firing at or after min_evaluations ends the run at once
    assert first_stop(rule, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.9]) == 8
    # min_evaluations beyond max_evaluations: the bound ends the run first
    bounded = StopRule("max", stopping_threshold=0.8, min_evaluations=6, max_evaluations=4)
    assert bounded.hold == 4 and first_stop(bounded, [0.9, 0.1, 0.1, 0.1, 0.1]) == 4


def test_after_a_stop_the_rule_carries_on_and_fires_again_while_its_condition_holds() -> None:
    rule = StopRule("min", patience=2)
    run = states(rule, [1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.7])
    assert [s.stopped for s in run] == [False, False, True, True, False, False, True]
    assert [s.wait for s in run] == [0, 1, 2, 3, 0, 1, 2]
    assert run[3].fired_at == 4  # should_stop was reset after the stop at 3: set again at 4
    held = StopRule("min", patience=1, min_evaluations=3)
    run = states(held, [1.0, 1.0, 1.0, 0.5, 0.5])
    assert [s.stopped for s in run] == [False, False, True, False, True]


@pytest.mark.parametrize(
    "rule",
    [
        StopRule("min", patience=3, min_delta=0.01, stopping_threshold=0.2, max_evaluations=40),
        StopRule("min", patience=3, stopping_threshold=0.2, min_evaluations=15, max_evaluations=40),
        StopRule("min", patience=2, min_delta=0.01, divergence_threshold=1.5, min_evaluations=12),
        StopRule("min", patience=3, check_finite=False, divergence_threshold=1.5),
        StopRule("min", patience=3, min_delta=0.02, check_finite=False, stopping_threshold=0.2),
    ],
)
def test_simulate_matches_the_sequential_rule(rule: StopRule) -> None:
    rng = np.random.default_rng(3)
    futures = 1.0 / np.arange(1, 41) + 0.05 * rng.standard_normal((80, 40))
    futures[rng.random(futures.shape) < 0.03] = np.nan
    futures[rng.random(futures.shape) < 0.01] = np.inf
    futures[rng.random(futures.shape) < 0.005] = -np.inf
    stops = simulate(rule, RuleState(), futures)
    for row, stop in zip(futures, stops, strict=True):
        assert first_stop(rule, list(row)) == stop
    # from a state after a few evaluations, pending or not
    for row in futures[:20]:
        start = states(rule, list(row[:5]))
        if any(s.stopped for s in start):
            continue
        state = start[-1]
        expected = first_stop(rule, list(row))
        assert simulate(rule, state, row[None, 5:])[0] == expected


def test_min_evaluations_is_validated() -> None:
    with pytest.raises(ValueError, match="min_evaluations"):
        StopRule(min_evaluations=0)
    with pytest.raises(TypeError, match="check_finite"):
        StopRule(check_finite=1)  # type: ignore[arg-type]


def test_final_state_stops_at_the_rules_stop_and_a_forecaster_from_a_rule_keeps_every_field() -> None:
    from lightning_energy.step.stop import StopForecaster
    from lightning_energy.step.stop_rule import final_state

    rule = StopRule("min", patience=2, check_finite=False, min_evaluations=4, max_evaluations=50)
    state = final_state(rule, [1.0, 1.0, 1.0, 1.0, 0.5, 0.4])  # fires at 3, held to 4: the rest unread
    assert state.stopped and state.evaluations == 4 and state.fired_at == 3
    assert StopForecaster.from_rule(rule).rule == rule
