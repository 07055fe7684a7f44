"""Issue 24 items 2, 5 and 10 (the other window items are still open), through a real Trainer and the pure
window series: the meter charges joules for the work done
(10 J per training batch, 10 J per validation batch unless said otherwise), so every epoch, window and
projection has an exact right answer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel, RandomIterableDataset
from torch.utils.data import DataLoader

from lightning_energy import EnergyCallback
from lightning_energy.budget import Budget
from lightning_energy.hardware import Hardware
from lightning_energy.run import EnergyRun
from lightning_energy.windows import WindowSeries


class WorkMeter:
    """Cumulative joules of the work done so far (the model adds to ``total``)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.labels = {"gpu0": "measured"}

    def read(self) -> dict[str, float]:
        return {"gpu0": self.total}

    def close(self) -> None:
        pass


class WorkModel(BoringModel):
    def __init__(
        self, meter: WorkMeter, train_j: float = 10.0, val_j: float = 10.0, sleep_s: float = 0.0
    ) -> None:
        super().__init__()
        self.meter, self.train_j, self.val_j, self.sleep_s = meter, train_j, val_j, sleep_s

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.meter.total += self.train_j
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        self.meter.total += self.val_j
        return super().validation_step(batch, batch_idx)


class IterableWorkModel(WorkModel):
    """Training data of unknown length: 8 batches per epoch."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RandomIterableDataset(32, 16), batch_size=2)


def _trainer(tmp_path: Path, callback: EnergyCallback, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "max_epochs": 3,
        "accelerator": "cpu",
        "default_root_dir": tmp_path,
        "limit_train_batches": 4,
        "limit_val_batches": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
        "callbacks": [callback],
    }
    return pl.Trainer(**{**options, **kwargs})


def _report(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((folder / "energy_report.json").read_text())
    return report


def _window_projections(report: dict[str, Any]) -> list[float]:
    return [w["projected_total_j"] for w in report["windows"] if w["projected_total_j"] is not None]


# ------------------------------------------------------------------------------------------ item 2
# ------------------------------------------------------------------------------------------ item 1
@pytest.mark.parametrize("window_batches", [2, 4, None])  # None: the default, 1 batch for a 4-batch epoch
def test_windows_cover_the_whole_epoch_when_the_window_divides_it(
    tmp_path: Path, window_batches: int | None
) -> None:
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=window_batches)
    _trainer(tmp_path, callback, max_epochs=1).fit(WorkModel(meter))
    report = _report(tmp_path)
    assert report["epochs"][0]["energy_j"] == pytest.approx(60.0)  # 4 x 10 J train + 2 x 10 J val
    assert sum(w["energy_j"] for w in report["windows"]) == pytest.approx(60.0)  # the validation too
    assert sum(w["steps"] for w in report["windows"]) == 4


def test_a_window_larger_than_the_epoch_projects_the_truth(tmp_path: Path) -> None:
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=8)
    _trainer(tmp_path, callback, limit_train_batches=3, limit_val_batches=0).fit(WorkModel(meter, 40.0))
    report = _report(tmp_path)
    assert report["totals"]["energy_j"] == pytest.approx(360.0)
    projections = _window_projections(report)
    assert projections and projections == pytest.approx([360.0] * len(projections))


def test_window_series_larger_than_the_epoch_counts_work_not_windows() -> None:
    series = WindowSeries()
    budget = Budget(max_epochs=3, batches_per_epoch=3)  # 9 batches in all
    series.plan(budget, 8)  # windows of 8 batches: each epoch is a 3-batch window
    totals = []
    for epoch in range(3):
        window = series.close(
            budget, epoch=epoch, step=3 * epoch + 3, time_s=1.0, batches=3, energy_j=120.0, duration_s=1.0
        )
        assert window is not None and window.total_j is not None
        totals.append(window.total_j)
    assert totals == pytest.approx([360.0] * 3)


# ------------------------------------------------------------------------------------------ item 5
def test_numpy_integers_are_accepted_as_window_batches(tmp_path: Path) -> None:
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=np.int64(2))
    _trainer(tmp_path, callback, max_epochs=1).fit(WorkModel(meter))
    assert [w["steps"] for w in _report(tmp_path)["windows"]] == [2, 2]
    for bad in (2.5, True, -1, "2", np.float64(2.0)):
        with pytest.raises((TypeError, ValueError), match="window_batches"):
            EnergyCallback(window_batches=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- item 10
def test_fit_again_on_a_finished_trainer_keeps_the_complete_report(tmp_path: Path) -> None:
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False)
    trainer = _trainer(tmp_path, callback, max_epochs=2)
    model = WorkModel(meter)
    trainer.fit(model)
    before = (tmp_path / "energy_report.json").read_text()
    assert _report(tmp_path)["status"] == "complete"
    trainer.fit(model)  # trains nothing: max_epochs reached
    assert (tmp_path / "energy_report.json").read_text() == before


def test_an_empty_run_never_replaces_an_existing_report(tmp_path: Path) -> None:
    (tmp_path / "energy_report.json").write_text("{}")
    problem = EnergyRun().write_report(
        tmp_path, "partial", world_size=1, num_nodes=1, components={}, hardware=Hardware(), versions={}
    )
    assert problem is not None and "trained nothing" in problem
    assert (tmp_path / "energy_report.json").read_text() == "{}"
    assert (
        EnergyRun().write_report(
            tmp_path / "new",
            "partial",
            world_size=1,
            num_nodes=1,
            components={},
            hardware=Hardware(),
            versions={},
        )
        is None
    )  # no report yet: one is written
