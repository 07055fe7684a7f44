"""Run by tests/test_ddp.py: ``Trainer(strategy="ddp", devices=2, accelerator="cpu")`` with the default meter.

Lightning's ``ddp`` launcher starts rank 1 by running this script again, so it must be a file.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback


def main(root: Path) -> None:
    warnings.filterwarnings("ignore")
    callback = EnergyCallback(history_path=False)  # meter="auto": rank 0 meters the host, rank 1 nothing
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        limit_test_batches=2,
        default_root_dir=root,
        callbacks=[callback],
        enable_model_summary=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        logger=False,
    )
    trainer.fit(BoringModel())
    if trainer.is_global_zero:
        (root / "stability_line.txt").write_text(callback.run.stability_line())
    trainer.test(BoringModel())  # metered on its own: one sum over both ranks at its end


if __name__ == "__main__":
    main(Path(sys.argv[1]))
