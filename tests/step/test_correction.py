"""The learned correction of the stop forecast: simulated stops re-centred by a fitted linear model."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_calibration import correct, correction_features
from lightning_energy.step.stop_params import CORRECTION_FEATURES, PARAMS_FILE
from tests.step.test_fit_stop import record_and_forecast
from tools import fit_stop
from tools.stop_data import make


def _samples(seen: int, remaining: np.ndarray) -> np.ndarray:
    return np.sort(seen + remaining)


def test_no_correction_leaves_the_samples_as_they_are() -> None:
    weighed = _samples(10, np.array([2.0, 5.0, 10.0, 40.0]))
    assert correct(weighed, weighed, 10, 1000.0, (), misfit=None) is weighed
    assert StopParams().correction == ()


def test_the_features_read_the_medians_of_the_remaining_evaluations_and_the_unstopped_share() -> None:
    seen = 10
    raw = np.array([12.0, 20.0, 30.0, math.inf])  # median (inverted cdf) 20: 10 remaining
    weighed = np.array([12.0, 15.0, 15.0, 20.0])  # median 15: 5 remaining
    x = correction_features(raw, weighed, seen, 100.0, misfit=None)
    assert x.shape == (len(CORRECTION_FEATURES),)
    assert x[0] == pytest.approx(math.log(5 / 10), abs=0.2)
    assert x[1] == pytest.approx(math.log(15 / 10), abs=0.3)  # between 10 and 20 remaining
    assert x[2] == pytest.approx(0.25)


def test_the_intercept_alone_moves_the_median_to_a_fixed_share_of_the_run_and_keeps_the_spread() -> None:
    seen = 20
    remaining = np.geomspace(1.0, 400.0, 257)  # median 20 remaining
    weighed = _samples(seen, remaining)
    out = correct(weighed, weighed, seen, 1e6, (math.log(2.0),), misfit=None)  # predicts 2 x seen remaining
    moved = out - seen
    assert float(np.median(moved)) == pytest.approx(2.0 * seen, rel=1e-9)
    # the spread on the log scale is kept: every remaining count is multiplied by the same factor
    assert np.allclose(np.log(moved) - np.log(remaining), math.log(2.0 * seen / 20.0))


def test_identity_coefficients_change_nothing() -> None:
    seen = 15
    weighed = _samples(seen, np.array([1.0, 3.0, 15.0, 40.0, 90.0]))
    # y = 0 + 1 x prior_median: the median stays where it is
    assert np.allclose(correct(weighed, weighed, seen, 1e6, (0.0, 1.0), misfit=3.0), weighed)


def test_a_stop_moved_beyond_the_horizon_is_beyond_it() -> None:
    seen = 10
    weighed = _samples(seen, np.array([5.0, 10.0, 20.0, math.inf]))
    # x4 or so: 20 -> 60+ remaining
    out = correct(weighed, weighed, seen, 60.0, (math.log(4.0),), misfit=None)
    assert np.isinf(out[-1]) and np.isinf(out[-2])
    assert np.all(np.diff(out[np.isfinite(out)]) >= 0)


def test_the_correction_is_validated() -> None:
    with pytest.raises(TypeError, match="correction"):
        StopParams(correction=(0.0,) * (len(CORRECTION_FEATURES) + 2))
    with pytest.raises(TypeError, match="correction"):
        StopParams(correction=[0.1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="correction"):
        StopParams(correction=(math.nan,))


def test_the_shipped_file_loads_the_correction_as_the_selection_wrote_it() -> None:
    data = json.loads(PARAMS_FILE.read_text())
    shipped = StopParams.shipped()
    assert isinstance(shipped.correction, tuple)
    assert list(shipped.correction) == list(data["params"].get("correction", []))
    spec = data["selection"].get("correction")
    if spec is None:
        assert shipped.correction == ()
        return
    # the features used (an earlier file wrote how many of the first ones)
    used = spec["features"]
    names = CORRECTION_FEATURES[:used] if isinstance(used, int) else tuple(used)
    columns = [CORRECTION_FEATURES.index(name) for name in names]
    assert len(shipped.correction) == 1 + max(columns, default=-1) + 1
    assert all(c == 0.0 for i, c in enumerate(shipped.correction[1:]) if i not in columns)


@pytest.mark.parametrize("correction", [(), (0.1,), (0.05, 0.5), (0.0, 0.3, 0.2)])
def test_a_record_interval_equals_the_forecast_under_a_correction(correction: tuple[float, ...]) -> None:
    params = dataclasses.replace(StopParams.shipped(), correction=correction)
    _, interval, expected = record_and_forecast(params, "powerlaw_loss", 5)
    assert interval == expected


def test_a_later_centre_moves_the_forecast_later_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    values = 1.0 + 2.0 * np.arange(1, 25) ** -0.7 + 0.003 * rng.standard_normal(24)
    base = dataclasses.replace(StopParams.shipped(), correction=())
    early = dataclasses.replace(base, correction=(math.log(0.5),))
    late = dataclasses.replace(base, correction=(math.log(2.0),))
    out = {}
    for name, params in (("early", early), ("late", late)):
        fc = StopForecaster("min", stopping_threshold=1.1, params=params).replay(values)
        again = StopForecaster("min", stopping_threshold=1.1, params=params).replay(values)
        assert fc == again and fc is not None and fc.epochs is not None
        out[name] = fc
    assert out["late"].epochs > out["early"].epochs
    # the intercept alone puts the median at seen x (1 + exp(c0)), up to the calibration's rounding
    assert out["late"].epochs == pytest.approx(24 * 3, rel=0.15)
    assert out["early"].epochs == pytest.approx(24 * 1.5, rel=0.15)


def _record(group: str, seen: int, truth: int) -> fit_stop.Record:
    curve = make("exp_accuracy", 1)
    return fit_stop.Record(group, seen, truth, np.array([seen + 1.0]), curve, StopParams())


def test_the_correction_fit_recovers_a_linear_relation(monkeypatch: pytest.MonkeyPatch) -> None:
    # log(remaining / seen) = 0.2 + 0.5 x0 - 0.3 x1 exactly; two groups of different sizes
    rng = np.random.default_rng(0)
    xs: dict[int, np.ndarray] = {}
    recs = []
    for i in range(60):
        x = rng.normal(size=3)
        seen = 100
        remaining = seen * math.exp(0.2 + 0.5 * x[0] - 0.3 * x[1])
        rec = _record("a" if i < 20 else "b", seen, seen + remaining)  # type: ignore[arg-type]
        xs[id(rec)] = x
        recs.append(rec)
    monkeypatch.setattr(fit_stop, "features", lambda r: xs[id(r)])
    coef = fit_stop.fit_correction(recs, (("prior_median", "model_median"), 1e-9))
    assert coef == pytest.approx((0.2, 0.5, -0.3), abs=1e-3)
    (intercept,) = fit_stop.fit_correction(recs, ((), 1.0))
    assert math.isfinite(intercept)
    # a feature the spec leaves out gets 0; the coefficients run up to the last feature used
    skipped = fit_stop.fit_correction(recs, (("prior_median", "unstopped"), 1e-9))
    assert len(skipped) == 4 and skipped[2] == 0.0
    # a strong ridge penalty shrinks the slopes toward 0, never the intercept
    shrunk = fit_stop.fit_correction(recs, (("prior_median", "model_median"), 1e6))
    assert abs(shrunk[1]) < 0.01 and abs(shrunk[2]) < 0.01


def test_a_nested_score_without_a_correction_is_the_plain_one() -> None:
    curves = [make(kind, seed) for kind in ("exp_accuracy", "powerlaw_loss", "log_loss") for seed in (0, 1)]
    recs = fit_stop.records(curves, StopParams.shipped(), fit_stop.FRACTIONS, fit_stop.TRAIN_FRACTIONS)
    assert any(not r.scored for r in recs) and any(r.scored for r in recs)
    fit_stop.clear_memo()
    plain = fit_stop.nested_score([r for r in recs if r.scored])
    fit_stop.clear_memo()
    assert fit_stop.nested_score(recs, None) == pytest.approx(plain)
    fit_stop.clear_memo()
    assert math.isfinite(fit_stop.nested_score(recs, (("prior_median",), 3.0)))
    fit_stop.clear_memo()
    assert math.isfinite(fit_stop.nested_score(recs, (fit_stop.MISFIT_OWN, 3.0)))


def test_the_diagnosis_reads_a_correction_variant() -> None:
    from tools.stop_diagnose import _variant

    _, params = _variant("correction=0.1,0.5", StopParams())
    assert params.correction == (0.1, 0.5)
    _, params = _variant("correction=", dataclasses.replace(StopParams(), correction=(0.3,)))
    assert params.correction == ()
