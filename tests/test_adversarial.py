"""Trying to break the callback: bad readings, faults, resumes, reuse, read-only places, slow meters.

Each case asserts what a user must get: training goes on, the report is written, no number is faked.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.meters import EnergyMeter


class CountingMeter(EnergyMeter):
    """+10 J per epoch end mark; optional faults."""

    def __init__(self, *, fail_reads: bool = False, read_s: float = 0.0) -> None:
        self.total = 0.0
        self.fail_reads = fail_reads
        self.read_s = read_s
        self.reads = 0

    def mark(self, event: str, epoch: int) -> None:
        if event == "epoch_end":
            self.total += 10.0

    def read(self) -> dict[str, float]:
        self.reads += 1
        if self.read_s:
            time.sleep(self.read_s)
        if self.fail_reads:
            raise RuntimeError("sensor gone")
        return {"gpu0": self.total}


def _trainer(tmp_path: Path, callback: EnergyCallback, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "max_epochs": 3,
        "accelerator": "cpu",
        "default_root_dir": tmp_path,
        "limit_train_batches": 4,
        "limit_val_batches": 1,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "log_every_n_steps": 1,
    }
    options.update(kwargs)
    return pl.Trainer(callbacks=[callback, *options.pop("callbacks", [])], **options)


def _report(trainer: pl.Trainer) -> dict[str, Any]:
    return json.loads((Path(trainer.log_dir or ".") / "energy_report.json").read_text())


@pytest.mark.parametrize("carbon", [None, "FR", 56.0], ids=["no-carbon", "country", "grams"])
def test_dead_meter_with_carbon_never_crashes_and_writes_the_report(tmp_path: Path, carbon: Any) -> None:
    callback = EnergyCallback(
        meter=CountingMeter(fail_reads=True), carbon_intensity=carbon, history_path=False
    )
    trainer = _trainer(tmp_path, callback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(BoringModel())
    assert trainer.current_epoch == 3
    report = _report(trainer)
    assert report["status"] == "partial"
    assert report["totals"]["energy_j"] is None  # nothing measured: null, never 0
    assert "energy/total_kwh" not in trainer.callback_metrics
    assert "energy/co2_kg" not in trainer.callback_metrics
    if carbon is not None:
        assert report["carbon"]["co2_kg"] is None


class RaisingExtras(CountingMeter):
    @property
    def labels(self) -> dict[str, str]:
        raise RuntimeError("labels broke")

    @property
    def hardware(self) -> dict[str, object]:
        raise KeyError("hardware broke")


def test_raising_meter_properties_do_not_lose_the_report(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, EnergyCallback(meter=RaisingExtras(), history_path=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(BoringModel())
    report = _report(trainer)
    assert report["status"] == "complete"
    assert [e["energy_j"] for e in report["epochs"]] == [10.0, 10.0, 10.0]
    assert report["hardware"] == {}
    assert any("labels" in w for w in report["warnings"])


class DuckMeter:
    """Not an EnergyMeter: duck typed, with a raising optional property."""

    def __init__(self) -> None:
        self.inner = CountingMeter()

    @property
    def labels(self) -> dict[str, str]:
        raise RuntimeError("no labels today")

    def mark(self, event: str, epoch: int) -> None:
        self.inner.mark(event, epoch)

    def read(self) -> dict[str, float]:
        return self.inner.read()

    def close(self) -> None:
        pass


def test_duck_typed_meter_with_a_raising_property(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, EnergyCallback(meter=DuckMeter(), history_path=False))
    trainer.fit(BoringModel())
    assert _report(trainer)["totals"]["energy_j"] == 30.0


@pytest.mark.parametrize(
    "state",
    [
        {"version": 99, "ledger": {}},
        {"version": 2, "ledger": {"records": "garbage"}},
        {"projector": {"energy_j": 3}},
    ],
    ids=["newer-version", "garbage-ledger", "garbage-projector"],
)
def test_unreadable_checkpoint_state_warns_once_and_meters_afresh(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = _trainer(
        tmp_path,
        EnergyCallback(meter=CountingMeter(), history_path=False),
        max_epochs=1,
        enable_checkpointing=True,
        callbacks=[checkpoint],
    )
    first.fit(BoringModel())
    import torch

    path = tmp_path / "ckpt" / "last.ckpt"
    ckpt = torch.load(path, weights_only=False)
    (key,) = [k for k in ckpt["callbacks"] if "EnergyCallback" in k]
    ckpt["callbacks"][key] = state
    torch.save(ckpt, path)
    second = _trainer(tmp_path, EnergyCallback(meter=CountingMeter(), history_path=False), max_epochs=3)
    with pytest.warns(UserWarning, match="starts afresh"):
        second.fit(BoringModel(), ckpt_path=str(path))
    assert second.current_epoch == 3  # the resume went on
    report = _report(second)
    assert report["status"] == "partial"  # epoch 0 was not metered by this run's state
    assert report["epochs"][0]["energy_j"] is None


def test_resume_from_a_mid_epoch_checkpoint_never_records_zero(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=6, save_top_k=-1)
    first = _trainer(
        tmp_path,
        EnergyCallback(meter=CountingMeter(), history_path=False),
        max_epochs=2,
        enable_checkpointing=True,
        callbacks=[checkpoint],
    )
    first.fit(BoringModel())
    mid = next(p for p in (tmp_path / "ckpt").iterdir() if "step=6" in p.name)  # inside epoch 1
    second = _trainer(tmp_path, EnergyCallback(meter=CountingMeter(), history_path=False), max_epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        second.fit(BoringModel(), ckpt_path=str(mid))
    report = _report(second)
    energies = [e["energy_j"] for e in report["epochs"]]
    assert 0.0 not in energies
    assert [e["epoch"] for e in report["epochs"]] == [0, 1, 2]
    assert energies[0] == 10.0 and energies[2] == 10.0
    if energies[1] is None:
        assert report["status"] == "partial" and report["epochs"][1]["reason"]


def test_one_callback_for_two_independent_fits_starts_afresh(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=CountingMeter(), history_path=False)
    _trainer(tmp_path / "a", callback).fit(BoringModel())
    second = _trainer(tmp_path / "b", callback)
    second.fit(BoringModel())
    report = _report(second)
    assert [e["epoch"] for e in report["epochs"]] == [0, 1, 2]
    assert report["totals"]["energy_j"] == 30.0
    assert len(report["projection"]["history"]) == 3


def test_resume_from_a_checkpoint_without_our_state_says_so(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    plain = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        default_root_dir=tmp_path,
        limit_train_batches=4,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint],
        logger=False,
    )
    plain.fit(BoringModel())
    trainer = _trainer(
        tmp_path / "resumed", EnergyCallback(meter=CountingMeter(), history_path=False), max_epochs=4
    )
    with pytest.warns(UserWarning, match="not metered"):
        trainer.fit(BoringModel(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    report = _report(trainer)
    assert report["status"] == "partial"
    assert [e["energy_j"] for e in report["epochs"]] == [None, None, 10.0, 10.0]


def test_bool_readings_are_bad_readings(tmp_path: Path) -> None:
    class BoolMeter(CountingMeter):
        def read(self) -> dict[str, float]:
            return {"gpu0": True}  # type: ignore[dict-item]

    trainer = _trainer(tmp_path, EnergyCallback(meter=BoolMeter(), history_path=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(BoringModel())
    assert all(e["energy_j"] is None for e in _report(trainer)["epochs"])


def test_a_slow_meter_is_not_read_after_every_batch(tmp_path: Path) -> None:
    meter = CountingMeter(read_s=0.05)
    callback = EnergyCallback(meter=meter, history_path=False, refresh_s=0.0)
    trainer = _trainer(tmp_path, callback, max_epochs=1, limit_train_batches=40)
    trainer.fit(BoringModel())
    # boundary reads (fit start/end, epoch start/end) plus a few windows and refreshes, not one per batch
    assert meter.reads < 20


def test_a_raising_mark_warns_once(tmp_path: Path) -> None:
    class BadMark(CountingMeter):
        def mark(self, event: str, epoch: int) -> None:
            super().mark(event, epoch)
            raise RuntimeError("mark broke")

    trainer = _trainer(tmp_path, EnergyCallback(meter=BadMark(), history_path=False, window_batches=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(BoringModel())
    ours = [w for w in caught if "mark" in str(w.message) and "lightning_energy" in str(w.message)]
    assert len(ours) <= 2  # once per cause (epoch_start, epoch_end), not once per call


def test_read_only_log_dir_loses_nothing_but_the_files(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    callback = EnergyCallback(meter=CountingMeter(), history_path=False)
    trainer = _trainer(folder, callback, logger=False)
    folder.chmod(0o500)
    try:
        with pytest.warns(UserWarning, match="not written"):
            trainer.fit(BoringModel())
    finally:
        folder.chmod(0o700)
    assert trainer.current_epoch == 3


def test_report_write_failure_leaves_no_half_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning_energy import _io

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError("No space left on device")

    monkeypatch.setattr(_io.tempfile, "mkstemp", full_disk)
    trainer = _trainer(tmp_path, EnergyCallback(meter=CountingMeter(), history_path=False), logger=False)
    with pytest.warns(UserWarning, match="no file was changed"):
        trainer.fit(BoringModel())
    assert not (tmp_path / "energy_report.json").exists() and not (tmp_path / "energy_epochs.csv").exists()


def test_not_stable_says_why_at_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trainer = _trainer(tmp_path, EnergyCallback(meter=CountingMeter(), history_path=False))
    trainer.fit(BoringModel())
    report = _report(trainer)
    reason = report["projection"]["history"][-1]["reason"]
    assert reason and ("stable" in reason)
    assert math.isfinite(report["projection"]["history"][-1]["total_j"])


def test_a_user_projector_starts_afresh_for_each_fit(tmp_path: Path) -> None:
    from lightning_energy import StepProjector

    mine = StepProjector(confidence=0.8)
    callback = EnergyCallback(meter=CountingMeter(), projector=mine, history_path=False)
    _trainer(tmp_path / "a", callback).fit(BoringModel())
    second = _trainer(tmp_path / "b", callback)
    second.fit(BoringModel())
    assert callback.run.projector.epochs_seen == 3  # not 6: the second fit is a new run
    assert callback.run.projector.confidence == 0.8
    assert mine.epochs_seen == 0  # the user's object is a template, never fed


def test_numpy_bool_readings_are_bad_readings() -> None:
    import numpy as np

    from lightning_energy.accounting import check_reading
    from lightning_energy.errors import MeterError

    with pytest.raises(MeterError, match="bool"):
        check_reading({"gpu0": np.bool_(True)})
    assert check_reading({"gpu0": np.float32(2.5)}) == {"gpu0": 2.5}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"refresh_s": float("nan")}, ValueError),
        ({"refresh_s": "2"}, TypeError),
        ({"window_batches": 1.5}, ValueError),
        ({"pue": float("inf")}, ValueError),
        ({"carbon_intensity": "XX"}, ValueError),
        ({"carbon_intensity": True}, TypeError),
    ],
    ids=["refresh-nan", "refresh-str", "window-float", "pue-inf", "unknown-country", "intensity-bool"],
)
def test_more_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(error, match=name if name != "carbon_intensity" else "carbon|country|XX"):
        EnergyCallback(**kwargs)
