"""Quick check of StepProjector on a subset of the real GAISSA traces (skipped when the data is absent)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lightning_energy.step import StepProjector


def _load_traces_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gaissa_traces.py"
    spec = importlib.util.spec_from_file_location("gaissa_traces", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gaissa_traces", module)
    spec.loader.exec_module(module)
    return module


gaissa = _load_traces_module()
pytestmark = pytest.mark.skipif(
    not gaissa.available(),
    reason=f"GAISSA traces not found in {gaissa.data_dir()} (set {gaissa.ENV_VAR} to their folder)",
)


def test_pseudo_epochs_sum_to_the_trace_trapezoid() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.5])
    p = np.array([10.0, 20.0, 10.0, 40.0])
    slices = gaissa.pseudo_epochs(t, p, 4)
    assert slices.sum() == pytest.approx(np.trapezoid(p, t))
    assert slices.size == 4


def test_split_is_by_group_and_fixed() -> None:
    runs = gaissa.load_runs(every=3)
    tuning, reporting = gaissa.split(runs)
    assert {r.group for r in tuning}.isdisjoint({r.group for r in reporting})
    assert len(tuning) + len(reporting) == len(runs) and reporting
    assert gaissa.split(runs)[1] == reporting


def test_subset_of_real_traces() -> None:
    runs = gaissa.load_runs(every=15)  # 21 runs
    apes, hits, count = [], 0, 0
    for run in runs:
        step = StepProjector()
        truth = run.total_j
        declared = False
        for energy in run.epoch_energy_j:
            p = step.update(float(energy), run.epoch_duration_s, run.trained_epochs)
            if p.stable and not declared:
                declared = True
                apes.append(abs(p.total_j - truth) / truth)
            if declared:
                count += 1
                hits += p.low_j <= truth <= p.high_j
        assert p.total_j == pytest.approx(truth)
    assert len(apes) >= 0.9 * len(runs)  # a very noisy run may never be declared stable
    assert np.median(apes) < 0.01
    assert hits / count > 0.85
