"""The runs and the methods of ``benchmarks/step_accuracy.py``: a run as fed to the methods (``Series``, from
GAISSA traces, MLPerf energy series or synthetic scenarios), and each method's per-update output (``Trace``)
from the ``StepProjector``, the paper's STEP-E and N x the first epoch (``METHODS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gaissa_traces
import numpy as np
import step_scenarios

from lightning_energy.step import KnownChange, StepParams, StepProjector
from tools import stop_data


@dataclass(frozen=True)
class Series:
    """One run as fed to the methods."""

    name: str
    group: str  # the split/fold group: GAISSA architecture x GPU, or the synthetic kind
    source: str  # "gaissa" or "synthetic"
    kind: str
    energy_j: np.ndarray
    work: np.ndarray
    duration_s: float
    val_every: int | None
    changes: tuple[KnownChange, ...] = ()  # announced by the Trainer (told to the projector)

    @property
    def total_j(self) -> float:
        return float(self.energy_j.sum())


@dataclass
class Trace:
    """Per-update output of one method on one run; NaN = no projection / no interval."""

    total_j: np.ndarray
    low_j: np.ndarray
    high_j: np.ndarray
    stable: np.ndarray
    remaining_fraction: np.ndarray
    declared: int | None  # units seen at the first stable declaration
    group: np.ndarray | None = None  # the projector's interval group per update (StepProjector only)


def from_gaissa(run: gaissa_traces.Run) -> Series:
    return Series(
        run.run_id, run.group, "gaissa", "gaissa", run.epoch_energy_j, np.ones(run.trained_epochs),
        run.epoch_duration_s, None,
    )  # fmt: skip


def from_mlperf(s: stop_data.EnergySeries) -> Series:
    return Series(s.name, s.benchmark, "mlperf", "mlperf", s.energy_j, s.work_units, s.duration_s, None)


def from_scenario(s: step_scenarios.Scenario) -> Series:
    return Series(s.name, s.kind, "synthetic", s.kind, s.energy_j, s.work, 1.0, s.val_every_told, s.changes)


def _remaining(s: Series) -> np.ndarray:
    total = float(s.work.sum())
    return (total - np.cumsum(s.work)) / total


def run_step(s: Series, params: StepParams | None = None) -> Trace:
    step = StepProjector(val_every_n_epochs=s.val_every, params=params, known_changes=s.changes)
    n = s.energy_j.size
    out = np.empty((3, n))
    stable = np.zeros(n, dtype=bool)
    group = np.empty(n, dtype=object)
    total_units = float(s.work.sum())
    declared = None
    for k in range(n):
        p = step.update(float(s.energy_j[k]), s.duration_s, total_units, work=float(s.work[k]))
        out[:, k] = (p.total_j, p.low_j, p.high_j)
        stable[k] = p.stable
        group[k] = p.interval_group
        if p.stable and declared is None:
            declared = k + 1
    return Trace(out[0], out[1], out[2], stable, _remaining(s), declared, group)


def run_step_e(s: Series, first: int = 10, w: int = 5) -> Trace:
    """The paper's STEP-E: stable from ``first`` epochs; measured + remaining x mean of the last w."""
    x = s.energy_j / s.work
    n = x.size
    total = np.full(n, np.nan)
    csum = np.cumsum(s.energy_j)
    left = float(s.work.sum()) - np.cumsum(s.work)
    for k in range(first + w, n + 1):
        total[k - 1] = csum[k - 1] + left[k - 1] * x[k - w : k].mean()
    nan = np.full(n, np.nan)
    return Trace(total, nan, nan, ~np.isnan(total), _remaining(s), first + w if n >= first + w else None)


def run_epoch0(s: Series) -> Trace:
    """carbontracker: N x the first epoch."""
    n = s.energy_j.size
    total = np.full(n, float(s.work.sum()) * s.energy_j[0] / s.work[0])
    nan = np.full(n, np.nan)
    return Trace(total, nan, nan, np.ones(n, dtype=bool), _remaining(s), 1)


METHODS: dict[str, Callable[[Series], Trace]] = {
    "StepProjector": run_step,
    "STEP-E (s=10, w=5)": run_step_e,
    "N x epoch 0": run_epoch0,
}
