"""Behaviour of the STEP projector on seeded synthetic series (pure numpy, fast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lightning_energy.errors import ProjectionError
from lightning_energy.step import (
    Projection,
    StepParams,
    StepProjector,
    lag1_autocorrelation,
    regime_start,
    robust_sigma,
    seasonal_period,
)

LEVEL_J = 1000.0


def noisy(n: int, level: float = LEVEL_J, rel_noise: float = 0.005, seed: int = 0) -> np.ndarray:
    return level * (1.0 + rel_noise * np.random.default_rng(seed).standard_normal(n))


def feed(step: StepProjector, series: np.ndarray, total: float | None = None) -> list[Projection]:
    total = float(series.size) if total is None else total
    return [step.update(float(e), 1.0, total) for e in series]


def ape(p: Projection, truth: float) -> float:
    return abs(p.total_j - truth) / truth


def covered(p: Projection, truth: float) -> bool:
    return p.low_j <= truth * (1 + 1e-9) and p.high_j >= truth * (1 - 1e-9)


def first_stable(projections: list[Projection]) -> int | None:
    return next((i for i, p in enumerate(projections) if p.stable), None)


def test_steady_series_is_declared_early_accurate_and_covered() -> None:
    x = noisy(60)
    ps = feed(StepProjector(), x)
    k = first_stable(ps)
    assert k is not None and k <= 11
    truth = float(x.sum())
    assert all(ape(p, truth) < 0.005 for p in ps[k:])
    assert all(covered(p, truth) for p in ps)
    assert ps[k].reason == "stable since epoch 1"  # epoch 0 is warm-up
    assert ps[-1].total_j == pytest.approx(truth)


def test_steady_interval_is_calibrated_over_seeds() -> None:
    hits = []
    for seed in range(20):
        x = noisy(50, rel_noise=0.01, seed=seed)
        ps = feed(StepProjector(), x)
        hits += [covered(p, float(x.sum())) for p in ps]
    assert np.mean(hits) >= 0.9


def test_reason_counts_the_epochs_needed() -> None:
    ps = feed(StepProjector(), noisy(5), total=40.0)
    need = StepParams().min_units
    assert [p.reason for p in ps[:2]] == [
        f"not stable: 1 of {need} epochs needed",
        f"not stable: 2 of {need} epochs needed",
    ]
    assert not any(p.stable for p in ps)


def test_heavy_warmup_is_not_the_level() -> None:
    x = noisy(50)
    x[0], x[1] = 3.0 * LEVEL_J, 1.4 * LEVEL_J
    ps = feed(StepProjector(), x)
    k = first_stable(ps)
    assert k is not None and k <= 12
    assert ps[k].epoch_energy_j == pytest.approx(LEVEL_J, rel=0.01)
    assert ape(ps[k], float(x.sum())) < 0.005


def test_warmup_tail_waits_until_the_trend_is_gone() -> None:
    e = np.arange(80)
    x = noisy(80, rel_noise=0.002) * (1.0 + 0.1 * np.exp(-e / 8.0))
    ps = feed(StepProjector(), x)
    k = first_stable(ps)
    assert k is not None and k > 10  # a 0.4 %/epoch tail is visible at epoch 10
    assert any("trending" in p.reason for p in ps[:k])
    assert ape(ps[k], float(x.sum())) < 0.01


@pytest.mark.parametrize("at", [4, 8])
def test_one_stall_before_stability_never_becomes_the_level(at: int) -> None:
    x = noisy(60, seed=3)
    x[at] *= 5.0
    ps = feed(StepProjector(), x)
    assert ps[at].epoch_energy_j == pytest.approx(LEVEL_J, rel=0.02)
    assert ape(ps[at], float(x.sum())) < 0.02


def test_one_stall_after_stability_never_becomes_the_level() -> None:
    x = noisy(60, seed=3)
    x[30] *= 5.0
    truth = float(x.sum())
    ps = feed(StepProjector(), x)
    assert ps[30].epoch_energy_j == pytest.approx(LEVEL_J, rel=0.01)
    assert ps[30].stable and ps[31].stable
    assert ape(ps[30], truth) < 0.01


def test_recurring_stalls_are_counted_at_their_rate() -> None:
    x = noisy(100, seed=4)
    x[[12, 27, 41, 55, 70, 86]] *= 3.0
    truth = float(x.sum())
    ps = feed(StepProjector(), x)
    assert ps[60].epoch_energy_j > LEVEL_J * 1.03  # 4 stalls of +2000 J in ~50 epochs
    assert ape(ps[60], truth) < 0.02


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unfreeze_ends_stability_and_is_redetected(seed: int) -> None:
    jump = int(np.random.default_rng(seed).integers(16, 30))
    x = noisy(80, seed=seed)
    x[:jump] *= 0.8
    ps = feed(StepProjector(), x)
    assert ps[jump - 1].stable
    assert not all(p.stable for p in ps[jump : jump + 3])
    u = next(i for i in range(jump, 80) if not ps[i].stable)
    k = next(i for i in range(u, 80) if ps[i].stable)
    assert (
        k <= jump + StepParams().trend_units + 1
        and ps[k].stable_since is not None
        and ps[k].stable_since >= jump
    )
    assert ps[k].epoch_energy_j == pytest.approx(LEVEL_J, rel=0.01)
    truth = float(x.sum())
    assert all(ape(p, truth) < 0.01 for p in ps[k:])


def test_interval_before_the_change_allows_for_a_later_change() -> None:
    x = noisy(100, seed=8)
    x[60:] *= 0.8  # a throttle after the declaration: the interval at declaration must leave room
    ps = feed(StepProjector(), x)
    k = first_stable(ps)
    assert k is not None and k < 60
    assert ps[k].high_j / ps[k].low_j > 1.05


def test_validation_schedule_models_two_epoch_kinds() -> None:
    n, every = 60, 3
    x = noisy(n)
    x[(np.arange(n) + 1) % every == 0] *= 1.5
    truth = float(x.sum())
    ps = feed(StepProjector(val_every_n_epochs=every), x)
    k = first_stable(ps)
    assert k is not None and k <= 13
    assert ps[k].epoch_energy_j == pytest.approx(LEVEL_J, rel=0.01)
    assert all(ape(p, truth) < 0.01 for p in ps[k:])


@pytest.mark.parametrize("every", [3, 5])
def test_periodic_spikes_without_schedule_are_averaged_in(every: int) -> None:
    n = 80
    x = noisy(n)
    x[(np.arange(n) + 1) % every == 0] *= 1.3
    truth = float(x.sum())
    ps = feed(StepProjector(), x)
    k = first_stable(ps)
    assert k is not None and k <= 20
    assert np.mean([p.stable for p in ps[k:]]) > 0.9
    assert all(ape(p, truth) < 0.02 for p in ps[max(k, 20) :])
    assert np.mean([covered(p, truth) for p in ps[k:]]) >= 0.9


def test_slow_drift_is_not_declared_and_is_covered() -> None:
    n = 100
    x = LEVEL_J * (1.0 + 0.004 * np.arange(n)) * (1 + 0.001 * np.random.default_rng(7).standard_normal(n))
    ps = feed(StepProjector(), x)
    truth = float(x.sum())
    assert not any(p.stable for p in ps[:80])
    assert ps[50].epoch_energy_j == pytest.approx(x[50], rel=0.02)
    assert np.mean([covered(p, truth) for p in ps[10:]]) >= 0.8


def test_short_run_can_be_declared() -> None:
    x = noisy(6, seed=2)
    ps = feed(StepProjector(), x)
    assert any(p.stable for p in ps)
    assert ps[-1].total_j == pytest.approx(float(x.sum()))


def test_float_budget_and_partial_last_unit() -> None:
    x = noisy(13)
    x[-1] *= 0.5  # max_steps ends half-way through the 13th epoch: 12.5 units
    step = StepProjector()
    for e in x[:-1]:
        p = step.update(float(e), 1.0, 12.5)
    assert p.remaining_epochs == pytest.approx(0.5)
    assert p.total_j == pytest.approx(float(x.sum()), rel=0.005)
    last = step.update(float(x[-1]), 0.5, 12.5, work=0.5)
    assert last.remaining_epochs == pytest.approx(0.0)
    assert last.epoch_energy_j == pytest.approx(LEVEL_J, rel=0.01)  # energy / work
    assert last.total_j == pytest.approx(float(x.sum()))


def test_project_is_a_pure_query() -> None:
    x = noisy(30, seed=5)
    x[12] *= 3.0
    a, b = StepProjector(), StepProjector()
    for e in x:
        before = json.dumps(a.state_dict())
        q1 = a.project(30) if a.epochs_seen else None
        q2 = a.project(30) if a.epochs_seen else None
        assert q1 == q2 and json.dumps(a.state_dict()) == before
        p = a.update(float(e), 1.0, 30)
        assert p == b.update(float(e), 1.0, 30) and a.project(30) == p
    with pytest.raises(ProjectionError, match="at least one"):
        StepProjector().project(10)


def test_state_round_trip_continues_the_same_projection() -> None:
    x = noisy(200, seed=11)
    x[:20] *= 0.85
    params = StepParams(history=40)
    first, again = StepProjector(val_every_n_epochs=2, params=params), StepProjector(val_every_n_epochs=2)
    feed(first, x[:150], total=200.0)
    first.skip(1.0, 200)
    state = json.loads(json.dumps(first.state_dict()))
    assert len(state["energy_j"]) == 40  # the history is bounded
    resumed = StepProjector(params=params)
    resumed.load_state_dict(state)
    assert resumed.val_every_n_epochs == 2 and resumed.epochs_seen == 151
    continued = StepProjector(val_every_n_epochs=2, params=params)
    feed(continued, x[:150], total=200.0)
    continued.skip(1.0, 200)
    for e in x[151:]:
        assert resumed.update(float(e), 1.0, 200) == continued.update(float(e), 1.0, 200)
    feed(again, x, total=200.0)


def test_version_1_state_loads() -> None:
    x = noisy(30, seed=12)
    v1 = {
        "version": 1,
        "energy_j": [float(e) for e in x[:20]] + [None],
        "duration_s": [1.0] * 21,
        "prior_epoch_energy_j": None,
        "prior_rel_sigma": None,
        "val_every_n_epochs": None,
        "was_stable": True,
    }
    resumed = StepProjector()
    resumed.load_state_dict(v1)
    assert resumed.epochs_seen == 21
    fresh = StepProjector()
    feed(fresh, x[:20], total=30.0)
    fresh.skip(1.0, 30)
    assert resumed.project(30) == fresh.project(30)
    p = resumed.update(float(x[21]), 1.0, 30)
    assert p.epochs_seen == 22 and p.measured_j == pytest.approx(float(x[:20].sum() + x[21]))
    empty = StepProjector()
    empty.load_state_dict({"energy_j": [1.0, 2.0], "duration_s": [1.0, 1.0]})  # no version: version 1
    assert empty.epochs_seen == 2


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"version": 3}, "version"),
        ({"version": "2"}, "version"),
        ({"version": 1, "energy_j": [1.0], "duration_s": []}, "same length"),
        ({"version": 1, "energy_j": ["x"], "duration_s": [1.0]}, "energy_j"),
        ({"version": 2, "energy_j": [1.0], "duration_s": [1.0], "work": [1.0]}, "misses"),
        ({"version": 1, "energy_j": 5, "duration_s": []}, "list"),
    ],
)
def test_bad_state_raises_projection_error(state: dict[str, object], match: str) -> None:
    step = StepProjector()
    feed(step, noisy(3), total=10.0)
    with pytest.raises(ProjectionError, match=match):
        step.load_state_dict(state)
    assert step.epochs_seen == 3  # left as it was, not half-loaded


def test_prior_is_used_before_stability() -> None:
    x = noisy(40)
    step = StepProjector(prior_epoch_energy_j=LEVEL_J * 1.2, prior_rel_sigma=0.1)
    p = step.update(float(x[0]), 1.0, 40)
    assert not p.stable and p.method == "prior"
    data_only = StepProjector().update(float(x[0]), 1.0, 40)
    assert data_only.total_j < p.total_j < 40 * LEVEL_J * 1.2
    assert p.high_j - p.low_j < data_only.high_j - data_only.low_j
    step.set_prior(500.0, 0.2)
    with pytest.raises(ProjectionError, match="rel_sigma"):
        step.set_prior(500.0, -1.0)


def test_power_variant_for_time_budget() -> None:
    power_w = noisy(40, level=200.0)
    duration_s = 30.0
    step = StepProjector()
    ps = [step.update(float(p * duration_s), duration_s, total_seconds=40 * duration_s) for p in power_w]
    truth = float(np.sum(power_w * duration_s))
    k = first_stable(ps)
    assert k is not None and ps[k].method == "power"
    assert ps[k].power_w == pytest.approx(200.0, rel=0.01)
    assert ps[k].remaining_s == pytest.approx((40 - k - 1) * duration_s)
    assert all(ape(p, truth) < 0.005 for p in ps[k:])


def test_skip_counts_the_unit_at_the_current_level() -> None:
    x = noisy(30)
    step = StepProjector()
    feed(step, x[:15], total=30.0)
    p = step.skip(1.0, 30)
    assert p.epochs_seen == 16 and p.measured_j == pytest.approx(float(np.sum(x[:15])))
    q = feed(StepProjector(), x[:16], total=30.0)[-1]
    assert p.total_j == pytest.approx(q.total_j, rel=0.005)
    assert p.high_j - p.low_j > q.high_j - q.low_j
    nothing = StepProjector().skip(1.0, 10)
    assert math.isnan(nothing.total_j) and nothing.high_j == math.inf and nothing.method == "none"


def test_long_run_update_is_bounded() -> None:
    step = StepProjector()
    p = None
    for e in noisy(1000, seed=9):
        p = step.update(float(e), 1.0, 2000)
    assert p is not None and p.epochs_seen == 1000 and p.stable
    assert p.total_j == pytest.approx(2000 * LEVEL_J, rel=0.01)
    assert len(step.state_dict()["energy_j"]) == StepParams().history  # type: ignore[arg-type]


def test_projection_to_dict_is_json_able() -> None:
    d = StepProjector().update(10.0, 1.0, 5).to_dict()
    assert json.loads(json.dumps(d))["epochs_seen"] == 1
    assert {"total_j", "low_j", "high_j", "stable", "reason", "remaining_epochs"} <= set(d)


@pytest.mark.parametrize("energy", [-1.0, math.nan, math.inf, "1", True])
def test_bad_energy(energy: object) -> None:
    with pytest.raises(ProjectionError, match="energy_j"):
        StepProjector().update(energy, 1.0, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("work", [0.0, -1.0, math.nan, 1e9, "1"])
def test_bad_work(work: object) -> None:
    with pytest.raises(ProjectionError, match="work"):
        StepProjector().update(1.0, 1.0, 10, work=work)  # type: ignore[arg-type]


@pytest.mark.parametrize("duration", [-1.0, math.nan, math.inf])
def test_bad_duration(duration: float) -> None:
    with pytest.raises(ProjectionError, match="duration_s"):
        StepProjector().update(1.0, duration, 10)
    with pytest.raises(ProjectionError, match="duration_s"):
        StepProjector().skip(duration, 10)


def test_bad_budget() -> None:
    step = StepProjector()
    feed(step, noisy(5), total=5.0)
    with pytest.raises(ProjectionError, match=r"total_epochs must be >= .*\(6\), got 5"):
        step.update(1.0, 1.0, 5)
    with pytest.raises(ProjectionError, match="exactly one"):
        step.update(1.0, 1.0)
    with pytest.raises(ProjectionError, match="exactly one"):
        step.update(1.0, 1.0, 10, total_seconds=100.0)
    with pytest.raises(ProjectionError, match="total_seconds"):
        step.update(1.0, 1.0, total_seconds=-5.0)
    assert step.epochs_seen == 5  # rejected input is not recorded


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"confidence": 1.5}, ValueError, "confidence"),
        ({"confidence": "0.9"}, TypeError, "confidence"),
        ({"val_every_n_epochs": 0}, ValueError, "val_every_n_epochs"),
        ({"val_every_n_epochs": 1.5}, TypeError, "val_every_n_epochs"),
        ({"params": {}}, TypeError, "params"),
        ({"prior_epoch_energy_j": 10.0}, ValueError, "prior_rel_sigma"),
        ({"prior_epoch_energy_j": -1.0, "prior_rel_sigma": 0.1}, ValueError, "prior_epoch_energy_j"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        StepProjector(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min_units": 0}, ValueError, "min_units"),
        ({"window": 1.5}, TypeError, "window"),
        ({"level_tolerance": math.nan}, ValueError, "level_tolerance"),
        ({"hazard_stable_low": (0.1,)}, ValueError, "hazard_stable_low"),
        ({"history": 10}, ValueError, "history"),
    ],
)
def test_bad_params(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        StepParams(**kwargs)  # type: ignore[arg-type]


def test_helpers() -> None:
    x = np.concatenate([noisy(20, seed=1), noisy(10, level=1.2 * LEVEL_J, seed=2)])
    assert robust_sigma(x) == pytest.approx(0.005 * LEVEL_J, rel=0.5)
    assert regime_start(x, 6.0, 0.05, 2) == 20
    assert regime_start(noisy(30), robust_sigma(x), 0.05, 2) == 0
    assert lag1_autocorrelation(noisy(200, seed=4)) < 0.25
    spikes = noisy(40)
    spikes[2::4] *= 1.4
    assert seasonal_period(spikes, robust_sigma(spikes), 10)[0] == 4
    assert seasonal_period(noisy(40), 5.0, 10)[0] == 1


def test_unit_name_and_windows_of_steps() -> None:
    step = StepProjector(unit_name="window")
    ps = [step.update(float(e), 10.0, 500.0) for e in noisy(30, seed=6)]
    assert ps[0].reason.endswith("windows needed")
    assert ps[-1].reason.startswith("stable since window")


def test_future_validation_work_counts_the_schedule() -> None:
    from lightning_energy.step.buffer import future_val_work, is_val_unit

    every = 3
    for start in range(6):
        for remaining in (0.0, 1.0, 2.5, 7.0, 10.5):
            whole = int(remaining)
            expected = sum(is_val_unit(i, every) for i in range(start, start + whole))
            expected += (remaining - whole) * is_val_unit(start + whole, every)
            assert future_val_work(start, remaining, every) == pytest.approx(expected)
    assert future_val_work(0, 10.0, None) == 0.0
