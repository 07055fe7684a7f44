"""Two CPU processes (ddp_spawn, gloo): each rank meters its own device; the epoch energy is their sum."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_energy import load_report
from lightning_energy.report_table import format_table

SCRIPT = Path(__file__).with_name("ddp_script.py")


@pytest.mark.timeout(300)
def test_ddp_epoch_energy_is_the_sum_over_ranks(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=280, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = tmp_path.glob("**/energy_report.json")  # written once, by global rank 0
    report = json.loads(path.read_text())
    assert report["world_size"] == 2
    assert [e["energy_j"] for e in report["epochs"]] == [310.0, 310.0]
    assert report["epochs"][0]["components_j"]["gpu"] == 300.0
    assert report["epochs"][0]["components_j"]["cpu"] == 10.0
    assert report["totals"]["fit_energy_j"] == 620.0  # the whole fit, all ranks
    metrics = json.loads((tmp_path / "callback_metrics.json").read_text())
    assert metrics["energy/epoch_kwh"] == pytest.approx(310.0 / 3.6e6, rel=1e-6)
    assert metrics["energy/total_kwh"] == pytest.approx(620.0 / 3.6e6, rel=1e-6)


AUTO_SCRIPT = Path(__file__).with_name("ddp_auto_script.py")


@pytest.mark.timeout(300)
def test_cpu_ddp_with_the_default_meter_measures_every_epoch(tmp_path: Path) -> None:
    """``strategy="ddp", devices=2, accelerator="cpu"``: rank 0 meters the host, rank 1 has nothing to meter
    by design and adds a labelled 0 J; no epoch is missing."""
    run = subprocess.run(
        [sys.executable, str(AUTO_SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "the meter failed" not in run.stderr + run.stdout
    (path,) = tmp_path.glob("**/energy_report.json")
    report = load_report(path)
    assert (report.world_size, report.unmetered_ranks, report.status) == (2, 1, "complete")
    assert [e.epoch for e in report.epochs] == [0, 1, 2]
    assert all(e.energy_j is not None and e.energy_j > 0 and not e.missing for e in report.epochs)
    assert set(report.components) == {"cpu", "ram"}  # the host; no GPU category on a CPU run
    assert report.totals.measured_epochs == 3 and report.totals.missing_epochs == 0
    assert report.totals.energy_j == pytest.approx(sum(e.energy_j or 0.0 for e in report.epochs))
    assert report.totals.fit_energy_j is not None and report.totals.fit_energy_j >= report.totals.energy_j
    assert len(report.projections) == 3  # a projection after every epoch
    assert not (tmp_path / "stability_line.txt").read_text().startswith("STEP: no projection")
    assert "1 rank has nothing to meter by design" in format_table(report)
    (test_file,) = tmp_path.glob("**/energy_test.json")
    stage = json.loads(test_file.read_text())
    assert stage["world_size"] == 2 and stage["energy_j"] is not None and stage["energy_j"] > 0
    assert set(stage["components_j"]) == {"cpu", "ram"} and stage["reason"] is None
