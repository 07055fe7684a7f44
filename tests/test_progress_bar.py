"""The progress bar shows the energy so far and the projected total (``proj_``), TQDM and Rich alike, in a
unit that gives at least three significant figures without any theme configured."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from lightning_energy.callback import EnergyCallback
from lightning_energy.meters import FakeMeter
from lightning_energy.run import BAR_UNITS


class _Spy(pl.Callback):
    """Records what the progress bar would display at the end of each training epoch."""

    def __init__(self) -> None:
        self.shown: list[dict[str, float | int | str]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bar = trainer.progress_bar_callback
        assert isinstance(bar, ProgressBar)
        self.shown.append(dict(bar.get_metrics(trainer, pl_module)))


def _fit(tmp_path: Path, bar: ProgressBar) -> tuple[pl.Trainer, _Spy]:
    spy = _Spy()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_epochs=3,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[EnergyCallback(FakeMeter({"gpu0": 100.0}), history_path=False, report=False), bar, spy],
    )
    trainer.fit(BoringModel())
    return trainer, spy


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bar_class", [TQDMProgressBar, RichProgressBar])
def test_bar_shows_energy_and_projection(tmp_path: Path, bar_class: type[ProgressBar]) -> None:
    if bar_class is RichProgressBar:
        pytest.importorskip("rich")
    trainer, spy = _fit(tmp_path, bar_class())
    # a few hundred J: shown in mWh, so Rich's default 3 decimals still give >= 3 significant figures
    assert {"mWh", "proj_mWh"} <= set(trainer.progress_bar_metrics)
    final = spy.shown[-1]
    assert {"mWh", "proj_mWh"} <= set(final)
    measured_j = float(trainer.progress_bar_metrics["mWh"]) * 3.6
    assert measured_j >= 300.0  # FakeMeter: 100 W, 1 virtual second per read, >= 1 s per epoch
    assert float(final["mWh"]) >= 1.0 and float(final["proj_mWh"]) >= 1.0
    assert not any(key.startswith("pre_") for key in final)  # PRE is skipped on the CPU
    assert not any(key.endswith("kWh") for key in final)  # one unit, chosen once


class _WorkMeter:
    """Cumulative joules of the work done so far (the model adds to ``total``)."""

    def __init__(self) -> None:
        self.total = 0.0

    def read(self) -> dict[str, float]:
        return {"gpu0": self.total}

    def close(self) -> None:
        pass


class _VirtualClock:
    """``time.monotonic``: 0.1 s per training batch and no time otherwise (epochs of 40 s keep windows on)."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> float:
        return self.ticks / 10


class _HeavierLater(BoringModel):
    """Two epochs of 400 batches: 10 J each, 40 J from the second epoch's batch 100 on."""

    def __init__(self, meter: _WorkMeter, clock: _VirtualClock) -> None:
        super().__init__()
        self.meter, self.clock = meter, clock

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomDataset(32, 800), batch_size=2)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.clock.ticks += 1
        self.meter.total += 40.0 if self.current_epoch == 1 and batch_idx >= 100 else 10.0
        return super().training_step(batch, batch_idx)


class _BarSpy(pl.Callback):
    """After the energy callback: the bar's energy so far and projection (J), and the latest window's."""

    def __init__(self, energy: EnergyCallback) -> None:
        self.energy = energy
        self.seen: list[tuple[int, float, float, float | None]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        bar = trainer.progress_bar_metrics
        unit = next((k[5:] for k in bar if k.startswith("proj_")), None)
        windows = [w.total_j for w in self.energy.run.windows if w.epoch == trainer.current_epoch]
        if unit is not None and unit in bar:
            scale = next(u.joules for u in BAR_UNITS if u.name == unit)
            latest = next((j for j in reversed(windows) if j is not None), None)
            shown = (float(bar[unit]) * scale, float(bar[f"proj_{unit}"]) * scale)
            self.seen.append((trainer.current_epoch, *shown, latest))


def test_bar_follows_the_latest_window_and_never_shows_a_projection_below_the_energy_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue #22 item 1: ordinary refreshes showed the last epoch's projection, so within a long epoch the
    # bar froze, and when the work per batch grew it showed more energy used than "projected"
    clock, meter = _VirtualClock(), _WorkMeter()
    monkeypatch.setattr(time, "monotonic", clock)
    energy = EnergyCallback(meter, history_path=False, report=False, refresh_s=0.0)
    spy = _BarSpy(energy)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_epochs=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[energy, spy],
    )
    trainer.fit(_HeavierLater(meter, clock))
    later = [(so_far, shown, latest) for epoch, so_far, shown, latest in spy.seen if epoch == 1 and latest]
    assert len(later) > 300
    for so_far, shown, latest in later:
        assert so_far <= shown * (1 + 1e-6)
        assert shown == pytest.approx(max(latest, so_far), rel=1e-5)
    assert later[-1][1] > 12_000.0  # 4000 J + 100 x 10 J + 300 x 40 J = 17000 J; epoch 0 projected 8000 J
