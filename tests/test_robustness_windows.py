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
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel, RandomIterableDataset
from torch.utils.data import DataLoader

from lightning_energy import EnergyCallback
from lightning_energy import metric_names as M
from lightning_energy.accounting import EpochRecord
from lightning_energy.budget import Budget
from lightning_energy.report_model import TrainerFacts
from lightning_energy.run import EnergyRun, RunStateError
from lightning_energy.units import JOULES_PER_KWH
from lightning_energy.windows import WindowSeries
from tests.test_windows import ListLogger


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


@pytest.mark.usefixtures("free_windows")
def test_a_window_ending_on_an_epoch_of_unknown_length_keeps_its_validation(tmp_path: Path) -> None:
    # the trainer cannot tell the last batch of iterable data: the window full at that batch closes
    # lazily, at the epoch's end, with the validation run after it
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=2)
    trainer = _trainer(tmp_path, callback, max_epochs=1, max_steps=100, limit_train_batches=1.0)
    trainer.fit(IterableWorkModel(meter))
    report = _report(tmp_path)
    assert report["epochs"][0]["energy_j"] == pytest.approx(100.0)  # 8 x 10 J train + 2 x 10 J val
    assert [(w["steps"], w["energy_j"]) for w in report["windows"]] == [(2, 20.0)] * 3 + [(2, 40.0)]


def test_a_mid_epoch_validation_lands_in_the_window_before_it(tmp_path: Path) -> None:
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=2)
    _trainer(tmp_path, callback, max_epochs=1, val_check_interval=2).fit(WorkModel(meter))
    report = _report(tmp_path)
    assert report["epochs"][0]["energy_j"] == pytest.approx(80.0)  # 4 x 10 J train + 2 x (2 x 10 J) val
    assert [(w["steps"], w["energy_j"]) for w in report["windows"]] == [(2, 40.0), (2, 40.0)]


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


