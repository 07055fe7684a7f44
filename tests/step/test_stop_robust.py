"""The stop forecast on curves unlike the tuning data: invariances that hold by construction (the metric's
scale, a shift, the mode), extreme magnitudes, very long runs, odd curves, and EarlyStopping's patience 0."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy.step.curves import REL_NOISE_FLOOR, fit_all
from lightning_energy.step.stop import StopForecast, StopForecaster, StopParams
from lightning_energy.step.stop_noise import resolution
from lightning_energy.step.stop_rule import StopRule, final_state, simulate
from lightning_energy.step.stop_simulation import horizon
from tests.step.test_stop_golden import RULES, curve

Rule = tuple[str, float | None, int | None, float, float | None, int | None]
Point = tuple[int | None, int | None, int | None]


def forecasts(values: Sequence[float], rule: Rule, points: int | None = None) -> list[StopForecast]:
    """The forecast after every value (up to the rule's stop, at most ``points`` values)."""
    mode, threshold, patience, min_delta, divergence, bound = rule
    fc = StopForecaster(mode, threshold, patience, min_delta, divergence, max_evaluations=bound)
    out = []
    for value in list(values)[:points]:
        out.append(fc.update(float(value)))
        if out[-1].stopped:
            break
    return out


def points(values: Sequence[float], rule: Rule, count: int | None = None) -> list[Point]:
    return [(f.epochs, f.low, f.high) for f in forecasts(values, rule, count)]


def scaled(rule: Rule, factor: float) -> Rule:
    """The rule for the metric times ``factor`` > 0 (thresholds and ``min_delta`` in the metric's units)."""
    mode, threshold, patience, min_delta, divergence, bound = rule
    return (
        mode,
        None if threshold is None else threshold * factor,
        patience,
        min_delta * factor,
        None if divergence is None else divergence * factor,
        bound,
    )


def shifted(rule: Rule, offset: float) -> Rule:
    mode, threshold, patience, min_delta, divergence, bound = rule
    return (
        mode,
        None if threshold is None else threshold + offset,
        patience,
        min_delta,
        None if divergence is None else divergence + offset,
        bound,
    )


def flipped(rule: Rule) -> Rule:
    """The rule for the negated metric: the other mode, negated thresholds."""
    mode, threshold, patience, min_delta, divergence, bound = rule
    return (
        "max" if mode == "min" else "min",
        None if threshold is None else -threshold,
        patience,
        min_delta,
        None if divergence is None else -divergence,
        bound,
    )


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("factor", [2.0**-30, 2.0**20])
def test_a_power_of_two_scale_of_the_metric_leaves_every_forecast_unchanged(name: str, factor: float) -> None:
    values, rule = curve(name)[:16], RULES[name]
    base = forecasts(values, rule)
    got = forecasts(values * factor, scaled(rule, factor))
    assert [(f.epochs, f.low, f.high, f.stopped, f.samples) for f in got] == [
        (f.epochs, f.low, f.high, f.stopped, f.samples) for f in base
    ]


@pytest.mark.parametrize("name", sorted(RULES))
def test_mode_max_on_the_negated_metric_is_mode_min_on_the_metric(name: str) -> None:
    values, rule = curve(name)[:16], RULES[name]
    base = forecasts(values, rule)
    got = forecasts(-values, flipped(rule))
    assert [(f.epochs, f.low, f.high, f.stopped, f.samples) for f in got] == [
        (f.epochs, f.low, f.high, f.stopped, f.samples) for f in base
    ]


TRANSFORMS: dict[str, Callable[[np.ndarray, Rule], tuple[np.ndarray, Rule]]] = {
    "x1e-6": lambda v, r: (v * 1e-6, scaled(r, 1e-6)),
    "x0.37": lambda v, r: (v * 0.37, scaled(r, 0.37)),
    "x1e6": lambda v, r: (v * 1e6, scaled(r, 1e6)),
    "+1": lambda v, r: (v + 1.0, shifted(r, 1.0)),
    "-1e3": lambda v, r: (v - 1e3, shifted(r, -1e3)),
    "+1e6": lambda v, r: (v + 1e6, shifted(r, 1e6)),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_any_scale_or_shift_of_the_metric_changes_forecasts_by_rounding_only(transform: str) -> None:
    """A scale that is not a power of two and a shift change the values' rounding, not the forecast: the
    same forecasts but for a rare future whose simulated stop moves by rounding. Before the noise of a
    fit was floored relative to the curve's range, the forecast after two evaluations (every two-coefficient
    family fits two points exactly) was decided by rounding: 15 [7, 51] on the ``delayed_rise`` curve
    became 8 [4, 40] with the metric in thousandths."""
    changed, total = 0, 0
    for name in ("delayed_rise", "patience_max_delta", "short", "threshold_max", "threshold_min"):
        values, rule = curve(name), RULES[name]
        base = points(values, rule, 12)
        got = points(*TRANSFORMS[transform](values, rule), 12)
        assert len(got) == len(base)
        for (epochs, low, high), (e, lo, hi) in zip(base, got, strict=True):
            total += 1
            changed += (epochs, low, high) != (e, lo, hi)
            assert (epochs is None) == (e is None), (name, base, got)
            if epochs is not None and e is not None and low is not None and lo is not None:
                assert abs(e - epochs) <= max(1, 0.1 * epochs) and abs(lo - low) <= max(1, 0.1 * low)
        assert base[1] == got[1], name  # after two evaluations: the same forecast
    assert changed <= total // 20


def test_the_fit_of_two_evaluations_weighs_its_exact_families_alike_at_every_scale() -> None:
    z = curve("threshold_min")[:2]
    weights = []
    for factor, offset in ((1.0, 0.0), (1e-3, 0.0), (1e6, 0.0), (1.0, 1e6)):
        zz = z * factor + offset
        assert resolution(zz) == pytest.approx(REL_NOISE_FLOOR * abs(zz[1] - zz[0]), rel=1e-6)
        fits = fit_all(zz, 0.5, resolution(zz), False, True, True)
        assert fits is not None
        weights.append(fits.weights)
    for w in weights[1:]:
        np.testing.assert_allclose(w, weights[0], rtol=1e-6, atol=1e-12)


def test_resolution_of_a_constant_or_empty_curve_is_zero() -> None:
    assert resolution(np.array([2.0, -3.0, 1.0])) == REL_NOISE_FLOOR * 5.0
    assert resolution(np.full(5, -3.0)) == 0.0
    assert resolution(np.zeros(0)) == 0.0


@pytest.mark.parametrize("level", [0.1, 1.0 / 3.0, -7.3, 1e6 + 0.1])
def test_a_constant_metric_is_forecast_alike_at_every_level(level: float) -> None:
    """Measured from its first value a constant curve is exactly zero: no family finds noise in it and the
    futures do not move, so patience runs out on schedule. Before, the forecast depended on the level's
    rounding (0.1: 6 [3, 17] after two evaluations, 0.0: 5 [3, 13])."""
    for rule in (("min", None, 5, 0.0, None, None), ("max", None, 10, 0.0, None, None)):
        assert points([level] * 5, rule) == points([0.0] * 5, rule)
    got = forecasts([level] * 4, ("min", None, 5, 0.0, None, None))[-1]
    assert got.epochs == 7 and got.low is not None and got.low <= 6  # patience runs out at evaluation 6
    assert forecasts([level] * 6, ("min", level - 0.5, None, 0.0, None, None))[-1].epochs is None  # never


@pytest.mark.parametrize("exponent", [-700, 600])
def test_a_metric_of_extreme_magnitude_is_forecast_as_at_unit_scale(exponent: int) -> None:
    """Fitted in units near 1: values of 1e-210 or 1e180 neither underflow nor overflow in the fit's
    squares (a metric of 1e200 raised OverflowError)."""
    values, rule = curve("threshold_max")[:14], RULES["threshold_max"]
    factor = 2.0**exponent
    assert points(values * factor, scaled(rule, factor)) == points(values, rule)
    for f in forecasts(values * 10.0 ** (exponent * 0.3), scaled(rule, 10.0 ** (exponent * 0.3))):
        assert f.stopped or f.seen < 2 or f.epochs is not None


def test_values_beyond_the_floats_in_the_fit_units_do_not_raise() -> None:
    """A ``min_delta`` or a threshold that the curve's own units cannot hold (1e300 against changes of
    1e-12): no improvement can count, the threshold cannot be reached (min_delta raised OverflowError)."""
    values = [1.0, 1.0 + 1e-12, 1.0 + 2e-12, 1.0 + 1.5e-12]
    for rule in (("min", None, 5, 1e300, None, None), ("min", -1e300, None, 0.0, 1e300, None)):
        got = forecasts(values, rule)
        assert len(got) == len(values) and not got[-1].stopped
    assert forecasts(values, ("min", None, 5, 1e300, None, None))[-1].epochs is not None
    assert forecasts(values, ("min", -1e300, None, 0.0, 1e300, None))[-1].reason.startswith("cannot tell: ")


def test_a_run_longer_than_the_horizon_cap_is_still_simulated_ahead() -> None:
    params = StopParams.shipped()
    rule = StopRule("min", patience=300)
    assert horizon(rule, 10, params) == int(params.horizon_factor * 10) - 10  # a short run: unchanged
    assert horizon(rule, 1000, params) == params.max_horizon - 1000
    for seen in (params.max_horizon - 1, params.max_horizon, 3 * params.max_horizon):
        # before: max_horizon - seen, at least 1
        assert horizon(rule, seen, params) >= max(seen, params.min_horizon + 300)
    rng = np.random.default_rng(5)
    n = params.max_horizon + 500
    values = 1.0 + 0.002 * rng.standard_normal(n)
    values[::-80] = np.linspace(0.98, 0.99, values[::-80].size)  # a new best every 80 evaluations, and last
    got = StopForecaster("min", patience=100).replay(values)  # before: "cannot tell ... past 5501"
    assert got is not None and not got.stopped and got.epochs is not None
    assert got.low is not None and n < got.low <= got.epochs


def test_a_negative_seed_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="seed"):
        StopForecaster("min", patience=3, seed=-1)


def test_patience_zero_stops_at_the_first_evaluation_without_improvement() -> None:
    """As ``EarlyStopping``: an improvement never stops, whatever the patience (before, ``patience=0``
    stopped every run at its first evaluation)."""
    rule = StopRule("min", patience=0)
    state = final_state(rule, [1.0, 0.8, 0.6, 0.7, 0.5])
    assert state.stopped and state.evaluations == 4
    assert state.why == "no improvement in 1 evaluation"
    assert final_state(StopRule("min", patience=1), [1.0, 0.8, 0.6, 0.7, 0.5]) == state
    futures = np.array([[0.5, 0.4, 0.45, 0.3], [0.9, 0.2, 0.1, 0.05]])
    assert simulate(rule, final_state(rule, [1.0, 0.8, 0.6]), futures).tolist() == [6.0, 4.0]
    fc = StopForecaster("min", patience=0)
    got = [fc.update(v) for v in (1.0, 0.8, 0.6, 0.55)]
    assert not any(f.stopped for f in got)
    assert all(f.epochs is not None and f.low is not None and f.low > f.seen for f in got[1:])


class Scripted(BoringModel):
    """Logs ``values[epoch]`` as its training metric, once per epoch."""

    def __init__(self, values: Sequence[float]) -> None:
        super().__init__()
        self.values = list(values)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().training_step(batch, batch_idx)
        self.log("metric", self.values[self.current_epoch], on_step=False, on_epoch=True)
        return out


@pytest.mark.parametrize(
    ("patience", "min_delta", "values"),
    [
        (0, 0.0, [1.0, 0.75, 0.5, 0.625, 0.25, 0.125]),
        (0, 0.25, [1.0, 0.5, 0.375, 0.25, 0.125, 0.0]),
        (1, 0.0, [1.0, 0.75, 0.5, 0.625, 0.25, 0.125]),
        (2, 0.0, [1.0, 0.75, 0.875, 0.5, 0.625, 0.75, 0.25]),
    ],
)
def test_the_rule_stops_where_lightnings_early_stopping_stops(
    tmp_path: Path, patience: int, min_delta: float, values: list[float]
) -> None:
    stopper = EarlyStopping(
        monitor="metric", mode="min", patience=patience, min_delta=min_delta, check_on_train_epoch_end=True
    )
    trainer = Trainer(
        default_root_dir=tmp_path,
        max_epochs=len(values),
        limit_train_batches=1,
        limit_val_batches=0,
        callbacks=[stopper],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Scripted(values))
    state = final_state(StopRule("min", patience=patience, min_delta=min_delta), values)
    assert state.stopped and trainer.current_epoch == state.evaluations


def _odd_curves() -> dict[str, tuple[list[float], Rule]]:
    rng = np.random.default_rng(11)
    x = np.arange(1.0, 41.0)
    smooth = 1.0 + x**-0.5 + 0.01 * rng.standard_normal(x.size)
    accuracy = 0.9 - 0.4 * np.exp(-x / 6.0)
    worse_first = np.where(x < 6, 1.0 + 0.1 * x, 1.6 - 0.3 * (1.0 - np.exp(-(x - 6.0) / 5.0)))
    spiky = smooth.copy()
    spiky[[7, 19, 30]] *= 50.0
    patience_5: Rule = ("min", None, 5, 0.0, None, None)
    noisy_worse_first = worse_first + 0.005 * rng.standard_normal(x.size)
    rising = 1.0 + 0.001 * (x - 5.0) ** 2 + 0.01 * rng.standard_normal(x.size)
    return {
        "constant": ([1.0] * 30, patience_5),
        "zeros": ([0.0] * 30, patience_5),
        "exact repeats": (list(np.repeat(1.0 + 1.0 / np.arange(1.0, 21.0), 2)), patience_5),
        "integers": ([int(v) for v in np.round(100.0 - 50.0 * (1.0 - np.exp(-x / 8.0)))], patience_5),
        "1e12": (list(1e12 * smooth), patience_5),
        "1e-12": (list(1e-12 * smooth), patience_5),
        "1e12 offset": (list(1e12 + smooth), patience_5),
        "negative": (list(-5.0 - smooth), ("max", None, 5, 0.0, None, None)),
        "steps of min_delta": ([1.0 - 0.125 * i for i in range(8)], ("min", None, 3, 0.125, None, None)),
        "divergence": (list(rising), ("min", None, None, 0.0, 2.0, None)),
        "patience 0": (list(smooth), ("min", None, 0, 0.0, None, None)),
        "accuracy of 50 samples": (list(np.floor(accuracy * 50.0) / 50.0), ("max", None, 5, 0.0, None, None)),
        "accuracy of 10 samples": (list(np.floor(accuracy * 10.0) / 10.0), ("max", 0.85, 8, 0.0, None, None)),
        "worse first": (list(noisy_worse_first), ("min", None, 6, 0.0, None, None)),
        "spikes": (list(spiky), ("min", 1.18, 8, 0.0, None, None)),
    }


ODD = _odd_curves()


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_curves_are_forecast_with_a_well_formed_answer(name: str) -> None:
    values, rule = ODD[name]
    got = forecasts(values, rule)
    live = [f for f in got if not f.stopped and f.seen >= StopParams.shipped().min_evaluations]
    answered = [f for f in live if f.epochs is not None]
    for f in answered:
        assert f.low is not None and f.epochs is not None and f.seen < f.low <= f.epochs
        assert f.high is None or f.epochs <= f.high
        assert f.reason.startswith(f"stop predicted at evaluation {f.epochs} [{f.low}, ")
    for f in live:
        if f.epochs is None:
            assert f.reason.startswith("cannot tell: ")
    if name != "steps of min_delta":  # improves by min_delta every evaluation: it may well never stop
        assert len(answered) >= 0.8 * len(live), [f.reason for f in live]
    if got[-1].stopped:
        assert got[-1].reason.startswith(f"stopped at evaluation {got[-1].seen}: ")


def test_reasons_name_the_criterion_that_stops_thefinal_state() -> None:
    values = curve("divergence")[:12]
    got = forecasts(values, ("min", None, None, 0.0, 1.6, 80))[-1]
    assert "divergence threshold 1.6" in got.reason
    got = forecasts(values, ("min", None, None, 0.0, None, 80))[-1]
    assert got.reason.endswith("runs to the bound of 80 evaluations")
    assert dataclasses.replace(got, reason="").epochs is not None
    low = forecasts(values * 1e-9, ("min", 1.0e-9, None, 0.0, None, None))[-1]
    assert "threshold 1e-09" in low.reason and not math.isnan(low.p_stop_before(low.seen + 5))
