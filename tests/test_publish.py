"""The epoch's figures reach Lightning's loggers, ``trainer.callback_metrics`` and the progress bar as
``LightningModule.log`` would put them there (same names, steps and values), without going through it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from lightning_energy import EnergyCallback
from tests.test_callback import EpochMeter, kwh, make_trainer


class LossModel(BoringModel):
    """Logs its loss per step and per epoch: Lightning's own epoch-level row is the reference."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"], on_step=True, on_epoch=True)
        return out


class GrowingMeter(EpochMeter):
    """Epoch n uses (n + 1) x 100 J on ``gpu0``: the first epoch is the cheapest."""

    def __init__(self) -> None:
        super().__init__({"gpu0": 100.0})
        self.epochs = 0

    def mark(self, event: str, epoch: int) -> None:
        if event == "epoch_end":
            self.epochs += 1
            self.total["gpu0"] += 100.0 * self.epochs


def _csv_points(log_dir: Path) -> dict[str, list[tuple[int, int, float]]]:
    """(step, epoch, value) of every metric in the CSV logger's file, by name."""
    with (log_dir / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    points: dict[str, list[tuple[int, int, float]]] = {}
    for row in rows:
        for name, value in row.items():
            if name not in {"step", "epoch"} and value:
                points.setdefault(name, []).append((int(row["step"]), int(row["epoch"] or -1), float(value)))
    return points


def test_epoch_figures_reach_the_csv_logger_at_lightnings_epoch_step(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=EpochMeter(), history_path=False, window_batches=0)
    logger = CSVLogger(tmp_path, name="csv")
    trainer = make_trainer(tmp_path, callback, logger=logger, limit_val_batches=0)
    trainer.fit(LossModel())
    points = _csv_points(Path(logger.log_dir))
    lightning_rows = [(step, epoch) for step, epoch, _ in points["train_loss_epoch"]]
    assert lightning_rows == [(3, 0), (7, 1), (11, 2)]  # 4 batches per epoch: Lightning's epoch-end step
    energy = {name: [(s, e) for s, e, _ in p] for name, p in points.items() if name.startswith("energy/")}
    # pinned from the same fit logged through LightningModule.log (0.3.0): names, steps and epochs
    assert energy == {
        "energy/epoch_kwh": lightning_rows,
        "energy/epoch_power_w": lightning_rows,
        "energy/total_kwh": lightning_rows,
        "energy/gpu_kwh": lightning_rows,
        "energy/cpu_kwh": lightning_rows,
        "energy/projected_kwh": lightning_rows,
        "energy/projected_low_kwh": lightning_rows,
        "energy/projected_high_kwh": lightning_rows,
        "energy/stable": lightning_rows,
    }
    # the values as LightningModule.log turns a float into a tensor of the default dtype
    epoch_kwh = [value for _, _, value in points["energy/epoch_kwh"]]
    assert epoch_kwh == [torch.tensor(kwh(120.0)).item()] * 3
    total_kwh = [value for _, _, value in points["energy/total_kwh"]]
    assert total_kwh == [torch.tensor(kwh(120.0 * n)).item() for n in (1, 2, 3)]
    assert not any(name in points for name in ("mWh", "proj_mWh"))  # the bar's figures are not logged


def test_figures_are_visible_to_callbacks_and_the_progress_bar(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=EpochMeter(), history_path=False, window_batches=0)
    trainer = make_trainer(tmp_path, callback, limit_val_batches=0, logger=False)
    trainer.fit(BoringModel())
    metrics = trainer.callback_metrics
    assert metrics["energy/total_kwh"].item() == torch.tensor(kwh(360.0)).item()
    assert metrics["energy/total_kwh"].dtype == torch.get_default_dtype()
    assert {"mWh", "proj_mWh"} <= set(metrics)  # the bar's figures too, as LightningModule.log puts them
    assert trainer.progress_bar_metrics["mWh"] == pytest.approx(kwh(360.0) * 1e6, rel=1e-6)
    assert not any(name.startswith("energy/") for name in trainer.progress_bar_metrics)
    assert not trainer.logged_metrics  # no logger: nothing logged


@pytest.mark.parametrize("with_validation", [False, True])
def test_early_stopping_and_checkpoints_monitor_an_energy_metric(
    tmp_path: Path, with_validation: bool
) -> None:
    stopper = EarlyStopping(monitor="energy/epoch_kwh", mode="min", patience=1, check_on_train_epoch_end=True)
    best = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="energy/epoch_kwh", mode="min", save_on_train_epoch_end=True
    )
    callback = EnergyCallback(meter=GrowingMeter(), history_path=False)
    trainer = make_trainer(
        tmp_path,
        callback,
        callbacks=[stopper, best],
        max_epochs=10,
        enable_checkpointing=True,
        limit_val_batches=2 if with_validation else 0,
    )
    trainer.fit(BoringModel())
    assert stopper.stopped_epoch == 1  # epoch 1 used more than epoch 0: patience 1 is spent
    assert trainer.current_epoch == 2
    assert best.best_model_score is not None
    assert best.best_model_score.item() == pytest.approx(kwh(100.0), rel=1e-6)
    assert "epoch=0" in Path(best.best_model_path).name
