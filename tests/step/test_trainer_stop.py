"""The stop forecast and announced changes read from a real (small, CPU) Trainer."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import (
    BackboneFinetuning,
    EarlyStopping,
    ModelCheckpoint,
    StochasticWeightAveraging,
)
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.step.hints import KnownChange
from tests.test_callback import EpochMeter, make_trainer


def accuracy(epoch: int) -> float:
    """Rises as 0.9 - 0.5 exp(-(epoch + 1) / 4): 0.85 is first reached at epoch 9 (0-based)."""
    return 0.9 - 0.5 * math.exp(-(epoch + 1) / 4.0)


class TrainAccuracy(BoringModel):
    """Logs the accuracy from the training step, once per epoch; there is no validation."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().training_step(batch, batch_idx)
        self.log("train_acc", accuracy(self.current_epoch), on_step=False, on_epoch=True)
        return out


class EpochEndAccuracy(BoringModel):
    """Logs the accuracy in its own ``on_train_epoch_end``: Lightning runs that hook after the energy
    callback's and before ``EarlyStopping``'s."""

    def on_train_epoch_end(self) -> None:
        self.log("epoch_acc", accuracy(self.current_epoch))


class ValAccuracy(BoringModel):
    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().validation_step(batch, batch_idx)
        self.log("acc", accuracy(self.current_epoch))
        return out


def callback() -> EnergyCallback:
    return EnergyCallback(meter=EpochMeter({"gpu0": 100.0}), history_path=False)


def test_a_metric_checked_at_train_epoch_end_without_validation_is_forecast(tmp_path: Path) -> None:
    stopper = EarlyStopping(
        monitor="train_acc", mode="max", stopping_threshold=0.85, patience=1000, check_on_train_epoch_end=True
    )
    energy = callback()
    trainer = make_trainer(tmp_path, energy, max_epochs=60, limit_val_batches=0, callbacks=[stopper])
    trainer.fit(TrainAccuracy())
    assert trainer.current_epoch == 10  # stopped after epoch 9 (0-based) by the threshold
    stop = energy.run.stop
    assert stop is not None and stop.settings.at_train_epoch_end
    assert stop.schedule.epochs_per_evaluation() == 1.0
    assert stop.values == pytest.approx([accuracy(e) for e in range(10)])  # one evaluation per epoch
    assert stop.forecast is not None and stop.forecast.stopped and stop.forecast.seen == 10
    points = energy.run.expected
    assert [p.epoch for p in points] == list(range(points[0].epoch, 10))  # an expected total every epoch
    assert points[-1].stop_epoch == pytest.approx(10)
    measured = float(trainer.logged_metrics["energy/total_kwh"])
    assert float(trainer.logged_metrics["energy/expected_kwh"]) == pytest.approx(measured, rel=0.01)


@pytest.mark.parametrize("max_epochs", [60, 6])
def test_a_metric_the_module_logs_in_its_own_on_train_epoch_end_counts_for_its_epoch(
    tmp_path: Path, max_epochs: int
) -> None:
    stopper = EarlyStopping(
        monitor="epoch_acc", mode="max", stopping_threshold=0.85, patience=1000, check_on_train_epoch_end=True
    )
    energy = callback()
    trainer = make_trainer(tmp_path, energy, max_epochs=max_epochs, limit_val_batches=0, callbacks=[stopper])
    trainer.fit(EpochEndAccuracy())
    epochs = min(10, max_epochs)  # the threshold stops it after epoch 9; else max_epochs ends it
    assert trainer.current_epoch == epochs
    stop = energy.run.stop
    assert stop is not None and stop.reads_late and stop.pending_epoch is None
    # every epoch's value, the last one's too, in order: none read a hook early (stale) or lost
    assert stop.values == pytest.approx([accuracy(e) for e in range(epochs)])
    assert stop.forecast is not None and stop.forecast.seen == epochs
    assert stop.forecast.stopped  # by the threshold, or at the bound of max_epochs
    points = energy.run.expected
    assert [p.epoch for p in points] == list(range(points[0].epoch, epochs))
    if max_epochs == 60:  # the last expected total knows the run stopped after its 10th epoch
        assert points[-1].stop_epoch == pytest.approx(10)
        assert points[-1].total_j == pytest.approx(energy.run.ledger.measured_total_j, rel=0.01)
    # each epoch's expected total uses the evaluations up to that epoch, as a fresh tracker fed in order does
    replay = stop.fresh()
    for epoch, value in enumerate(stop.values):
        replay.evaluate(value)
        point = next((p for p in points if p.epoch == epoch), None)
        projection = energy.run.projections[epoch].projection
        assert energy.run.projections[epoch].epoch == epoch
        if point is not None:
            assert point.expected == replay.expected(projection)


