"""EnergyCallback through a real CPU Trainer with scripted meters."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.units import JOULES_PER_KWH


class EpochMeter:
    """Adds ``joules_per_epoch`` per component at every epoch end; reads are free of side effects."""

    def __init__(self, joules_per_epoch: dict[str, float] | None = None) -> None:
        self.joules_per_epoch = joules_per_epoch or {"gpu0": 100.0, "cpu": 20.0}
        self.total = dict.fromkeys(self.joules_per_epoch, 1000.0)
        self.labels = {"gpu0": "measured", "cpu": "estimated"}
        self.hardware = {"gpus": [{"name": "Fake GPU"}]}
        self.reads = 0
        self.closed = False

    def mark(self, event: str, epoch: int) -> None:
        if event == "epoch_end":
            for name, value in self.joules_per_epoch.items():
                self.total[name] += value

    def read(self) -> dict[str, float]:
        self.reads += 1
        return dict(self.total)

    def close(self) -> None:
        self.closed = True


class FaultyMeter(EpochMeter):
    """An EpochMeter that misbehaves at the end of the given epochs."""

    def __init__(self, fault: str, epochs: set[int] | None) -> None:
        super().__init__({"gpu0": 100.0})
        self.fault = fault
        self.epochs = epochs  # None: every epoch
        self.current: int | None = None

    def mark(self, event: str, epoch: int) -> None:
        super().mark(event, epoch)
        self.current = epoch if event == "epoch_end" else None

    def read(self) -> dict[str, float]:
        reading = super().read()
        faulty = self.current is not None and (self.epochs is None or self.current in self.epochs)
        if not faulty:
            return reading
        if self.fault == "raise":
            raise RuntimeError("sensor unplugged")
        if self.fault == "nan":
            return {"gpu0": math.nan}
        if self.fault == "backwards":
            self.total["gpu0"] = 5.0  # driver reload: the counter restarts
            return dict(self.total)
        raise AssertionError(self.fault)


def make_trainer(tmp_path: Path, callback: EnergyCallback, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "max_epochs": 3,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": tmp_path,
        "limit_train_batches": 4,
        "limit_val_batches": 2,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "log_every_n_steps": 1,
    }
    options.update(kwargs)
    return pl.Trainer(callbacks=[callback, *options.pop("callbacks", [])], **options)


def report_of(trainer: pl.Trainer) -> dict[str, Any]:
    return json.loads((Path(trainer.log_dir) / "energy_report.json").read_text())


def kwh(joules: float) -> float:
    return joules / JOULES_PER_KWH


def test_logged_metrics_progress_bar_and_report(tmp_path: Path) -> None:
    meter = EpochMeter()
    callback = EnergyCallback(meter=meter, refresh_s=0, history_path=False)
    trainer = make_trainer(tmp_path, callback)
    trainer.fit(BoringModel())

    metrics = trainer.callback_metrics
    assert metrics["energy/epoch_kwh"].item() == pytest.approx(kwh(120.0), rel=1e-6)
    assert metrics["energy/total_kwh"].item() == pytest.approx(kwh(360.0), rel=1e-6)
    assert metrics["energy/gpu_kwh"].item() == pytest.approx(kwh(300.0), rel=1e-6)
    assert metrics["energy/cpu_kwh"].item() == pytest.approx(kwh(60.0), rel=1e-6)
    assert "energy/ram_kwh" not in metrics  # no RAM component: nothing logged, not a silent zero
    assert metrics["energy/epoch_power_w"].item() > 0
    assert metrics["energy/projected_kwh"].item() == pytest.approx(kwh(360.0), rel=1e-4)
    low, high = metrics["energy/projected_low_kwh"].item(), metrics["energy/projected_high_kwh"].item()
    assert low <= metrics["energy/projected_kwh"].item() <= high
    assert metrics["energy/stable"].item() in (0.0, 1.0)
    # 360 J = 100 mWh: the bar's unit is chosen so that it shows 3 significant figures
    assert set(trainer.progress_bar_metrics) >= {"mWh", "proj_mWh"}
    assert trainer.progress_bar_metrics["mWh"] == pytest.approx(100.0, rel=1e-6)

    report = report_of(trainer)
    assert report["status"] == "complete"
    assert [e["energy_j"] for e in report["epochs"]] == [120.0, 120.0, 120.0]
    assert report["epochs"][0]["components_j"]["gpu"] == 100.0
    assert report["totals"]["energy_j"] == 360.0
    assert report["totals"]["fit_energy_j"] == 360.0
    assert report["components"] == {"gpu": "measured", "cpu": "estimated"}
    assert len(report["projection"]["history"]) == 3
    assert report["hardware"]["gpus"][0]["name"] == "Fake GPU"
    assert report["pre"] == {"skipped": "CPU-only training: PRE models GPU energy"}
    assert (Path(trainer.log_dir) / "energy_epochs.csv").exists()
    assert not meter.closed  # a meter passed in belongs to the caller


def test_live_progress_bar_reads_during_the_epoch(tmp_path: Path) -> None:
    meter = EpochMeter()
    trainer = make_trainer(
        tmp_path, EnergyCallback(meter=meter, refresh_s=0, history_path=False), max_epochs=1
    )
    trainer.fit(BoringModel())
    boundary_reads = 2 + 2  # epoch start/end + fit start/end
    assert meter.reads >= boundary_reads + 1  # and live reads (windows or the bar) during the epoch


def test_no_live_reads_with_a_long_refresh_interval(tmp_path: Path) -> None:
    meter = EpochMeter()
    trainer = make_trainer(
        tmp_path,
        EnergyCallback(meter=meter, refresh_s=3600, window_batches=0, history_path=False),
        max_epochs=1,
    )
    trainer.fit(BoringModel())
    assert meter.reads == 4


def test_resume_from_checkpoint_continues_totals(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = make_trainer(
        tmp_path,
        EnergyCallback(meter=EpochMeter(), history_path=False),
        max_epochs=2,
        enable_checkpointing=True,
        callbacks=[checkpoint],
    )
    first.fit(BoringModel())
    second = make_trainer(tmp_path, EnergyCallback(meter=EpochMeter(), history_path=False), max_epochs=4)
    second.fit(BoringModel(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert second.callback_metrics["energy/total_kwh"].item() == pytest.approx(kwh(480.0), rel=1e-6)
    report = report_of(second)
    assert [e["epoch"] for e in report["epochs"]] == [0, 1, 2, 3]
    assert len(report["projection"]["history"]) == 4


def test_old_checkpoint_state_loads_with_defaults() -> None:
    callback = EnergyCallback(meter=EpochMeter(), history_path=False)
    callback.load_state_dict({})
    assert callback.run.ledger.records == []
    assert callback.run.projections == []


@pytest.mark.parametrize(
    ("fault", "epochs", "missing"),
    [
        ("raise", {1}, [1]),
        ("raise", None, [0, 1, 2]),
        ("nan", {0}, [0]),
        ("backwards", {2}, [2]),
    ],
    ids=["raises-once", "raises-always", "nan", "counter-reset"],
)
def test_meter_faults_mark_epochs_missing_and_training_continues(
    tmp_path: Path, fault: str, epochs: set[int] | None, missing: list[int]
) -> None:
    callback = EnergyCallback(meter=FaultyMeter(fault, epochs), history_path=False)
    trainer = make_trainer(tmp_path, callback)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(BoringModel())
    ours = [w for w in caught if "lightning_energy" in str(w.message) and "not measured" in str(w.message)]
    assert len(ours) == 1  # one warning names the problem, however often it happens
    assert trainer.current_epoch == 3  # training went on
    report = report_of(trainer)
    assert report["status"] == "partial"
    assert [e["epoch"] for e in report["epochs"] if e["missing"]] == missing
    for epoch in report["epochs"]:
        if epoch["missing"]:
            assert epoch["energy_j"] is None and epoch["reason"]
        else:
            assert epoch["energy_j"] is not None and epoch["energy_j"] > 0
    assert report["totals"]["missing_epochs"] == len(missing)


def test_exception_writes_a_failed_report(tmp_path: Path) -> None:
    class Boom(BoringModel):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.current_epoch == 1:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    trainer = make_trainer(tmp_path, EnergyCallback(meter=EpochMeter(), history_path=False))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Boom())
    report = report_of(trainer)
    assert report["status"] == "failed"
    assert len(report["epochs"]) == 1
    assert any("boom" in w for w in report["warnings"])


def test_max_steps_sets_the_planned_epochs(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=EpochMeter(), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=-1, max_steps=10)  # 4 batches/epoch -> 2.5 epochs
    trainer.fit(BoringModel())
    report = report_of(trainer)
    assert report["max_epochs"] == 2.5
    assert [e["batches"] for e in report["epochs"]] == [4, 4, 2]
    # the partial last epoch counts as half an epoch: the projection is the measured total, exactly
    assert report["projection"]["history"][-1]["total_j"] == pytest.approx(360.0, rel=1e-6)


def test_early_stopping_marks_projection_an_upper_bound(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="valid_loss", patience=100)

    class Logged(BoringModel):
        def validation_step(self, batch: Any, batch_idx: int) -> Any:
            out = super().validation_step(batch, batch_idx)
            self.log("valid_loss", out["x"])
            return out

    trainer = make_trainer(
        tmp_path, EnergyCallback(meter=EpochMeter(), history_path=False), callbacks=[stopper]
    )
    trainer.fit(Logged())
    report = report_of(trainer)
    assert report["upper_bound"] is True
    assert report["projection"]["upper_bound"] is True


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"meter": "gpu"}, ValueError, "meter must be 'auto'.*'gpu'"),
        ({"meter": object()}, TypeError, "meter must be .*object"),
        ({"refresh_s": -1.0}, ValueError, "refresh_s.*-1.0"),
        ({"projector": 3}, TypeError, "projector must be a StepProjector.*int"),
        ({"pue": 0.5}, ValueError, "pue"),
        ({"carbon_intensity": -3.0}, ValueError, "carbon_intensity"),
        ({"meter": EpochMeter}, TypeError, "meter must be a meter instance.*EpochMeter"),
        ({"history_path": 123}, TypeError, "history_path.*123"),
        ({"report": "false"}, TypeError, "report must be True or False.*'false'"),
        ({"estimate": 1}, TypeError, "estimate must be True or False"),
        ({"window_batches": -2}, ValueError, "window_batches.*-2"),
    ],
    ids=[
        "meter-name",
        "meter-object",
        "refresh",
        "projector",
        "pue",
        "intensity",
        "meter-class",
        "history-path",
        "report-string",
        "estimate-int",
        "window-batches",
    ],
)
def test_bad_arguments_raise_at_once_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        EnergyCallback(**kwargs)


def test_carbon_is_logged_with_an_intensity(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=EpochMeter(), carbon_intensity=500.0, history_path=False)
    trainer = make_trainer(tmp_path, callback)
    trainer.fit(BoringModel())
    assert trainer.callback_metrics["energy/co2_kg"].item() == pytest.approx(kwh(360.0) * 0.5, rel=1e-5)
    assert report_of(trainer)["carbon"]["co2_kg"] == pytest.approx(kwh(360.0) * 0.5, rel=1e-9)


def test_no_carbon_without_an_intensity(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, EnergyCallback(meter=EpochMeter(), history_path=False), max_epochs=1)
    trainer.fit(BoringModel())
    assert "energy/co2_kg" not in trainer.callback_metrics
    assert report_of(trainer)["carbon"] is None


def test_without_logger_the_report_goes_to_default_root_dir(tmp_path: Path) -> None:
    trainer = make_trainer(
        tmp_path, EnergyCallback(meter=EpochMeter(), history_path=False), max_epochs=1, logger=False
    )
    trainer.fit(BoringModel())
    assert json.loads((tmp_path / "energy_report.json").read_text())["status"] == "complete"


def test_torch_state_is_untouched_by_the_callback(tmp_path: Path) -> None:
    torch.manual_seed(0)
    make_trainer(tmp_path / "a", EnergyCallback(meter=EpochMeter(), history_path=False)).fit(BoringModel())
    with_callback = torch.rand(1).item()
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        default_root_dir=tmp_path / "b",
        limit_train_batches=4,
        limit_val_batches=2,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )
    trainer.fit(BoringModel())
    assert torch.rand(1).item() == with_callback


def test_pre_estimate_on_a_gpu_run_is_logged_reported_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pretend the trainer runs on CUDA device 0 (an H100, which the PRE model was not fitted on)
    monkeypatch.setattr("lightning_energy.callback.trainer_info.cuda_device_indices", lambda trainer: [0])
    meter = EpochMeter()
    meter.hardware = {"gpus": [{"name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0, "memory_gb": 79.6}]}
    history = tmp_path / "history.sqlite"
    trainer = make_trainer(tmp_path / "run1", EnergyCallback(meter=meter, history_path=history))
    trainer.fit(BoringModel())

    pre_kwh = trainer.callback_metrics["energy/pre_kwh"].item()
    assert pre_kwh > 0
    unit = next(k for k in trainer.progress_bar_metrics if k.startswith("pre_"))[4:]
    scale = {"mWh": 1e-6, "Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}[unit]
    assert trainer.progress_bar_metrics[f"pre_{unit}"] * scale == pytest.approx(pre_kwh, rel=1e-5)
    report = report_of(trainer)
    assert report["pre"]["total_j"] / JOULES_PER_KWH == pytest.approx(pre_kwh, rel=1e-5)
    assert report["pre"]["total_epochs"] == 3
    assert report["pre"]["estimate"]["gpu_name"]

    from lightning_energy.pre import RunHistory

    (run,) = RunHistory(history).runs()
    assert run.epoch_energy_j == pytest.approx(100.0)  # the GPU's share of each 120 J epoch


def test_pre_failure_never_stops_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lightning_energy.callback.trainer_info.cuda_device_indices", lambda trainer: [0])

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no descriptors today")

    monkeypatch.setattr("lightning_energy.pre.estimate_for_fit", broken)
    trainer = make_trainer(tmp_path, EnergyCallback(meter=EpochMeter(), history_path=False))
    with pytest.warns(UserWarning, match="PRE estimate failed"):
        trainer.fit(BoringModel())
    assert "no descriptors today" in report_of(trainer)["pre"]["skipped"]
    assert trainer.current_epoch == 3


def test_max_time_projects_with_the_power_variant(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=EpochMeter(), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=-1, max_time={"seconds": 2}, limit_val_batches=0)
    trainer.fit(BoringModel())
    report = report_of(trainer)
    assert report["max_epochs"] is None
    assert report["max_time_s"] == pytest.approx(2.0)
    history = report["projection"]["history"]
    assert len(history) == len(report["epochs"]) >= 2
    assert all(h["total_j"] >= h["epoch_energy_j"] for h in history)
    assert history[-1]["method"].startswith("power")
    assert "energy/projected_kwh" in trainer.callback_metrics
