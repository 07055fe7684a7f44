"""Two CPU processes (ddp_spawn, gloo): each rank meters its own device; the epoch energy is their sum."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch.distributed as dist
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback


class RankMeter:
    """Rank r's device uses (r + 1) x 100 J per epoch; its host meter (local rank 0 only) 10 J."""

    def __init__(self) -> None:
        self.total: dict[str, float] | None = None
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


@pytest.mark.timeout(300)
def test_ddp_epoch_energy_is_the_sum_over_ranks(tmp_path: Path) -> None:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        callbacks=[EnergyCallback(meter=RankMeter(), history_path=False)],
        enable_model_summary=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(BoringModel())
    # after ddp_spawn the main process's trainer.log_dir names a new version: find the one written
    (path,) = tmp_path.glob("**/energy_report.json")
    report = json.loads(path.read_text())
    assert report["world_size"] == 2
    assert [e["energy_j"] for e in report["epochs"]] == [310.0, 310.0]
    assert report["epochs"][0]["components_j"]["gpu"] == 300.0
    assert report["epochs"][0]["components_j"]["cpu"] == 10.0
    assert trainer.callback_metrics["energy/epoch_kwh"].item() == pytest.approx(310.0 / 3.6e6, rel=1e-6)
    assert trainer.callback_metrics["energy/total_kwh"].item() == pytest.approx(620.0 / 3.6e6, rel=1e-6)