# ------------------------------------------------------------------------------------------ item 3
class VirtualClock:
    """``time.monotonic`` for a whole fit: 10 ms pass per training batch and no time otherwise, so that
    ``max_time`` ends the run after an exact number of batches."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> float:
        return self.ticks / 100


class TimedWorkModel(WorkModel):
    def __init__(self, meter: WorkMeter, clock: VirtualClock) -> None:
        super().__init__(meter)
        self.clock = clock

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.clock.ticks += 1
        return super().training_step(batch, batch_idx)


def test_windows_project_to_the_time_budget_when_it_ends_the_run_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, meter = VirtualClock(), WorkMeter()
    monkeypatch.setattr(time, "monotonic", clock)
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=2)
    trainer = _trainer(
        tmp_path, callback, max_epochs=5, max_time={"seconds": 1}, limit_train_batches=40, limit_val_batches=0
    )
    trainer.fit(TimedWorkModel(meter, clock))
    report = _report(tmp_path)
    assert trainer.global_step == 100  # 1 s of 10 ms batches: 2.5 of the 5 planned epochs
    assert report["totals"]["energy_j"] == pytest.approx(1000.0)
    projections = _window_projections(report)
    # 20 windows in the first epoch; later epochs are short, so each is one window at its end
    assert [w["steps"] for w in report["windows"]] == [2] * 20 + [40, 20]
    assert projections == pytest.approx([1000.0] * 22)  # not 5 epochs' worth (2000 J)
    assert [h["total_j"] for h in report["projection"]["history"]] == pytest.approx([1000.0] * 3)


def test_window_series_projects_to_the_budget_that_ends_the_run_first() -> None:
    series = WindowSeries()
    budget = Budget(max_epochs=5, batches_per_epoch=40, total_seconds=1.0)  # 200 batches or 1 s
    series.plan(budget, 2)
    for step in range(1, 4):  # 20 J per 0.02 s window: 1 s is 50 windows, 1000 J; 200 batches take 2 s
        window = series.close(
            budget, epoch=0, step=step, time_s=0.02 * step, batches=2, energy_j=20.0, duration_s=0.02
        )
        assert window is not None and window.total_j == pytest.approx(1000.0)
    slow = WindowSeries()
    slow.plan(budget, 2)
    window = slow.close(budget, epoch=0, step=1, time_s=0.001, batches=2, energy_j=20.0, duration_s=0.001)
    assert window is not None and window.total_j == pytest.approx(2000.0)  # the batches end it first


# ------------------------------------------------------------------------------------------ item 4
@pytest.mark.usefixtures("free_windows")
def test_iterable_data_with_max_steps_and_max_epochs_projects_the_step_budget(tmp_path: Path) -> None:
    meter = WorkMeter()
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=2)
    trainer = _trainer(
        tmp_path, callback, max_epochs=5, max_steps=12, limit_train_batches=1.0, limit_val_batches=0
    )
    trainer.fit(IterableWorkModel(meter, 25.0))
    report = _report(tmp_path)
    assert trainer.global_step == 12
    assert report["totals"]["energy_j"] == pytest.approx(300.0)
    # windows by steps (the epoch length is unknown); the short second epoch is one window at its end
    assert [w["steps"] for w in report["windows"]] == [2, 2, 2, 2, 4]
    assert _window_projections(report) == pytest.approx([300.0] * 5)
    # the first epoch (8 batches) tells the epoch length: max_steps ends the run after 1.5 epochs
    assert [h["total_j"] for h in report["projection"]["history"]] == pytest.approx([300.0, 300.0])


def test_the_first_epoch_tells_an_unknown_epoch_length() -> None:
    budget = Budget(max_epochs=5, max_steps=12)  # iterable data: the trainer cannot tell the epoch length
    assert budget.total_batches == 12.0 and budget.total_epochs == 5.0
    assert budget.learned(8).total_epochs == 1.5 and budget.learned(8).total_batches == 12.0
    assert budget.learned(None) is budget and Budget(batches_per_epoch=4).learned(8).batches_per_epoch == 4
    run = EnergyRun()
    run.set_budget(budget, 2)
    run.finish_epoch(EpochRecord(0, 1.0, 200.0, {"gpu": 200.0}, None, batches=8))
    assert run.budget.batches_per_epoch == 8 and run.last_projection is not None
    assert run.last_projection.total_j == pytest.approx(300.0)
    run.finish_epoch(EpochRecord(1, 0.5, 100.0, {"gpu": 100.0}, None, batches=4))  # max_steps ends it
    assert run.last_projection.total_j == pytest.approx(300.0)
    assert run.window_batches == 2  # the windows keep their size
    resumed = EnergyRun()
    resumed.load_state_dict(run.state_dict())
    resumed.set_budget(budget)  # the trainer still cannot tell: the saved epochs do
    assert resumed.budget.batches_per_epoch == 8
    epochs_only = EnergyRun()  # no max_steps: no window size until the first epoch tells the length
    epochs_only.set_budget(Budget(max_epochs=3))
    assert epochs_only.window_batches is None
    epochs_only.finish_epoch(EpochRecord(0, 60.0, 400.0, {"gpu": 400.0}, None, batches=400))
    assert epochs_only.window_batches == 20  # 1/20 of the epoch, as for a known length
    window = epochs_only.close_window(epoch=1, step=420, time_s=63.0, batches=20, energy_j=20.0, duration_s=3)
    assert window is not None and window.total_j == pytest.approx(1200.0)


# ------------------------------------------------------------------------------------------ item 6
def test_logged_total_never_decreases_and_windows_log_at_lightnings_step(tmp_path: Path) -> None:
    meter, logger = WorkMeter(), ListLogger()

    callback = EnergyCallback(meter=meter, history_path=False, window_batches=2)
    _trainer(tmp_path, callback, logger=logger, max_epochs=2).fit(WorkModel(meter))
    totals = [
        (step, m["energy/total_kwh"] * JOULES_PER_KWH) for step, m in logger.rows if "energy/total_kwh" in m
    ]
    assert totals
    in_time = [j for _, j in totals]
    assert in_time == sorted(in_time), totals
    by_step = [j for _, j in sorted(totals, key=lambda row: row[0] or 0)]
    assert by_step == sorted(by_step), totals
    # Lightning logs the metrics of the batch that ends at global step g (1-based) at step g - 1
    first_window_step = totals[0][0]
    assert first_window_step == 1 and totals[0][1] == pytest.approx(20.0)


class ProbeModel(TimedWorkModel):
    """Logs each training batch's index in the fit, so the test sees the step Lightning logs it at."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.log("probe/batch", float(batch_idx), on_step=True, on_epoch=False)
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize("accumulate", [1, 2, 3])
def test_windows_log_at_the_step_lightning_logs_their_last_batch_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, accumulate: int
) -> None:
    clock, meter, logger = VirtualClock(), WorkMeter(), ListLogger()
    monkeypatch.setattr(time, "monotonic", clock)  # windows cost no time: one per batch, whatever the load
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=1)
    trainer = _trainer(
        tmp_path,
        callback,
        logger=logger,
        max_epochs=1,
        limit_train_batches=9,
        limit_val_batches=0,
        accumulate_grad_batches=accumulate,
    )
    trainer.fit(ProbeModel(meter, clock))
    lightning_steps = {int(m["probe/batch"]): step for step, m in logger.rows if "probe/batch" in m}
    windows = [(step, m[M.TOTAL_KWH]) for step, m in logger.rows if M.TOTAL_KWH in m and "epoch" not in m]
    assert len(windows) == 8  # batches 0-7 (the epoch's last closes at its end, with the epoch's metrics)
    assert len(lightning_steps) == -(-9 // accumulate)  # every accumulated step, the partial last one too
    for batch, step in lightning_steps.items():
        if batch < 8:
            assert windows[batch][0] == step, (batch, windows, lightning_steps)
    totals = [kwh for _, kwh in windows] + [
        m[M.TOTAL_KWH] for _, m in logger.rows if "epoch" in m and M.TOTAL_KWH in m
    ]
    assert totals == sorted(totals)


# ------------------------------------------------------------------------------------------ item 9
def test_resuming_with_another_window_size_keeps_the_projection_exact(tmp_path: Path) -> None:
    meter = WorkMeter()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=6, save_top_k=-1)
    first = EnergyCallback(meter=meter, history_path=False, window_batches=2)
    trainer = _trainer(
        tmp_path / "a", first, callbacks=[first, checkpoints], enable_checkpointing=True, limit_val_batches=0
    )
    trainer.fit(WorkModel(meter, 30.0))
    (ckpt,) = [p for p in (tmp_path / "ckpt").iterdir() if "step=6" in p.name]
    meter2 = WorkMeter()
    meter2.total = 180.0  # the work done before the checkpoint
    second = EnergyCallback(meter=meter2, history_path=False, window_batches=8)
    resumed = _trainer(tmp_path / "b", second, limit_val_batches=0)
    resumed.fit(WorkModel(meter2, 30.0), ckpt_path=ckpt)
    report = _report(tmp_path / "b")
    projections = _window_projections(report)
    assert projections == pytest.approx([360.0] * len(projections))
    # epoch 0's two windows, then (the resumed epoch's start was not metered) epoch 2 as one window at its
    # end, counted as 2 windows of the saved 2 batches (as 1/2 of a window of 8 it would project 240 J)
    assert [(w["epoch"], w["steps"]) for w in report["windows"]] == [(0, 2), (0, 2), (2, 4)]
    assert any("window_batches=8 differs" in w for w in report["warnings"])


