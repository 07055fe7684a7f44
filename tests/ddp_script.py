"""Run by tests/test_ddp.py in its own interpreter: a 2-process ddp_spawn fit with a per-rank meter.

Rank r's device uses (r + 1) x 100 J per epoch and the host meter (local rank 0 only) 10 J. Running it in a
fresh interpreter keeps the spawned workers away from pytest's output capture.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch.distributed as dist
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback


class RankMeter:
    def __init__(self) -> None:
        self.total: dict[str, float] | None = None
        self.step: dict[str, float] = {}
        self.labels = {"gpu0": "measured"}

    def _start(self) -> dict[str, float]:
        if self.total is None:
            rank = dist.get_rank() if dist.is_initialized() else 0
            self.step = {"gpu0": 100.0 * (rank + 1)}
            if rank == 0:
                self.step["cpu"] = 10.0
            self.total = dict.fromkeys(self.step, 0.0)
        return self.total

    def mark(self, event: str, epoch: int) -> None:
        total = self._start()
        if event == "epoch_end":
            for name, value in self.step.items():
                total[name] += value

    def read(self) -> dict[str, float]:
        return dict(self._start())

    def close(self) -> None:
        pass


def main(root: Path) -> None:
    warnings.filterwarnings("ignore")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        default_root_dir=root,
        callbacks=[EnergyCallback(meter=RankMeter(), history_path=False)],
        enable_model_summary=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(BoringModel())
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    (root / "callback_metrics.json").write_text(json.dumps(metrics))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
