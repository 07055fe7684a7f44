"""Known change points and the evaluation schedule, and how StepProjector uses the announced changes."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_energy.step import StepProjector
from lightning_energy.step.hints import EvalSchedule, KnownChange, batches_for_steps, known_changes


def test_known_changes_from_trainer_settings() -> None:
    changes = known_changes(
        unfreeze_backbone_at_epoch=10,
        swa_epoch_start=0.8,
        max_epochs=50,
        lr_milestones=[30, 60],
        reload_dataloaders_every_n_epochs=20,
    )
    assert changes == (
        KnownChange(10, "unfreeze"),
        KnownChange(20, "reload_dataloaders"),
        KnownChange(30, "lr_step"),
        KnownChange(39, "swa"),
        KnownChange(40, "reload_dataloaders"),
    )
    assert known_changes(lr_step_size=10, max_epochs=35) == tuple(
        KnownChange(e, "lr_step") for e in (10, 20, 30)
    )
    assert known_changes() == ()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"unfreeze_backbone_at_epoch": -1}, "unfreeze_backbone_at_epoch"),
        ({"swa_epoch_start": 0.5}, "swa_epoch_start"),
        ({"lr_step_size": 5}, "lr_step_size"),
        ({"lr_milestones": [1.5]}, "lr_milestones"),
    ],
)
def test_known_changes_validate(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        known_changes(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        KnownChange(3, "magic")


def test_eval_schedule_maps_evaluations_to_epochs() -> None:
    assert EvalSchedule().epochs_per_evaluation() == 1.0
    assert EvalSchedule(check_val_every_n_epoch=3).epochs_at(4) == 12.0
    assert EvalSchedule(val_check_interval=0.25).evaluations_in(10) == 40
    every_50 = EvalSchedule(check_val_every_n_epoch=None, val_check_interval=50, batches_per_epoch=200)
    assert every_50.epochs_per_evaluation() == 0.25
    assert (
        EvalSchedule(check_val_every_n_epoch=5, check_on_train_epoch_end=True).epochs_per_evaluation() == 1.0
    )
    with pytest.raises(ValueError, match="batches_per_epoch"):
        EvalSchedule(val_check_interval=50)
    with pytest.raises(ValueError, match="check_val_every_n_epoch"):
        EvalSchedule(check_val_every_n_epoch=0)


def _series() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.r_[np.full(20, 100.0), np.full(30, 150.0)] * (1 + 0.005 * rng.standard_normal(50))


def test_projector_does_not_declare_across_an_announced_change_and_relevels_after_it() -> None:
    energy = _series()
    told = StepProjector(known_changes=[KnownChange(20, "unfreeze")])
    untold = StepProjector()
    told_out = [told.update(float(e), 1.0, total_epochs=50) for e in energy]
    untold_out = [untold.update(float(e), 1.0, total_epochs=50) for e in energy]
    assert untold_out[15].stable
    assert not told_out[15].stable and "unfreeze announced at epoch 20" in told_out[15].reason
    truth = float(energy.sum())
    # right after the change the told projector uses the new level; the untold one still mixes levels
    assert abs(told_out[20].total_j - truth) / truth < 0.01
    assert abs(untold_out[20].total_j - truth) / truth > 0.1
    assert told_out[22].stable and told_out[22].stable_since == 20
    assert not untold_out[22].stable
    with pytest.raises(TypeError, match="known_changes"):
        StepProjector(known_changes=[20])  # type: ignore[list-item]


def _steady(n: int, seed: int = 1) -> np.ndarray:
    return 1000.0 * (1 + 0.003 * np.random.default_rng(seed).standard_normal(n))


def test_interval_is_narrower_for_a_steady_run_than_after_a_recent_change() -> None:
    steady = _steady(100)
    changed = np.r_[_steady(30, 2), 1.3 * _steady(70, 3)]
    a, b = StepProjector(), StepProjector()
    p_steady = [a.update(float(e), 1.0, total_epochs=100) for e in steady[:45]]
    p_changed = [b.update(float(e), 1.0, total_epochs=100) for e in changed[:45]]
    width = lambda p: (p.high_j - p.low_j) / p.total_j  # noqa: E731
    assert p_steady[44].interval_group == "steady"
    assert p_changed[31].interval_group == "unstable"  # just after the change
    assert p_changed[44].interval_group == "stable"  # stable again, but the change is recent
    assert width(p_steady[44]) <= width(p_changed[44])
    assert width(p_steady[31]) < width(p_changed[31])
    assert p_steady[44].low_j <= float(steady.sum()) <= p_steady[44].high_j


def test_an_announced_change_ahead_sets_its_own_interval_group() -> None:
    step = StepProjector(known_changes=[KnownChange(60, "swa")])
    out = [step.update(float(e), 1.0, total_epochs=100) for e in _steady(30)]
    assert out[-1].interval_group == "ahead" and not out[-1].stable


@pytest.mark.parametrize(
    ("schedule", "batches", "made"),
    [
        (EvalSchedule(batches_per_epoch=4, check_on_train_epoch_end=True), 42, 11),  # the cut epoch's end
        (EvalSchedule(batches_per_epoch=4, check_on_train_epoch_end=True), 48, 12),
        (EvalSchedule(batches_per_epoch=4), 42, 11),  # one validation an epoch, one more at batch 42
        (EvalSchedule(batches_per_epoch=4), 48, 12),
        (EvalSchedule(val_check_interval=0.5, batches_per_epoch=4), 46, 23),  # 46 is a scheduled one
        (EvalSchedule(val_check_interval=0.5, batches_per_epoch=4), 45, 23),
        (EvalSchedule(check_val_every_n_epoch=2, batches_per_epoch=4), 43, 5),  # epoch 11 does not validate
        (EvalSchedule(check_val_every_n_epoch=2, batches_per_epoch=4), 45, 6),
        (EvalSchedule(check_val_every_n_epoch=None, val_check_interval=3, batches_per_epoch=4), 10, 4),
        (EvalSchedule(val_check_interval=0.3, batches_per_epoch=10), 17, 6),  # every 3 batches: 3, 6, 9
        (EvalSchedule(val_check_interval=1.0), 42, None),  # batches per epoch unknown
    ],
)
def test_evaluations_at_stop_counts_the_scheduled_ones_and_the_stopping_batch(
    schedule: EvalSchedule, batches: int, made: int | None
) -> None:
    assert schedule.evaluations_at_stop(batches) == made


def test_batches_for_steps_follows_lightnings_accumulation() -> None:
    assert batches_for_steps(42, 4) == 42
    assert (
        batches_for_steps(23, 4, 3) == 47
    )  # 2 steps an epoch (batches 3 and 4): step 23 is batch 3 of epoch 12
    assert batches_for_steps(2, 4, 3) == 4  # the epoch's last batch steps
    with pytest.raises(ValueError, match="accumulate_grad_batches"):
        batches_for_steps(3, 4, 0)
    with pytest.raises(ValueError, match="batches"):
        EvalSchedule(batches_per_epoch=4).evaluations_at_stop(0)


@pytest.mark.parametrize(
    ("batches", "interval", "per_epoch"),
    [(10, 0.25, 5), (10, 0.3, 3), (4, 0.5, 2), (7, 0.5, 2), (3, 0.1, 3), (100, 0.25, 4)],
)
def test_a_fractional_interval_with_known_batches_counts_as_lightning(
    batches: int, interval: float, per_epoch: int
) -> None:
    """Lightning validates every ``max(1, int(batches x interval))`` batches: 10 batches at 0.25 validate
    after batches 2, 4, 6, 8 and 10 (5 per epoch, not 4)."""
    schedule = EvalSchedule(val_check_interval=interval, batches_per_epoch=batches)
    assert schedule.epochs_per_evaluation() == pytest.approx(1.0 / per_epoch)
    assert schedule.evaluations_in(3) == 3 * per_epoch
