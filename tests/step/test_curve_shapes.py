"""The delayed-rise families (``sigmoid``, ``jump``) and the generated shape kinds (tools/stop_shapes.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lightning_energy.step.curves import MIN_DRIFT_POINTS, fit_curves, mean_curve
from lightning_energy.step.stop import StopForecaster, StopParams
from lightning_energy.step.stop_rule import RuleState, advance
from tools.stop_data import parts
from tools.stop_shapes import SHAPE_KINDS, shaped, shaped_curves


def _jump_then_creep(n: np.ndarray) -> np.ndarray:
    """Accuracy (higher is better): a plateau, a jump at evaluation 4, then a slow creep."""
    step = 0.5 * (1.0 + np.tanh(0.5 * (n - 4.0) / 0.4))
    return 0.35 + (0.72 - 0.35 - 0.03 * np.maximum(n - 4.0, 1.0) ** -0.5) * step


def _weight_of(fits, families: set[str]) -> float:
    return sum(f.weight for f in fits if f.family in families)


def test_the_shape_families_are_fitted_only_when_asked_and_from_enough_points() -> None:
    z = -_jump_then_creep(np.arange(1.0, 13.0))
    assert _weight_of(fit_curves(z, 0.0, 1e-4), {"sigmoid", "jump"}) == 0.0
    early = fit_curves(z[: MIN_DRIFT_POINTS - 1], 0.0, 1e-4, shapes=True)
    assert _weight_of(early, {"sigmoid", "jump"}) == 0.0
    fits = fit_curves(z, 0.0, 1e-4, shapes=True)
    assert abs(sum(f.weight for f in fits) - 1.0) < 1e-9
    # a jump is far better told by a step than by a saturating family: the shape families take the weight
    assert _weight_of(fits, {"sigmoid", "jump"}) > 0.9


def test_a_delayed_rise_is_extrapolated_to_its_plateau() -> None:
    n = np.arange(1.0, 41.0)
    accuracy = 0.1 + 0.7 * 0.5 * (1.0 + np.tanh(0.5 * (n - 12.0) / 2.0))
    seen = 20
    fits = fit_curves(-accuracy[:seen], 0.0, 1e-4, shapes=True)
    ahead = -mean_curve(fits, n[seen:], seen)
    assert np.max(np.abs(ahead - accuracy[seen:])) < 0.02
    plain = -mean_curve(fit_curves(-accuracy[:seen], 0.0, 1e-4), n[seen:], seen)
    assert np.max(np.abs(ahead - accuracy[seen:])) < np.max(np.abs(plain - accuracy[seen:]))


def test_the_shape_flag_is_validated_and_changes_the_forecast() -> None:
    with pytest.raises(TypeError, match="shapes"):
        StopParams(shapes=1)  # type: ignore[arg-type]
    values = _jump_then_creep(np.arange(1.0, 9.0))
    base = dataclasses.replace(StopParams.shipped(), shapes=False)
    results = {}
    for flag in (False, True):
        fc = StopForecaster("max", stopping_threshold=0.715, params=dataclasses.replace(base, shapes=flag))
        results[flag] = [fc.update(float(v)) for v in values][-1]
        again = StopForecaster("max", stopping_threshold=0.715, params=dataclasses.replace(base, shapes=flag))
        assert [again.update(float(v)) for v in values][-1] == results[flag]  # deterministic
    assert results[True].epochs is not None and "stop predicted" in results[True].reason
    assert results[True].samples != results[False].samples


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_shaped_curves_are_deterministic_and_stop_where_their_rule_stops_them(kind: str) -> None:
    curve = shaped(kind, 5)
    assert np.array_equal(curve.values, shaped(kind, 5).values)
    assert curve.source == "shapes" and curve.group == kind and np.all(np.isfinite(curve.values))
    state = RuleState()
    for i, value in enumerate(curve.values):
        state = advance(curve.rule, state, float(value))
        assert state.stopped == (i == curve.stop - 1)
    with pytest.raises(ValueError, match="shape kind"):
        shaped("no_such_kind", 0)


def test_the_shape_kinds_split_in_halves_of_their_own() -> None:
    curves = shaped_curves()
    report, tune = parts(curves)
    assert {c.group for c in report}.isdisjoint({c.group for c in tune})
    assert len({c.group for c in report}) == len({c.group for c in tune}) == len(SHAPE_KINDS) // 2