def test_validation_every_second_epoch_maps_two_epochs_per_evaluation(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    energy = callback()
    trainer = make_trainer(tmp_path, energy, max_epochs=40, check_val_every_n_epoch=2, callbacks=[stopper])
    trainer.fit(ValAccuracy())
    stop = energy.run.stop
    assert stop is not None and not stop.settings.at_train_epoch_end  # Lightning checks after validation
    assert stop.schedule.epochs_per_evaluation() == 2.0
    assert stop.values == pytest.approx([accuracy(e) for e in range(1, trainer.current_epoch, 2)])
    assert stop.forecaster.seen == trainer.current_epoch // 2


def test_min_epochs_holds_a_run_whose_rule_fired_and_the_forecast_knows_it(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    energy = callback()
    trainer = make_trainer(tmp_path, energy, max_epochs=60, min_epochs=14, callbacks=[stopper])
    trainer.fit(ValAccuracy())
    assert trainer.current_epoch == 14  # fired after epoch 9 (0-based); min_epochs held it to 14 epochs
    stop = energy.run.stop
    assert stop is not None and stop.forecaster.rule.min_evaluations == 14
    assert stop.values == pytest.approx([accuracy(e) for e in range(14)])  # every evaluation, none after
    assert stop.forecast is not None and stop.forecast.stopped and stop.forecast.seen == 14
    points = {p.epoch: p for p in energy.run.expected}
    for epoch in range(9, 14):  # from the firing on, the stop is known: 14 epochs
        assert points[epoch].stop_epoch == points[epoch].stop_epoch_low == pytest.approx(14)
        assert points[epoch].expected.stop_epoch_high == pytest.approx(14)
    assert points[13].total_j == pytest.approx(energy.run.ledger.measured_total_j, rel=0.01)
    measured = float(trainer.logged_metrics["energy/total_kwh"])
    assert float(trainer.logged_metrics["energy/expected_kwh"]) == pytest.approx(measured, rel=0.01)


@pytest.mark.parametrize(
    "options",
    [
        {"min_steps": 42},  # mid-epoch 10: Lightning validates at step 42, then ends the epoch there
        {"min_steps": 48},  # the end of epoch 11
        {"min_steps": 46, "val_check_interval": 0.5},  # two validations an epoch, checked after each
        {"min_steps": 51, "check_val_every_n_epoch": 2},  # in the 13th epoch, which does not validate
        {"min_steps": 45, "check_val_every_n_epoch": 2},  # in the 12th, which validates: one at step 45
        {"min_steps": 23, "accumulate_grad_batches": 3},  # 2 steps an epoch of 4 batches
        {"min_steps": 30, "min_epochs": 13},  # both must be met: min_epochs is the later
    ],
)
def test_min_steps_holds_the_run_to_the_evaluations_lightning_makes(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    energy = callback()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = make_trainer(tmp_path, energy, max_epochs=60, callbacks=[stopper], **options)
        trainer.fit(ValAccuracy())
    stop = energy.run.stop
    assert stop is not None and stop.forecast is not None
    made = len(stop.values)  # every evaluation EarlyStopping made, fed where it checked
    assert stop.forecaster.rule.min_evaluations == made  # the hold is exactly what Lightning did
    assert stop.forecast.stopped and stop.forecast.seen == made and "went on" not in stop.forecast.reason
    assert "first fired at evaluation" in stop.forecast.reason  # the rule fired before min_steps
    assert trainer.global_step == max(options["min_steps"], trainer.global_step)


LOSSES = [1.0, 0.8, 0.6, math.nan, 0.5, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45]


class ValLoss(BoringModel):
    """Logs a validation loss with a NaN at epoch 3 (0-based), then a plateau from epoch 5."""

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().validation_step(batch, batch_idx)
        self.log("vloss", LOSSES[min(self.current_epoch, len(LOSSES) - 1)])
        return out


@pytest.mark.parametrize(("check_finite", "epochs"), [(True, 4), (False, 9)])
def test_check_finite_decides_whether_a_nan_ends_the_run_as_the_forecast_says(
    tmp_path: Path, check_finite: bool, epochs: int
) -> None:
    stopper = EarlyStopping(monitor="vloss", patience=3, check_finite=check_finite)
    energy = callback()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = make_trainer(tmp_path, energy, max_epochs=30, callbacks=[stopper])
        trainer.fit(ValLoss())
    # with check_finite the NaN stops it; without, the NaN is no improvement and the plateau from epoch 5
    # spends the patience (3) after epoch 8
    assert trainer.current_epoch == epochs
    stop = energy.run.stop
    assert stop is not None and stop.settings.check_finite is check_finite
    assert len(stop.values) == epochs and math.isnan(stop.values[3])
    assert stop.forecast is not None and stop.forecast.stopped and stop.forecast.seen == epochs
    assert ("not finite" in stop.forecast.reason) is check_finite


def _fit(tmp_path: Path, max_epochs: int, ckpt: str | None = None) -> tuple[Any, EnergyCallback]:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    energy = callback()
    trainer = make_trainer(
        tmp_path, energy, max_epochs=max_epochs, enable_checkpointing=True, callbacks=[stopper, checkpoint]
    )
    trainer.fit(ValAccuracy(), ckpt_path=ckpt)
    return trainer, energy


def test_the_forecast_survives_a_checkpoint_resume(tmp_path: Path) -> None:
    _, whole = _fit(tmp_path / "whole", 60)
    _, first = _fit(tmp_path / "resumed", 5)
    assert first.run.stop is not None and first.run.stop.forecaster.seen == 5
    trainer, resumed = _fit(tmp_path / "resumed", 60, str(tmp_path / "resumed" / "ckpt" / "last.ckpt"))
    assert trainer.current_epoch == 10
    assert resumed.run.stop is not None and whole.run.stop is not None
    assert resumed.run.stop.values == whole.run.stop.values  # epochs 0-4 replayed, 5-9 fed
    assert resumed.run.stop.forecast == whole.run.stop.forecast
    # the expected totals before the resume are kept (those were bounded by max_epochs=5): the report
    # lists every epoch's, and from the resume on they equal the uninterrupted run's
    assert [p.epoch for p in resumed.run.expected] == [p.epoch for p in whole.run.expected]
    assert resumed.run.expected[: len(first.run.expected)] == first.run.expected
    after = [p for p in resumed.run.expected if p.epoch >= 5]
    assert after == [p for p in whole.run.expected if p.epoch >= 5]


@pytest.mark.parametrize(
    ("field", "stop_state", "match"),
    [
        ("stop", {"version": 1, "monitor": "acc", "values": ["0.5"]}, "value 0"),
        ("stop", "garbage", "not a mapping"),
        ("expected", [{"epoch": 1, "total_j": "lots"}], "starts afresh"),
    ],
)
def test_a_malformed_saved_forecast_warns_and_meters_afresh(
    tmp_path: Path, field: str, stop_state: Any, match: str
) -> None:
    _fit(tmp_path, 3)
    path = tmp_path / "ckpt" / "last.ckpt"
    ckpt = torch.load(path, weights_only=False)
    (key,) = [k for k in ckpt["callbacks"] if "EnergyCallback" in k]
    ckpt["callbacks"][key][field] = stop_state
    torch.save(ckpt, path)
    with pytest.warns(UserWarning, match=match):
        trainer, energy = _fit(tmp_path, 8, str(path))
    assert trainer.current_epoch == 8  # training went on
    assert energy.run.stop is not None and energy.run.stop.forecaster.seen == 5  # afresh from epoch 3


class Scheduled(BoringModel):
    def __init__(self, scheduler: str, frequency: int = 1, step_size: int = 12) -> None:
        super().__init__()
        self.scheduler, self.frequency, self.step_size = scheduler, frequency, step_size

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        if self.scheduler == "step":
            scheduler: Any = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.step_size)
        elif self.scheduler == "multistep":
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 13])
        else:
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
        config = {"scheduler": scheduler, "interval": "epoch", "frequency": self.frequency}
        return {"optimizer": optimizer, "lr_scheduler": config}


