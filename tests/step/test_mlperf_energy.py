"""The MLPerf runs as STEP energy series (tools/stop_data.load_mlperf_energy); skips without the data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lightning_energy.step import StepProjector
from tools.stop_data import MLPERF_CURVES, load_mlperf_energy

pytestmark = pytest.mark.skipif(
    not MLPERF_CURVES.is_file(), reason=f"MLPerf eval curves not found at {MLPERF_CURVES}"
)


def test_each_series_adds_up_to_the_runs_measured_energy() -> None:
    series = load_mlperf_energy()
    last: dict[str, float] = {}
    with MLPERF_CURVES.open(newline="") as handle:
        for row in csv.DictReader(handle):
            name = "/".join((row["benchmark"], row["round"], row["system"], row["run_id"]))
            last[name] = max(last.get(name, 0.0), float(row["cum_nodes_energy_J"]))
    assert len(series) >= 150
    for s in series:
        assert s.energy_j.sum() == pytest.approx(last[s.name], rel=1e-9)
        assert np.all(s.energy_j > 0) and s.work_units.mean() == pytest.approx(1.0)
        assert s.duration_s > 0 and s.benchmark in s.name


def test_a_missing_file_gives_no_series(tmp_path: Path) -> None:
    assert load_mlperf_energy(tmp_path / "absent.csv") == []


def test_step_projects_a_long_unet3d_run_within_its_interval() -> None:
    run = max((s for s in load_mlperf_energy() if s.benchmark == "unet3d"), key=lambda s: s.energy_j.size)
    step = StepProjector()
    total_units = float(run.work_units.sum())
    half = run.energy_j.size // 2
    for k in range(half):
        p = step.update(float(run.energy_j[k]), run.duration_s, total_units, work=float(run.work_units[k]))
    truth = float(run.energy_j.sum())
    assert p.stable and p.low_j <= truth <= p.high_j
    assert abs(p.total_j - truth) / truth < 0.02
