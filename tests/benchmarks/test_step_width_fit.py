"""benchmarks/step_accuracy.py's width model (benchmarks/step_hazard.py): hazard tables fitted on scores
normalised by the run's noise."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
step_methods = pytest.importorskip("step_methods")
step_hazard = pytest.importorskip("step_hazard")

EDGES = (0.5,)


def _run(name: str, noise_hw: float, miss: float, n: int = 20) -> tuple[object, object]:
    """A zero-hazard trace whose noise half-width is ``noise_hw`` and whose projection is ``miss`` off."""
    truth = 1000.0
    total = np.full(n, truth * np.exp(-miss))
    series = step_methods.Series(
        name, name, "synthetic", "steady", np.full(n, truth / n), np.ones(n), 1.0, None
    )
    trace = step_methods.Trace(
        total, total * np.exp(-noise_hw), total * np.exp(noise_hw), np.ones(n, dtype=bool),
        np.linspace(0.9, 0.0, n), 1, np.full(n, "steady", dtype=object),
    )  # fmt: skip
    return series, trace


def test_a_normalised_table_gives_quiet_runs_narrow_and_noisy_runs_wide_intervals() -> None:
    # misses proportional to the noise half-width: the power-1 table is the ratio, the same for every run
    runs = [_run(f"r{i}", hw, 3.0 * hw) for i, hw in enumerate((0.002, 0.004, 0.008, 0.016))]
    series, traces = zip(*runs, strict=True)
    table = step_hazard.fit_hazard(list(series), list(traces), EDGES, power=1.0)
    assert table["hazard_noise_power"] == 1.0
    widths = []
    for s, tr in zip(series, traces, strict=True):
        out = step_hazard.apply_hazard(tr, table)
        assert np.all(out.high_j >= s.total_j * (1 - 1e-9))  # every run covered
        widths.append(float(np.log(out.high_j[0] / out.total_j[0])))
    assert widths == sorted(widths) and widths[-1] > 4 * widths[0]
    pooled = step_hazard.fit_hazard(list(series), list(traces), EDGES, power=0.0)
    quiet = step_hazard.apply_hazard(traces[0], pooled)
    assert (
        np.log(quiet.high_j[0] / quiet.total_j[0]) > 2 * widths[0]
    )  # one table: the quiet run pays for the noisy


def _grouped(name: str, source: str, group: str, miss: float, n: int = 20) -> tuple[object, object]:
    """A zero-hazard trace of interval group ``group`` whose projection is ``miss`` below the truth."""
    series, trace = _run(name, 0.001, miss, n)
    series = step_methods.Series(name, name, source, source, series.energy_j, series.work, 1.0, None)
    trace.group = np.full(n, group, dtype=object)
    return series, trace


def _upper(table: dict, group: str) -> float:
    return float(table[f"hazard_{group}_high"][-1])


def test_shared_quiet_tables_give_the_steady_and_stable_groups_one_table() -> None:
    # 9 steady runs, two of which drift 8 % up; 40 stable runs, all within 1 %
    runs = [_grouped(f"s{i}", "gaissa", "steady", 0.08 if i < 2 else 0.005) for i in range(9)]
    runs += [_grouped(f"t{i}", "gaissa", "stable", 0.002 * (i % 5)) for i in range(40)]
    series, traces = (list(x) for x in zip(*runs, strict=True))
    separate = step_hazard.fit_hazard(series, traces, EDGES)
    shared = step_hazard.fit_hazard(series, traces, EDGES, quiet="shared")
    # separate: a steady cell of 9 runs keeps its largest need, and stable >= steady carries it over
    assert _upper(separate, "steady") > 0.07 and _upper(separate, "stable") > 0.07
    # shared: one cell of 49 runs, 2 drifting (4 %): its 90 % quantile lies among the quiet runs
    assert shared["hazard_steady_high"] == shared["hazard_stable_high"]
    assert shared["hazard_steady_low"] == shared["hazard_stable_low"]
    assert 0.005 <= _upper(shared, "stable") < 0.02


def test_the_max_mix_covers_each_source_and_the_pooled_mix_lets_the_larger_source_outvote() -> None:
    # 40 real runs within 1 %; 10 synthetic runs, 3 of them 10 % off (30 % of that source)
    runs = [_grouped(f"g{i}", "gaissa", "stable", 0.002 * (i % 5)) for i in range(40)]
    runs += [_grouped(f"y{i}", "synthetic", "stable", 0.10 if i < 3 else 0.004) for i in range(10)]
    series, traces = (list(x) for x in zip(*runs, strict=True))
    per_source = step_hazard.fit_hazard(series, traces, EDGES, mix="max")
    pooled = step_hazard.fit_hazard(series, traces, EDGES, mix="pooled")
    assert _upper(per_source, "stable") > 0.09  # the synthetic source is covered 90 % on its own
    assert _upper(pooled, "stable") < 0.02  # 3 of 50 runs: within the 10 % allowed to miss


def test_fit_hazard_names_a_wrong_choice() -> None:
    series, trace = _run("r", 0.01, 0.0)
    with pytest.raises(ValueError, match="quiet"):
        step_hazard.fit_hazard([series], [trace], EDGES, quiet="merged")
    with pytest.raises(ValueError, match="mix"):
        step_hazard.fit_hazard([series], [trace], EDGES, mix="mean")