@pytest.mark.parametrize(
    ("scheduler", "frequency", "step_size", "epochs"),
    [
        ("step", 1, 12, [12, 24]),
        ("step", 2, 6, [12, 24]),
        ("step", 1, 1, []),  # a decay every epoch (BoringModel's own schedule) is no change of regime
        ("multistep", 1, 0, [2, 13]),
        ("multistep", 2, 0, [4, 26]),
        ("exponential", 1, 0, []),
    ],
)
def test_step_and_multistep_lr_schedules_are_announced(
    tmp_path: Path, scheduler: str, frequency: int, step_size: int, epochs: list[int]
) -> None:
    energy = callback()
    trainer = make_trainer(tmp_path, energy, max_epochs=30, limit_train_batches=1, limit_val_batches=0)
    model = Scheduled(scheduler, frequency, step_size)
    lrs: list[float] = []
    model.on_train_epoch_start = lambda: lrs.append(trainer.optimizers[0].param_groups[0]["lr"])  # type: ignore[method-assign]
    trainer.fit(model)
    assert energy.run.projector.known_changes == tuple(KnownChange(e, "lr_step") for e in epochs)
    if epochs:  # the announced epochs are where the learning rate did change
        changed = [e for e in range(1, 30) if not math.isclose(lrs[e], lrs[e - 1])]
        assert changed == epochs


