"""StopTracker: the stop forecast's saved state is replayed on resume and validated (pure, no Lightning)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lightning_energy.step.hints import EvalSchedule
from lightning_energy.step.stop import StopForecaster
from lightning_energy.step.stop_tracker import SavedStop, StopSettings, StopTracker

VALUES = [0.9 - 0.5 * math.exp(-(i + 1) / 4.0) for i in range(12)]


def tracker(monitor: str = "acc", patience: int = 1000) -> StopTracker:
    settings = StopSettings(monitor=monitor, mode="max", patience=patience, stopping_threshold=0.88)
    return StopTracker(settings, EvalSchedule(), max_epochs=60)


def test_a_resumed_tracker_forecasts_as_the_uninterrupted_one() -> None:
    whole = tracker()
    for v in VALUES:
        whole.evaluate(v)
    first = tracker()
    for v in VALUES[:7]:
        first.evaluate(v)
    saved = StopTracker.check_state(first.state_dict())
    assert saved == SavedStop("acc", tuple(VALUES[:7]))
    resumed = tracker()
    assert resumed.load_state_dict(saved) is None
    assert resumed.forecast == first.forecast  # the forecast is back before the next evaluation
    for v in VALUES[7:]:
        resumed.evaluate(v)
    assert resumed.forecast == whole.forecast
    assert resumed.forecaster.seen == 12
    assert resumed.state_dict() == whole.state_dict()


def test_replay_equals_updates_and_empty_replay_forecasts_nothing() -> None:
    one, two = StopForecaster("max", 0.88, 1000), StopForecaster("max", 0.88, 1000)
    last = [one.update(v) for v in VALUES][-1]
    assert two.replay(VALUES) == last
    assert StopForecaster("max", 0.88).replay([]) is None


def test_a_non_finite_last_value_is_saved_as_none_and_replays_as_a_stop() -> None:
    first = tracker()
    for v in [*VALUES[:3], math.nan]:
        first.evaluate(v)
    assert first.forecast is not None and first.forecast.stopped
    state = first.state_dict()
    assert state["values"][-1] is None
    resumed = tracker()
    saved = StopTracker.check_state(state)
    assert saved is not None
    assert resumed.load_state_dict(saved) is None
    assert resumed.forecast is not None and resumed.forecast.stopped and resumed.forecast.seen == 4


def test_another_monitor_starts_afresh_with_a_note() -> None:
    saved = SavedStop("loss", tuple(VALUES[:5]))
    fresh = tracker()
    note = fresh.load_state_dict(saved)
    assert note is not None and "'loss'" in note and "afresh" in note
    assert fresh.forecast is None and fresh.forecaster.seen == 0


def test_a_resumed_rule_that_fires_before_the_last_saved_value_replays_a_run_that_went_on() -> None:
    strict = tracker(patience=1)  # flat values: patience 1 fires at the second, before the last saved one
    assert strict.load_state_dict(SavedStop("acc", (0.5, 0.5, 0.6))) is None
    assert strict.forecaster.seen == 3 and strict.values == [0.5, 0.5, 0.6]
    assert strict.forecast is not None and not strict.forecast.stopped  # 0.6 improved: the wait is 0
    assert "went on after its stop at evaluation 2" in strict.forecast.reason
    strict.evaluate(0.6)  # no improvement: patience 1 fires again
    assert strict.forecast.stopped and strict.forecast.seen == 4


def test_a_failing_replay_starts_afresh_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: StopForecaster, values: Any) -> None:
        raise ValueError("numerical trouble")

    monkeypatch.setattr(StopForecaster, "replay", fail)
    t = tracker()
    note = t.load_state_dict(SavedStop("acc", tuple(VALUES[:5])))
    assert note is not None and "numerical trouble" in note and "afresh" in note
    assert t.forecast is None and t.values == [] and t.forecaster.seen == 0


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([1, 2], "not a mapping"),
        ({"version": 9, "monitor": "acc", "values": []}, "version 9"),
        ({"version": 1, "monitor": "", "values": []}, "monitor"),
        ({"version": 1, "monitor": "acc", "values": "0.5"}, "must be a list"),
        ({"version": 1, "monitor": "acc", "values": [0.5, "x"]}, "value 1"),
        ({"version": 1, "monitor": "acc", "values": [0.5, True]}, "value 1"),
        ({"version": 1, "monitor": "acc", "values": [math.inf]}, "non-finite"),
    ],
)
def test_malformed_state_is_refused_with_a_named_reason(state: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        StopTracker.check_state(state)


def test_no_saved_state_is_none() -> None:
    assert StopTracker.check_state(None) is None


def test_load_needs_a_fresh_tracker() -> None:
    used = tracker()
    used.evaluate(0.5)
    with pytest.raises(ValueError, match="seen nothing"):
        used.load_state_dict(SavedStop("acc", (0.5,)))


def test_a_foreign_saved_state_dropped_on_resume_drops_the_replayed_forecast_too() -> None:
    from lightning_energy.accounting import EpochRecord
    from lightning_energy.budget import Budget
    from lightning_energy.run import EnergyRun

    saved = EnergyRun()
    saved.set_budget(Budget(max_epochs=60))
    saved.set_stop(tracker())
    for epoch, value in enumerate(VALUES[:4]):
        saved.finish_epoch(EpochRecord(epoch, 1.0, 100.0, {"gpu": 100.0}, None, 4))
        assert saved.stop is not None
        saved.stop.evaluate(value)
    run = EnergyRun()
    run.load_state_dict(saved.state_dict())
    run.set_budget(Budget(max_epochs=60))
    run.set_stop(tracker())
    assert run.stop is not None and run.stop.forecaster.seen == 4  # replayed
    assert run.note_unmetered(2) is not None  # the state holds epochs 0-3, training resumes at 2: dropped
    assert run.stop is not None and run.stop.forecaster.seen == 0 and run.stop.values == []
    assert run.stop.settings == tracker().settings


def test_a_metric_present_at_the_first_epoch_end_is_fed_there() -> None:
    t = tracker()
    t.at_epoch_end(0, VALUES[0])
    assert t.reads_late is False and t.values == [VALUES[0]] and t.pending_epoch is None
    assert t.after_epoch_end(VALUES[0]) is None  # nothing pending: the value is not fed twice
    t.at_epoch_end(1, None)  # a missing value later is just missing, not a switch to reading late
    assert t.reads_late is False and t.values == [VALUES[0]]


def test_a_metric_missing_at_the_first_epoch_end_is_read_after_the_modules_hook() -> None:
    t = tracker()
    for epoch, value in enumerate(VALUES[:4]):
        t.at_epoch_end(epoch, None if epoch == 0 else VALUES[epoch - 1])  # what the hook sees: stale
        assert t.reads_late and t.pending_epoch == epoch
        assert t.values == VALUES[:epoch]  # the stale value is not fed
        assert t.after_epoch_end(value) == epoch
        assert t.pending_epoch is None and t.values == VALUES[: epoch + 1]
    assert t.after_epoch_end(VALUES[5]) is None  # nothing pending
    t.at_epoch_end(4, VALUES[3])
    assert t.after_epoch_end(None) is None and t.values == VALUES[:4]  # logged nothing that epoch
    fresh = t.fresh()
    assert fresh.reads_late is None and fresh.pending_epoch is None


def test_values_after_a_stopped_forecast_are_fed_the_run_went_on() -> None:
    settings = StopSettings(monitor="acc", mode="max", patience=1000, stopping_threshold=0.85)
    t = StopTracker(settings, EvalSchedule(), max_epochs=60)
    for v in VALUES[:10]:  # 0.85 is first passed at evaluation 10
        t.evaluate(v)
    assert t.forecast is not None and t.forecast.stopped and t.forecast.seen == 10
    t.evaluate(VALUES[10])  # the run went on; still past the threshold: EarlyStopping fires again
    assert (
        t.forecast.stopped
        and t.forecast.seen == 11
        and "went on after its stop at evaluation 10" in t.forecast.reason
    )
    t.evaluate(0.5)  # short of the threshold: the run goes on and the forecast with it
    assert t.values == [*VALUES[:11], 0.5] and t.forecaster.seen == 12
    assert not t.forecast.stopped and "went on after its stop at evaluation 11" in t.forecast.reason


@pytest.mark.parametrize(
    ("schedule", "min_epochs", "low"),
    [
        (EvalSchedule(), 7, 7),
        (EvalSchedule(check_val_every_n_epoch=2), 9, 4),  # validations after epochs 2, 4, 6, 8 (1-based)
        (EvalSchedule(val_check_interval=0.25), 3, 12),
        (EvalSchedule(check_val_every_n_epoch=5), 3, None),  # no evaluation before min_epochs: no hold
        (EvalSchedule(), None, None),
    ],
)
def test_min_epochs_maps_to_the_evaluations_made_in_that_many_epochs(
    schedule: EvalSchedule, min_epochs: int | None, low: int | None
) -> None:
    settings = StopSettings(monitor="acc", mode="max", patience=3, check_finite=False)
    t = StopTracker(settings, schedule, max_epochs=60, min_epochs=min_epochs)
    assert t.forecaster.rule.min_evaluations == low and not t.forecaster.rule.check_finite
    fresh = t.fresh()
    assert fresh.min_epochs == min_epochs and fresh.forecaster.rule == t.forecaster.rule


def test_a_held_run_forecasts_its_known_stop_and_resumes_it() -> None:
    settings = StopSettings(monitor="acc", mode="max", patience=1000, stopping_threshold=0.85)
    t = StopTracker(settings, EvalSchedule(), max_epochs=60, min_epochs=14)
    for v in VALUES:  # fires at evaluation 10 (0.85 passed); min_epochs holds the run to 14
        t.evaluate(v)
    assert t.forecast is not None and not t.forecast.stopped and t.forecast.epochs == 14
    resumed = t.fresh()
    saved = StopTracker.check_state(t.state_dict())
    assert saved is not None and resumed.load_state_dict(saved) is None
    assert resumed.forecast == t.forecast


def test_a_nan_inside_the_values_is_saved_and_replayed_without_check_finite() -> None:
    settings = StopSettings(
        monitor="acc", mode="max", patience=1000, stopping_threshold=0.88, check_finite=False
    )
    whole = StopTracker(settings, EvalSchedule(), max_epochs=60)
    values = [*VALUES[:5], math.nan, *VALUES[5:9]]
    for v in values:
        whole.evaluate(v)
    assert whole.forecast is not None and not whole.forecast.stopped and whole.forecaster.seen == 10
    state = whole.state_dict()
    assert state["values"][5] is None
    saved = StopTracker.check_state(state)
    assert saved is not None
    resumed = whole.fresh()
    assert resumed.load_state_dict(saved) is None
    assert resumed.forecast == whole.forecast and resumed.forecaster.seen == 10


def test_the_expected_stop_is_held_to_min_epochs_between_evaluations() -> None:
    from lightning_energy.step import StepProjector

    settings = StopSettings(monitor="acc", mode="max", patience=1000, stopping_threshold=0.5)
    t = StopTracker(settings, EvalSchedule(check_val_every_n_epoch=3), max_epochs=30, min_epochs=4)
    step = StepProjector()
    for _ in range(3):
        projection = step.update(100.0, 1.0, total_epochs=30)
    t.evaluate(0.6)  # fires at the first evaluation (epoch 3); Lightning ends the fit at epoch 4
    expected = t.expected(projection)
    assert t.forecast is not None and t.forecast.stopped
    assert expected is not None and expected.stop_epoch == expected.stop_epoch_high == 4.0
    assert expected.low_j <= 400.0 <= expected.high_j
