"""Issue 24, PRE history: bad rows are skipped with one warning, partial epochs are recorded as their share
of an epoch, history warnings reach the report, and no history row can stop training."""

from __future__ import annotations

import json
import math
import sqlite3
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.accounting import EnergyLedger, EpochRecord
from lightning_energy.errors import EstimationError
from lightning_energy.fit_estimate import epoch_share, record_run
from lightning_energy.pre import RunHistory, calibrated_estimator
from lightning_energy.pre.model import Estimate
from lightning_energy.report_model import PreSummary

from .synthetic import synthetic_descriptors

H100 = {"gpus": [{"name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0, "memory_gb": 79.6}]}


def _insert(path: Path, energy_j: Any, power_w: Any, epochs: Any = 2) -> None:
    """A row as a damaged or hand-edited file may hold it (append() refuses such values)."""
    d = synthetic_descriptors(("T4",))[0]
    RunHistory(path).append(d, epoch_energy_j=500.0, power_w=50.0, epoch_seconds=10.0, epochs=2)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO runs (recorded_at, gpu_name, descriptor_json, epoch_energy_j, power_w,"
            " epoch_seconds, epochs) VALUES ('bad', 'T4', ?, ?, ?, 1.0, ?)",
            (json.dumps(d.to_dict()), energy_j, power_w, epochs),
        )
    conn.close()


# ----------------------------------------------------------------------------------------- item 12
@pytest.mark.parametrize(
    ("energy_j", "power_w"),
    [
        (1e308, 1e-308),  # the ratio overflows: an infinite epoch time
        (1e-300, 1e20),  # the ratio underflows: a zero epoch time
        (0.0, 50.0),
        (500.0, float("inf")),
        (-5.0, 50.0),
        ("lots", 50.0),
        (b"\x00", 50.0),
        (500.0, 5e6),  # a 5 MW GPU
    ],
)
def test_bad_history_rows_are_skipped_with_one_warning(tmp_path: Path, energy_j: Any, power_w: Any) -> None:
    path = tmp_path / "h.sqlite"
    _insert(path, energy_j, power_w)
    _insert(path, energy_j, power_w)
    with pytest.warns(UserWarning, match="skipped 2 unusable rows") as caught:
        runs = RunHistory(path).runs()
    assert len(caught) == 1 and len(runs) == 2
    d = synthetic_descriptors(("T4",))[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate = calibrated_estimator(path).predict(d)
    assert len(caught) == 1 and "unusable" in str(caught[0].message)
    assert estimate.calibration_runs == 2
    for value in (estimate.epoch_energy_j, estimate.power_w, estimate.epoch_seconds, estimate.rel_sigma):
        assert math.isfinite(value) and value > 0


def test_append_refuses_what_runs_would_skip(tmp_path: Path) -> None:
    d = synthetic_descriptors(("T4",))[0]
    with pytest.raises(EstimationError, match="plausible epoch time"):
        RunHistory(tmp_path / "h.sqlite").append(
            d, epoch_energy_j=1e308, power_w=1e-308, epoch_seconds=1.0, epochs=1
        )
    assert not (tmp_path / "h.sqlite").exists()


def _fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lightning_energy.callback.trainer_info.cuda_device_indices", lambda trainer: [0])


class WorkMeter:
    """Charges ``joules_per_batch`` on ``gpu0`` for every training batch the model runs."""

    def __init__(self, joules_per_batch: float = 10.0) -> None:
        self.total = {"gpu0": 1000.0}
        self.joules_per_batch = joules_per_batch
        self.labels = {"gpu0": "measured"}
        self.hardware = H100

    def read(self) -> dict[str, float]:
        return dict(self.total)

    def close(self) -> None:
        pass


class WorkModel(BoringModel):
    def __init__(self, meter: WorkMeter) -> None:
        super().__init__()
        self.meter = meter

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.meter.total["gpu0"] += self.meter.joules_per_batch
        return super().training_step(batch, batch_idx)


def _fit(tmp_path: Path, meter: WorkMeter, history: Path, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "default_root_dir": tmp_path,
        "limit_train_batches": 16,
        "limit_val_batches": 0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": [EnergyCallback(meter=meter, history_path=history)],
    }
    trainer = pl.Trainer(**{**options, **kwargs})
    trainer.fit(WorkModel(meter))
    assert trainer.global_step > 0
    return json.loads((tmp_path / "energy_report.json").read_text())


def test_a_history_row_that_overflows_never_stops_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_cuda(monkeypatch)
    history = tmp_path / "h.sqlite"
    _insert(history, 1e308, 1e-308)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = _fit(tmp_path / "run", WorkMeter(), history)
    assert report["status"] == "complete"
    assert report["pre"]["total_j"] > 0
    assert any("skipped 1 unusable row" in w for w in report["warnings"])
    assert any("skipped 1 unusable row" in w for w in report["pre"]["warnings"])


# ----------------------------------------------------------------------------------------- item 14
def test_an_unusable_history_is_kept_in_the_report_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_cuda(monkeypatch)
    history = tmp_path / "h.sqlite"
    history.write_bytes(b"this is not a database" * 100)
    with pytest.warns(UserWarning, match="cannot be used"):
        report = _fit(tmp_path / "run", WorkMeter(), history)
    assert any("cannot be used" in w for w in report["warnings"])
    assert report["pre"]["total_j"] > 0  # the uncalibrated estimate


def test_pre_warnings_round_trip_through_the_report_model() -> None:
    estimate = Estimate(
        1.0, 10.0, 0.1, 0.1, "NVIDIA H100 80GB HBM3", regime="compute-bound", traffic_inferred=True
    )
    pre = PreSummary(total_j=1.0, low_j=0.5, high_j=2.0, estimate=estimate, warnings=("PRE: x",))
    assert PreSummary.from_json(pre.to_json()) == pre
    skipped = PreSummary(skipped="why", warnings=("PRE: y",))
    assert PreSummary.from_json(skipped.to_json()) == skipped
    assert "warnings" not in PreSummary(skipped="why").to_json()


# ----------------------------------------------------------------------------------------- item 13
def test_epoch_share() -> None:
    assert epoch_share(2, 16) == 0.125
    assert epoch_share(16, 16) == epoch_share(20, 16) == epoch_share(None, 16) == epoch_share(2, None) == 1.0
    assert epoch_share(0, 16) == 1 / 16


def _pre_for(steps_per_epoch: int) -> PreSummary:
    d = synthetic_descriptors(("T4",))[0]
    d = replace(d, data=replace(d.data, steps_per_epoch=steps_per_epoch))
    return PreSummary(
        total_j=1.0, estimate=Estimate(1.0, 10.0, 0.1, 0.1, "NVIDIA H100 80GB HBM3"), descriptor=d
    )


def test_record_run_counts_a_partial_epoch_as_its_share(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    ledger = EnergyLedger()
    ledger.add(EpochRecord(0, 2.0, 20.0, {"gpu": 20.0}, None, 2))  # 2 of 16 batches
    assert record_run(path, _pre_for(16), ledger, world_size=1)
    (run,) = RunHistory(path).runs()
    assert run.epoch_energy_j == pytest.approx(160.0)
    assert run.power_w == pytest.approx(10.0)
    assert run.epoch_seconds == pytest.approx(16.0)


def test_record_run_with_full_and_partial_epochs(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    ledger = EnergyLedger()
    for epoch in range(3):
        ledger.add(EpochRecord(epoch, 16.0, 160.0, {"gpu": 160.0}, None, 16))
    ledger.add(EpochRecord(3, 8.0, 80.0, {"gpu": 80.0}, None, 8))
    assert record_run(path, _pre_for(16), ledger, world_size=1)
    (run,) = RunHistory(path).runs()
    assert run.epoch_energy_j == pytest.approx(160.0) and run.epochs == 4  # 3.5 epochs, rounded


def test_a_max_steps_run_ending_mid_epoch_is_recorded_per_full_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_cuda(monkeypatch)
    history = tmp_path / "h.sqlite"
    report = _fit(tmp_path / "run", WorkMeter(10.0), history, max_steps=2)
    assert report["epochs"][0]["batches"] == 2 and report["epochs"][0]["energy_j"] == pytest.approx(20.0)
    (run,) = RunHistory(history).runs()
    assert run.epoch_energy_j == pytest.approx(160.0)  # 16 batches x 10 J, not the 20 J measured
