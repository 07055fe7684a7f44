"""expected_total: STEP's projection to the bound combined with the stop forecast."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_energy.step import EvalSchedule, StepProjector, StopForecaster
from lightning_energy.step.expected import expected_total


def _run(epochs_seen: int, every: int = 1):
    rng = np.random.default_rng(0)
    step = StepProjector()
    schedule = EvalSchedule(check_val_every_n_epoch=every)
    stop = StopForecaster("max", stopping_threshold=0.85, max_evaluations=schedule.evaluations_in(200))
    n = np.arange(1, 201)
    accuracy = 0.9 - 0.5 * np.exp(-n * every / 12.0)  # reaches 0.85 at about evaluation 28 / every
    projection = forecast = None
    for epoch in range(epochs_seen):
        projection = step.update(100.0 * (1 + 0.002 * rng.standard_normal()), 1.0, total_epochs=200)
        if (epoch + 1) % every == 0:
            forecast = stop.update(float(accuracy[(epoch + 1) // every - 1]))
    assert projection is not None and forecast is not None
    return projection, forecast, schedule


def test_expected_total_follows_the_predicted_stop_not_the_bound() -> None:
    projection, forecast, schedule = _run(16)
    expected = expected_total(projection, forecast, schedule)
    assert expected is not None
    true_stop = 28  # epochs: evaluation 28, one per epoch
    assert abs(expected.stop_epoch - true_stop) / true_stop < 0.25
    assert expected.low_j <= 100.0 * true_stop <= expected.high_j
    assert expected.total_j < 0.3 * expected.bound_j  # the bound is 200 epochs
    assert expected.low_j >= projection.measured_j


def test_evaluations_every_n_epochs_map_to_epochs() -> None:
    projection, forecast, schedule = _run(16, every=2)
    expected = expected_total(projection, forecast, schedule)
    assert expected is not None and forecast.epochs is not None
    assert expected.stop_epoch == 2 * forecast.epochs


def test_no_answer_and_a_stopped_run() -> None:
    projection, forecast, schedule = _run(1)  # fewer than min_evaluations (2 or more)
    assert forecast.epochs is None and expected_total(projection, forecast, schedule) is None
    step = StepProjector()
    stop = StopForecaster("max", stopping_threshold=0.5)
    for value in (0.1, 0.6):
        p = step.update(100.0, 1.0, total_epochs=10)
        f = stop.update(value)
    done = expected_total(p, f, EvalSchedule())
    assert done is not None and done.total_j == done.low_j == done.high_j == p.measured_j == 200.0
    assert done.stop_epoch == 2.0


def test_min_epochs_floors_the_stop_between_evaluations() -> None:
    """Validation every 3 epochs, min_epochs=4: a rule that fires at the first evaluation (epoch 3) ends
    the fit at epoch 4, with one more epoch's energy still to come."""
    step = StepProjector()
    stop = StopForecaster("max", stopping_threshold=0.5, min_evaluations=1)
    schedule = EvalSchedule(check_val_every_n_epoch=3)
    for _ in range(3):
        p = step.update(100.0, 1.0, total_epochs=10)
    f = stop.update(0.6)
    assert f.stopped
    plain = expected_total(p, f, schedule)
    held = expected_total(p, f, schedule, min_epochs=4)
    assert plain is not None and plain.stop_epoch == 3.0 and plain.total_j == p.measured_j == 300.0
    assert held is not None and held.stop_epoch == held.stop_epoch_low == held.stop_epoch_high == 4.0
    assert held.low_j <= 400.0 <= held.high_j and abs(held.total_j - 400.0) < 1.0


def test_min_epochs_floors_every_predicted_stop() -> None:
    projection, forecast, schedule = _run(16)
    plain = expected_total(projection, forecast, schedule)
    held = expected_total(projection, forecast, schedule, min_epochs=60)
    assert plain is not None and held is not None and plain.stop_epoch < 60
    assert held.stop_epoch == held.stop_epoch_low == 60.0
    assert held.total_j > plain.total_j


def test_min_epochs_is_validated() -> None:
    projection, forecast, schedule = _run(16)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="min_epochs"):
            expected_total(projection, forecast, schedule, min_epochs=bad)
