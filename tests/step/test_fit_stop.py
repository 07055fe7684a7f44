"""tools/fit_stop.py scores exactly what the shipped forecaster predicts (no data from ../shared needed)."""

from __future__ import annotations

import dataclasses

import pytest

from lightning_energy.step.stop import StopParams, forecast
from tools import fit_stop
from tools.stop_data import make


@pytest.mark.parametrize("length_prior", [0.0, 1.5])
def test_a_record_interval_equals_the_forecast(length_prior: float) -> None:
    params = dataclasses.replace(StopParams.shipped(), length_prior=length_prior)
    curve = make("exp_accuracy", 3)
    (record,) = fit_stop.records([curve], params, (0.5,))
    kappa = (params.kappa_low, params.kappa_high)
    z = curve.rule.sign * curve.values[: record.seen]
    fc = forecast(curve.rule, curve.state_after(record.seen), z, params, seed=0)
    assert fit_stop.interval(record, kappa) == (fc.epochs, fc.low, fc.high)
    again = dataclasses.replace(record)  # another record object: computed afresh, same answer
    assert fit_stop.interval(again, kappa) == (fc.epochs, fc.low, fc.high)


def test_the_length_prior_reuses_the_simulated_stops() -> None:
    assert set(fit_stop.REWEIGHED) <= set(fit_stop.GRID)
    assert 0.0 in fit_stop.GRID["length_prior"]  # no prior is always a candidate
