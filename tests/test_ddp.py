"""Two CPU processes (ddp_spawn, gloo): each rank meters its own device; the epoch energy is their sum."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
