"""The progress bar shows the energy so far and the projected total (``proj_``), TQDM and Rich alike, in a
unit that gives at least three significant figures without any theme configured."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from lightning_energy.callback import EnergyCallback
from lightning_energy.meters import FakeMeter


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
