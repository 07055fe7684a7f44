"""Load the GAISSA GPU power traces and cut them into pseudo-epochs.

The data (``seaa_traces.npz`` + ``seaa_traces_index.csv``, 309 runs) lives outside the repository in
``../shared/data/gaissa/`` relative to the repository root; the environment variable
``LIGHTNING_ENERGY_GAISSA`` overrides that folder. It is never copied into the repository.

The pseudo-epoch protocol (see the data's README): each trace is cut into ``trained_epochs`` equal-time
slices between its first and last sample; each slice is integrated with the trapezoid rule, the power at
the slice edges being linearly interpolated, so that the slices sum exactly to the trapezoid of the whole
trace. The slices are fed in order to a projector together with the true number of epochs, and every
projection is compared with the sum of all slices.

The split (:func:`split`) is by group, architecture x GPU: the groups are ordered by the SHA-256 of their
name and the first half (rounded down) is the reporting part, the rest the tuning part.

Used by ``benchmarks/step_accuracy.py`` and ``tests/test_step_gaissa.py``.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "LIGHTNING_ENERGY_GAISSA"
INDEX_FILE = "seaa_traces_index.csv"
TRACES_FILE = "seaa_traces.npz"


def data_dir() -> Path:
    """The GAISSA data folder: ``$LIGHTNING_ENERGY_GAISSA`` or ``<repo>/../shared/data/gaissa``."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gaissa"


def available(folder: Path | None = None) -> bool:
    """Whether the index and the traces are present."""
    folder = data_dir() if folder is None else folder
    return (folder / INDEX_FILE).is_file() and (folder / TRACES_FILE).is_file()


@dataclass(frozen=True)
class Run:
    """One training run cut into pseudo-epochs."""

    run_id: str
    architecture: str
    environment: str
    gpu: str
    trained_epochs: int
    epoch_energy_j: np.ndarray  # shape (trained_epochs,)
    epoch_duration_s: float  # every pseudo-epoch lasts the same time

    @property
    def total_j(self) -> float:
        return float(self.epoch_energy_j.sum())

    @property
    def group(self) -> str:
        """The run's group for the tuning/reporting split: architecture x GPU (one data set here)."""
        return f"{self.architecture} x {self.gpu}"


def pseudo_epochs(t_s: np.ndarray, power_w: np.ndarray, n_epochs: int) -> np.ndarray:
    """Energy (J) of ``n_epochs`` equal-time slices of a power trace, trapezoid with interpolated edges."""
    if n_epochs < 1:
        raise ValueError(f"n_epochs must be >= 1, got {n_epochs}")
    t = np.asarray(t_s, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    edges = np.linspace(t[0], t[-1], n_epochs + 1)
    grid = np.union1d(t, edges)
    power = np.interp(grid, t, p)
    cumulative = np.concatenate([[0.0], np.cumsum(np.diff(grid) * (power[1:] + power[:-1]) / 2.0)])
    at_edges = cumulative[np.searchsorted(grid, edges)]
    return np.diff(at_edges)


def load_runs(folder: Path | None = None, limit: int | None = None, every: int = 1) -> list[Run]:
    """Load the runs (all of them, or every ``every``-th row, at most ``limit``) cut into pseudo-epochs."""
    folder = data_dir() if folder is None else folder
    with open(folder / INDEX_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = rows[::every]
    if limit is not None:
        rows = rows[:limit]
    runs: list[Run] = []
    with np.load(folder / TRACES_FILE) as traces:
        for row in rows:
            key = row["key"]
            t = traces[key + "__t_s"]
            p = traces[key + "__power_w"]
            n = int(row["trained_epochs"])
            energy = pseudo_epochs(t, p, n)
            runs.append(
                Run(
                    run_id=row["run_id"],
                    architecture=row["architecture"],
                    environment=row["environment"],
                    gpu=row["gpu"],
                    trained_epochs=n,
                    epoch_energy_j=energy,
                    epoch_duration_s=float(t[-1] - t[0]) / n,
                )
            )
    return runs


def split(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(tuning, reporting) runs, split by group (see the module doc)."""
    groups = sorted({r.group for r in runs}, key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    reporting = set(groups[: len(groups) // 2])
    return [r for r in runs if r.group not in reporting], [r for r in runs if r.group in reporting]
