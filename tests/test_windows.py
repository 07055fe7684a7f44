"""In-epoch windows: a live projection inside long epochs and for step budgets (scripted 5 J per batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset, RandomIterableDataset
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader

from lightning_energy import EnergyCallback, load_report
from lightning_energy.meters import EnergyMeter

J_PER_BATCH = 5.0


class StepMeter(EnergyMeter, pl.Callback):
    """Cumulative energy = 5 J x training batches run so far (put it first in the callbacks)."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, *args: Any) -> None:
        self.batches += 1

    def read(self) -> dict[str, float]:
        return {"gpu0": J_PER_BATCH * self.batches}


class Spy(pl.Callback):
    """Records the progress bar's projection and the epoch's progress after our callback ran."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        bar = trainer.progress_bar_metrics
        projected = next((float(v) for k, v in bar.items() if k.startswith("proj_")), None)
        unit = next((k[5:] for k in bar if k.startswith("proj_")), "J")
        scale = {"mWh": 3.6, "Wh": 3600.0, "kWh": 3.6e6, "MWh": 3.6e9}.get(unit, 1.0)
        if projected is not None:
            self.seen.append((trainer.global_step, projected * scale))


class ListLogger(Logger):
    """Keeps every logged metric with its step."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "list"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((step, dict(metrics)))


def _fit(tmp_path: Path, model: pl.LightningModule | None = None, **trainer_kwargs: Any) -> tuple[Any, ...]:
    meter, spy, logger = StepMeter(), Spy(), ListLogger()
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "default_root_dir": tmp_path,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": False,
        "logger": logger,
        "log_every_n_steps": 1000,
    }
    options.update(trainer_kwargs)
    callback = EnergyCallback(meter=meter, history_path=False)
    trainer = pl.Trainer(callbacks=[meter, callback, spy], **options)
    trainer.fit(model or BoringModel())
    return trainer, spy, logger, callback


@pytest.mark.usefixtures("free_windows")
def test_one_long_epoch_projects_within_the_epoch(tmp_path: Path) -> None:
    trainer, spy, logger, _ = _fit(
        tmp_path, LongEpochModel(), max_epochs=1, limit_val_batches=2, val_check_interval=0.25
    )
    truth_j = 400 * J_PER_BATCH
    by_75 = [p for step, p in spy.seen if step <= 300]
    assert by_75, "no projection in the progress bar by 75 % of the epoch"
    assert by_75[-1] == pytest.approx(truth_j, rel=0.05)
    in_epoch = [
        row for step, row in logger.rows if "energy/projected_kwh" in row and step is not None and step < 400
    ]
    assert len(in_epoch) >= 3, f"only {len(in_epoch)} in-epoch projections logged"
    assert trainer.callback_metrics["energy/total_kwh"].item() == pytest.approx(truth_j / 3.6e6)


