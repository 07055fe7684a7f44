"""A 10-epoch run resumed to 20 epochs: every line the user reads says the same as the measurements."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback, load_report
from lightning_energy.report_table import format_table


class GapMeter:
    """10 J per training epoch, plus 1 J just before each epoch starts (a gap: in the fit, not the epoch)."""

    def __init__(self) -> None:
        self.total = {"cpu": 1000.0}
        self.labels = {"cpu": "measured"}

    def mark(self, event: str, epoch: int) -> None:
        self.total["cpu"] += {"epoch_start": 1.0, "epoch_end": 10.0}.get(event, 0.0)

    def read(self) -> dict[str, float]:
        return dict(self.total)

    def close(self) -> None:
        pass


def fit(root: Path, max_epochs: int, ckpt_path: str | None = None) -> EnergyCallback:
    callback = EnergyCallback(meter=GapMeter(), history_path=False, window_batches=0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        limit_train_batches=2,
        limit_val_batches=1,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback, ModelCheckpoint(dirpath=root / "ckpt", save_last=True)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(BoringModel(), ckpt_path=ckpt_path)
    return callback


NUMBER = r"[0-9.e+-]+"


def _row(epoch: int, projected: str, interval: str, stable: str) -> str:
    return rf"\s*{epoch}\s+{NUMBER}\s+10\.0\s+{NUMBER}\s+{projected}\s+{re.escape(interval)}\s+{stable}"


@pytest.mark.timeout(120)
def test_a_resumed_run_reports_one_consistent_story(tmp_path: Path) -> None:
    first = fit(tmp_path, 10)
    assert first.run.stability_line().startswith("STEP declared stable energy after epoch 5: projected 100 J")
    assert first.run.fit_energy_j == pytest.approx(110.0)  # 10 epochs of 10 J and 10 gaps of 1 J
    saved: dict[str, Any] = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    (state,) = (v for k, v in saved["callbacks"].items() if k.startswith("EnergyCallback"))
    assert state["fit_energy_j"] == pytest.approx(110.0)  # what the checkpoint carries into a resume

    second = fit(tmp_path, 20, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    line = second.run.stability_line()
    assert line == (
        "STEP declared stable energy after epoch 10: projected 200 J [198 J, 206 J]; before the resume, "
        "for 10 planned epochs, it was declared stable after epoch 5 (100 J)"
    )
    report = load_report(tmp_path / "energy_report.json")
    assert report.totals.energy_j == pytest.approx(200.0)
    assert report.totals.fit_energy_j == pytest.approx(220.0)  # both fits, gaps included: never below 200 J
    assert report.first_stable is not None and report.first_stable.epoch == 10
    assert [h.planned_epochs for h in report.projections] == [10.0] * 10 + [20.0] * 10

    rows = [
        _row(0, "100", "[93.0, 114]", "no"),
        _row(1, "100", "[93.0, 114]", "no"),
        _row(2, "100", "[93.2, 103]", "no"),
        _row(3, "100", "[93.2, 103]", "no"),
        _row(4, "100", "[96.4, 103]", "no"),
        _row(5, "100", "[98.9, 103]", "yes"),
        _row(6, "100", "[99.6, 100]", "yes"),
        _row(7, "100", "[99.6, 100]", "yes"),
        _row(8, "100", "[99.7, 100]", "yes"),
        _row(9, "100", "[100, 100]", "yes"),
        *(_row(e, "200", "[198, 206]", "yes") for e in (10, 11, 12)),
        *(_row(e, "200", "[199, 201]", "yes") for e in (13, 14, 15)),
        *(_row(e, "200", "[199, 200]", "yes") for e in (16, 17)),
        *(_row(e, "200", "[200, 200]", "yes") for e in (18, 19)),
    ]
    expected = [
        re.escape("lightning_energy report: complete, 20 epochs (max_epochs 20), world size 1, 1 node(s)"),
        r"from \S+ to \S+",
        re.escape("components: cpu measured"),
        "",
        r"epoch\s+time s\s+energy J\s+power W\s+projected J\s+interval J\s+stable",
        *rows,
        rf"total\s+{NUMBER}\s+200",
        "",
        r"measured: 200 J in \S+ s \(20 epochs measured, 0 missing\)",
        re.escape("  by component: cpu 200 J"),
        re.escape("whole fit (sanity check and gaps included): 220 J"),
        re.escape("STEP projection: 200 J [200, 200], stable: one per-epoch energy level since epoch 1"),
        re.escape("STEP first declared stable after epoch 10: 200 J [198, 206]"),
        re.escape(
            "  (before a resume changed the planned epochs to 20: declared stable after epoch 5 for 10 "
            "epochs, 100 J [98.9, 103])"
        ),
        re.escape(
            "  (dated back to epoch 1, where the level began; declared only after epoch 5, once enough "
            "epochs confirmed it)"
        ),
        re.escape("PRE estimate: skipped (CPU-only training: PRE models GPU energy)"),
        re.escape("CO2: not reported (no carbon_intensity)"),
    ]
    lines = format_table(report).splitlines()
    assert len(lines) == len(expected), "\n".join(lines)
    for got, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, got), f"{got!r} does not match {pattern!r}"


def test_a_run_with_windows_off_resumes_its_state() -> None:
    from lightning_energy.budget import Budget
    from lightning_energy.windows import WindowSeries

    series = WindowSeries()
    series.plan(Budget(max_epochs=10, batches_per_epoch=40), configured=0)  # window_batches=0: windows off
    assert series.unit_batches == 0
    resumed = WindowSeries()
    assert resumed.load_state_dict(series.state_dict()) is None and resumed.unit_batches == 0
