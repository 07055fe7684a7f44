"""tools/fit_stop.py scores exactly what the shipped forecaster predicts (no data from ../shared needed)."""

from __future__ import annotations

import dataclasses

import pytest

from lightning_energy.step.stop import StopParams, forecast
from tools import fit_stop
from tools.stop_data import make

Interval = tuple[int | None, int | None, int | None]


def record_and_forecast(
    params: StopParams, kind: str, seed: int
) -> tuple[fit_stop.Record, Interval, Interval]:
    """fit_stop's record of curve ``make(kind, seed)`` half-way through, its interval and the forecaster's
    own ``(epochs, low, high)`` there (the memo cleared after)."""
    curve = make(kind, seed)
    (record,) = fit_stop.records([curve], params, (0.5,))
    z = curve.rule.sign * curve.values[: record.seen]
    fc = forecast(curve.rule, curve.state_after(record.seen), z, params, seed=0)
    interval = fit_stop.interval(record, (params.kappa_low, params.kappa_high))
    fit_stop.clear_memo()
    return record, interval, (fc.epochs, fc.low, fc.high)


@pytest.mark.parametrize("length_prior", [0.0, 1.5])
def test_a_record_interval_equals_the_forecast(length_prior: float) -> None:
    params = dataclasses.replace(StopParams.shipped(), length_prior=length_prior)
    record, interval, expected = record_and_forecast(params, "exp_accuracy", 3)
    assert interval == expected
    again = dataclasses.replace(record)  # another record object: computed afresh, same answer
    assert fit_stop.interval(again, (params.kappa_low, params.kappa_high)) == expected


def test_the_length_prior_reuses_the_simulated_stops() -> None:
    assert set(fit_stop.REWEIGHED) <= set(fit_stop.GRID)
    assert 0.0 in fit_stop.GRID["length_prior"]  # no prior is always a candidate