def test_max_steps_with_a_partial_last_epoch_projects_the_truth(tmp_path: Path) -> None:
    projections: list[tuple[int, float, float, float]] = []

    class Watch(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            m = trainer.callback_metrics
            if "energy/projected_kwh" in m:
                projections.append(
                    (
                        trainer.current_epoch,
                        m["energy/projected_kwh"].item() * 3.6e6,
                        m["energy/projected_low_kwh"].item() * 3.6e6,
                        m["energy/projected_high_kwh"].item() * 3.6e6,
                    )
                )

    meter, logger = StepMeter(), ListLogger()
    callback = EnergyCallback(meter=meter, history_path=False)
    trainer = pl.Trainer(
        callbacks=[meter, callback, Watch()],
        accelerator="cpu",
        default_root_dir=tmp_path,
        max_steps=400,
        limit_train_batches=32,  # 32 batches of the 64 BoringModel has: 12.5 epochs
        limit_val_batches=0,
        logger=logger,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(BoringModel())
    truth_j = 400 * J_PER_BATCH
    epoch_10 = next(p for p in projections if p[0] == 10)
    assert epoch_10[1] == pytest.approx(truth_j, rel=0.02)
    assert epoch_10[2] <= truth_j <= epoch_10[3]
    assert projections[-1][1] == pytest.approx(truth_j, rel=1e-6)


class LongEpochModel(BoringModel):
    """400 training batches per epoch."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomDataset(32, 800), batch_size=2)


class IterableModel(BoringModel):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomIterableDataset(32, 10_000), batch_size=2)


@pytest.mark.usefixtures("free_windows")
def test_iterable_data_of_unknown_length_projects_by_steps(tmp_path: Path) -> None:
    _, spy, _, callback = _fit(tmp_path, IterableModel(), max_steps=200, limit_val_batches=0)
    windows = callback.run.windows
    assert len(windows) >= 3
    last = windows[-1]
    assert last.total_j == pytest.approx(200 * J_PER_BATCH, rel=0.05)
    assert spy.seen and spy.seen[-1][1] == pytest.approx(200 * J_PER_BATCH, rel=0.05)


def test_windows_go_into_the_report_and_can_be_turned_off(tmp_path: Path) -> None:
    meter = StepMeter()
    trainer = pl.Trainer(
        callbacks=[meter, EnergyCallback(meter=meter, history_path=False)],
        accelerator="cpu",
        default_root_dir=tmp_path / "on",
        max_epochs=2,
        limit_train_batches=40,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.fit(BoringModel())
    report = load_report(tmp_path / "on")
    assert report.windows and sum(w.steps for w in report.windows) == 80
    assert sum(w.energy_j or 0.0 for w in report.windows) == pytest.approx(80 * J_PER_BATCH)
    assert [w.step for w in report.windows] == sorted(w.step for w in report.windows)
    off_meter = StepMeter()
    off = pl.Trainer(
        callbacks=[off_meter, EnergyCallback(meter=off_meter, history_path=False, window_batches=0)],
        accelerator="cpu",
        default_root_dir=tmp_path / "off",
        max_epochs=1,
        limit_train_batches=40,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    off.fit(BoringModel())
    assert load_report(tmp_path / "off").windows == ()


def test_max_time_projects_windows_by_time(tmp_path: Path) -> None:
    _, _, _, callback = _fit(
        tmp_path, LongEpochModel(), max_time={"seconds": 3}, max_epochs=-1, limit_val_batches=0
    )
    windows = [w for w in callback.run.windows if w.total_j is not None]
    assert windows, "no window projection under max_time"
    assert all(w.total_j >= 0 for w in windows)  # type: ignore[operator]


def test_resume_from_a_mid_epoch_checkpoint_continues_the_windows(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    meter = StepMeter()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=100, save_top_k=-1)
    first = pl.Trainer(
        callbacks=[meter, EnergyCallback(meter=meter, history_path=False), checkpoint],
        accelerator="cpu",
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_val_batches=0,
        enable_model_summary=False,
        enable_progress_bar=False,
        logger=False,
    )
    first.fit(LongEpochModel())
    mid = next(p for p in (tmp_path / "ckpt").iterdir() if "step=200" in p.name)
    meter2 = StepMeter()
    callback = EnergyCallback(meter=meter2, history_path=False)
    second = pl.Trainer(
        callbacks=[meter2, callback],
        accelerator="cpu",
        default_root_dir=tmp_path / "resumed",
        max_epochs=2,
        limit_val_batches=0,
        enable_model_summary=False,
        enable_progress_bar=False,
        logger=False,
    )
    second.fit(LongEpochModel(), ckpt_path=str(mid))
    steps = [w.step for w in callback.run.windows]
    assert steps[0] <= 200 < steps[-1]  # the windows saved before the checkpoint, then new ones
    assert steps == sorted(steps)
    energies = [r.energy_j for r in callback.run.ledger.records]
    assert 0.0 not in energies  # the resumed epoch is missing or measured, never 0 J
    assert energies[-1] == pytest.approx(400 * J_PER_BATCH)
