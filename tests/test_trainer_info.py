"""The Lightning adapter's reads of the Trainer's settings: public routes, guarded."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import StochasticWeightAveraging

from lightning_energy import trainer_info
from lightning_energy.step.hints import KnownChange


def _trainer(root: Path, swa: StochasticWeightAveraging, max_epochs: int) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[swa],
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )


def test_swa_start_is_read_through_its_public_swa_start(tmp_path: Path) -> None:
    swa = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=4)  # 1-based: SWA starts at epoch 3
    assert trainer_info.swa_changes(_trainer(tmp_path, swa, 8)) == (KnownChange(3, "swa"),)
    assert trainer_info.swa_changes(_trainer(tmp_path, swa, 3)) == ()  # after the last epoch: no change


def test_a_fraction_not_yet_resolved_by_swa_announces_nothing(tmp_path: Path) -> None:
    swa = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=0.5)  # an epoch only in its on_fit_start
    assert trainer_info.swa_changes(_trainer(tmp_path, swa, 8)) == ()
