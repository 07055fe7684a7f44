"""benchmarks/step_accuracy.py's width model: hazard tables fitted on scores normalised by the run's noise."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
step_accuracy = pytest.importorskip("step_accuracy")

EDGES = (0.5,)


def _run(name: str, noise_hw: float, miss: float, n: int = 20) -> tuple[object, object]:
    """A zero-hazard trace whose noise half-width is ``noise_hw`` and whose projection is ``miss`` off."""
    truth = 1000.0
    total = np.full(n, truth * np.exp(-miss))
    series = step_accuracy.Series(
        name, name, "synthetic", "steady", np.full(n, truth / n), np.ones(n), 1.0, None
    )
    trace = step_accuracy.Trace(
        total, total * np.exp(-noise_hw), total * np.exp(noise_hw), np.ones(n, dtype=bool),
        np.linspace(0.9, 0.0, n), 1, np.full(n, "steady", dtype=object),
    )  # fmt: skip
    return series, trace


def test_a_normalised_table_gives_quiet_runs_narrow_and_noisy_runs_wide_intervals() -> None:
    # misses proportional to the noise half-width: the power-1 table is the ratio, the same for every run
    runs = [_run(f"r{i}", hw, 3.0 * hw) for i, hw in enumerate((0.002, 0.004, 0.008, 0.016))]
    series, traces = zip(*runs, strict=True)
    table = step_accuracy.fit_hazard(list(series), list(traces), EDGES, power=1.0)
    assert table["hazard_noise_power"] == 1.0
    widths = []
    for s, tr in zip(series, traces, strict=True):
        out = step_accuracy.apply_hazard(tr, table)
        assert np.all(out.high_j >= s.total_j * (1 - 1e-9))  # every run covered
        widths.append(float(np.log(out.high_j[0] / out.total_j[0])))
    assert widths == sorted(widths) and widths[-1] > 4 * widths[0]
    pooled = step_accuracy.fit_hazard(list(series), list(traces), EDGES, power=0.0)
    quiet = step_accuracy.apply_hazard(traces[0], pooled)
    assert (
        np.log(quiet.high_j[0] / quiet.total_j[0]) > 2 * widths[0]
    )  # one table: the quiet run pays for the noisy
