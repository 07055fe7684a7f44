"""Curve families with an origin before the first evaluation (``StopParams.offsets``) and the diagnostic."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lightning_energy.step.curves import OFFSET_RATIOS, SHIFTED, fit_curves, mean_curve
from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_params import PARAMS_FILE
from tools import fit_stop
from tools.stop_diagnose import axis_facts


def _late_first_evaluation(n: np.ndarray, origin: float) -> np.ndarray:
    """Loss (lower is better) of a power-law curve whose evaluation ``n`` lies at progress ``n + origin``."""
    return 1.0 + 4.0 * (n + origin) ** -0.5


def test_offsets_are_fitted_only_when_asked_and_only_for_the_shifted_families() -> None:
    z = _late_first_evaluation(np.arange(1.0, 11.0), 30.0)
    assert {f.offset for f in fit_curves(z, 0.0, 1e-4)} == {0.0}
    fits = fit_curves(z, 0.0, 1e-4, offsets=True)
    assert abs(sum(f.weight for f in fits) - 1.0) < 1e-9
    shifted = {f.offset for f in fits if f.family in SHIFTED}
    assert shifted == {0.0, *(r * 10 for r in OFFSET_RATIOS)}
    assert {f.offset for f in fits if f.family not in SHIFTED} == {0.0}
    # each family's prior weight is shared by its shapes and origins: the number of families is unchanged
    assert {f.family for f in fits} == {f.family for f in fit_curves(z, 0.0, 1e-4)}


def test_a_curve_seen_from_a_late_first_evaluation_is_extrapolated_better_with_offsets() -> None:
    n = np.arange(1.0, 101.0)
    z = _late_first_evaluation(n, 40.0)  # the origin 4 x seen evaluations before the first: on the grid
    seen = 10
    error = {}
    for flag in (False, True):
        fits = fit_curves(z[:seen], 0.0, 1e-4, offsets=flag)
        error[flag] = float(np.max(np.abs(mean_curve(fits, n[seen:], seen) - z[seen:])))
        if flag:
            assert sum(f.weight for f in fits if f.offset > 0) > 0.5
    assert error[True] < 0.5 * error[False]


def test_the_offset_flag_is_validated_defaults_off_and_changes_the_forecast() -> None:
    with pytest.raises(TypeError, match="offsets"):
        StopParams(offsets=1)  # type: ignore[arg-type]
    assert StopParams().offsets is False
    saved = json.loads(PARAMS_FILE.read_text())["params"]
    assert StopParams.shipped().offsets is saved.get("offsets", False)  # an older file loads as off
    values = _late_first_evaluation(np.arange(1.0, 9.0), 30.0)
    results = {}
    for flag in (False, True):
        params = dataclasses.replace(StopParams.shipped(), offsets=flag)
        fc = StopForecaster("min", stopping_threshold=1.6, params=params).replay(values)
        again = StopForecaster("min", stopping_threshold=1.6, params=params).replay(values)
        assert fc == again  # deterministic
        results[flag] = fc
    assert results[False] != results[True]


def test_the_full_selection_searches_the_offsets() -> None:
    assert fit_stop.GRID["offsets"] == (False, True)
    # --reduced fixes the simulated entries (offsets among them) and only these reweighed ones
    assert set(fit_stop.FIXED_WHEN_REDUCED) <= set(fit_stop.REWEIGHED)
    assert "length_prior" not in fit_stop.FIXED_WHEN_REDUCED


def test_axis_facts_give_the_first_evaluation_in_spacings_and_the_spacing_spread() -> None:
    first, cv = axis_facts(np.array([1536.0, 1920.0, 2304.0, 2688.0]))
    assert first == pytest.approx(4.0) and cv == pytest.approx(0.0)
    first, cv = axis_facts(np.array([1.0, 2.0, 4.0]))
    assert first == pytest.approx(2.0 / 3.0) and cv == pytest.approx(1.0 / 3.0)