@pytest.mark.parametrize(("start", "epoch"), [(4, 3), (0.5, 3)])
def test_swa_start_is_announced_as_lightning_starts_it(tmp_path: Path, start: float, epoch: int) -> None:
    energy = callback()
    swa = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=start)
    trainer = make_trainer(tmp_path, energy, max_epochs=8, limit_val_batches=0, callbacks=[swa])
    trainer.fit(BoringModel())
    assert KnownChange(epoch, "swa") in energy.run.projector.known_changes
    assert swa.swa_start == epoch  # Lightning's own 0-based start


def test_dataloader_reloads_more_often_than_a_declaration_needs_announce_nothing(tmp_path: Path) -> None:
    from lightning_energy import trainer_info

    often = make_trainer(tmp_path, callback(), max_epochs=40, reload_dataloaders_every_n_epochs=1)
    assert trainer_info.announced_changes(often) == ()
    rare = make_trainer(tmp_path, callback(), max_epochs=40, reload_dataloaders_every_n_epochs=15)
    assert trainer_info.announced_changes(rare) == (
        KnownChange(15, "reload_dataloaders"),
        KnownChange(30, "reload_dataloaders"),
    )


def test_an_unreadable_swa_start_announces_nothing_else_still_counts(tmp_path: Path) -> None:
    energy = callback()
    swa = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=4)
    swa._swa_epoch_start = "later"  # type: ignore[assignment]  # a future Lightning may store another type
    finetune = BackboneFinetuning(unfreeze_backbone_at_epoch=2)
    trainer = make_trainer(tmp_path, energy, max_epochs=3, limit_val_batches=0, callbacks=[swa, finetune])
    from lightning_energy import trainer_info

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        changes = trainer_info.announced_changes(trainer)
    assert changes == (KnownChange(2, "unfreeze"),)