def test_the_window_size_is_saved_checked_and_kept_on_resume() -> None:
    budget = Budget(max_epochs=3, batches_per_epoch=4)
    run = EnergyRun()
    run.set_budget(budget, 2)
    run.close_window(epoch=0, step=1, time_s=1.0, batches=2, energy_j=60.0, duration_s=1.0)
    state = run.state_dict()
    assert state["windows"]["unit_batches"] == 2
    resumed = EnergyRun()
    resumed.load_state_dict(state)
    problem = resumed.set_budget(budget, 8)
    assert problem is not None and "window_batches=8" in problem and resumed.window_batches == 2
    assert resumed.set_budget(budget, None) is None and resumed.window_batches == 2
    window = resumed.close_window(epoch=0, step=3, time_s=2.0, batches=2, energy_j=60.0, duration_s=1.0)
    assert window is not None and window.total_j == pytest.approx(360.0)
    fresh = EnergyRun()  # a saved state without windows: the new size applies
    fresh.load_state_dict(EnergyRun().state_dict())
    assert fresh.set_budget(budget, 8) is None and fresh.window_batches == 8
    for bad in (0, -2, 2.5, True, "2", 1):  # 1: more work seen than 2 batches of windows can hold
        damaged = {**state, "windows": {**state["windows"], "unit_batches": bad}}
        if bad == 1:
            damaged["windows"]["records"] = []
        with pytest.raises(RunStateError):
            EnergyRun().load_state_dict(damaged)
    old = {**state, "windows": {k: v for k, v in state["windows"].items() if k != "unit_batches"}}
    legacy = EnergyRun()
    legacy.load_state_dict(old)  # saved before the size was: the in-epoch projection restarts
    assert legacy.window_series.projector.epochs_seen == 0 and len(legacy.windows) == 1
    assert any("do not say their size" in w for w in legacy.warnings)


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
    problem = EnergyRun().write_report(tmp_path, "partial", TrainerFacts())
    assert problem is not None and "trained nothing" in problem
    assert (tmp_path / "energy_report.json").read_text() == "{}"
    assert EnergyRun().write_report(tmp_path / "new", "partial", TrainerFacts()) is None  # none yet: written


def test_a_checkpoint_whose_energy_state_is_ahead_of_its_epoch_is_not_used(tmp_path: Path) -> None:
    import torch

    meter = WorkMeter()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_epochs=1, save_top_k=-1)
    first = EnergyCallback(meter=meter, history_path=False)
    trainer = _trainer(
        tmp_path / "a", first, callbacks=[first, checkpoints], enable_checkpointing=True, max_epochs=4
    )
    trainer.fit(WorkModel(meter))
    ckpts = {p.name.split("-")[0]: p for p in (tmp_path / "ckpt").iterdir()}
    mixed = torch.load(ckpts["epoch=1"], weights_only=False)
    later = torch.load(ckpts["epoch=3"], weights_only=False)
    for key in [k for k in mixed["callbacks"] if "EnergyCallback" in k]:
        mixed["callbacks"][key] = later["callbacks"][key]  # the energy state of a later checkpoint
    torch.save(mixed, tmp_path / "mixed.ckpt")
    meter2 = WorkMeter()
    second = EnergyCallback(meter=meter2, history_path=False)
    resumed = _trainer(tmp_path / "b", second, max_epochs=4)
    with pytest.warns(UserWarning, match="holds epochs up to 3 but training resumes at epoch 2"):
        resumed.fit(WorkModel(meter2), ckpt_path=tmp_path / "mixed.ckpt")
    report = _report(tmp_path / "b")
    assert [(e["epoch"], e["energy_j"]) for e in report["epochs"]] == [
        (0, None),
        (1, None),
        (2, 60.0),
        (3, 60.0),
    ]
