"""Accuracy of the STEP projector on runs it was not tuned on: GAISSA traces and synthetic scenarios.

Protocol (``docs/step.md``):

* Data: the 309 GAISSA GPU power traces cut into pseudo-epochs (``gaissa_traces.py``), the synthetic
  scenarios of ``step_scenarios.py`` (18 kinds x 12 seeds), and the MLPerf Training H100 runs as energy
  series whose units are the evaluations (``tools/stop_data.load_mlperf_energy``: server energy between
  consecutive evaluations, weighted by the training progress between them).
* Split, fixed and by group: GAISSA by architecture x GPU (half of the 10 groups report), synthetic by seed
  within each kind (half of the seeds report), both by the SHA-256 of the names. The MLPerf series all
  report: they are never used for tuning (STEP's constants were chosen without them).
* Tuning (tuning part only): a small grid over the declaration constants; for every grid point the hazard
  table of the interval is fitted on 4 of 5 inner folds of tuning groups and the grid point is scored on
  the fifth (interval score + APE at declaration); the best grid point's table is then refitted on the
  whole tuning part. The shipped ``StepParams()`` defaults must equal the result (checked and printed).
* Reporting: the shipped defaults on the reporting part only, with STEP-E (s=10, w=5) and N x epoch 0.

Run: ``nice -n 10 .venv/bin/python benchmarks/step_accuracy.py [--quick] [--no-docs]``. ``--quick`` skips the
tuning (reports the shipped defaults). It prints Markdown tables, a timing line, saves
``docs/img/step_*.png`` and rewrites the marked section of ``docs/step.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gaissa_traces
import step_scenarios

from lightning_energy.step import KnownChange, StepParams, StepProjector
from lightning_energy.step.params import INTERVAL_GROUPS, hazard_bucket, hazard_scale
from tools import stop_data

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "step.md"
IMG = ROOT / "docs" / "img"
BEGIN = "<!-- BEGIN step_accuracy -->"
END = "<!-- END step_accuracy -->"
FRACTIONS = (0.10, 0.25, 0.50)
INNER_FOLDS = 5
NEVER_PENALTY = 0.02  # selection: a run never declared costs as much as a 2 % error at declaration
MISS_WEIGHT = 2.0 / 0.1  # interval score of a 90 % interval
GRID = {"min_units": (8, 10, 12), "level_tolerance": (0.01, 0.02), "min_change_rel": (0.0, 0.02, 0.04)}
TIE_TOLERANCE = 0.01
# Bucket edges of the hazard table tried by the nested selection (remaining fraction of the run).
EDGES = {
    "coarse": (0.05, 0.15, 0.3, 0.5, 0.7, 0.9),
    "fine": (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95),
}
# Powers of the run's own noise half-width that scale its hazard (0: one hazard per group and bucket).
NOISE_POWERS = (0.0, 0.5, 1.0)
# Whether the declared groups share one hazard table: "separate" fits the steady and the stable cells
# apart (stable >= steady); "shared" fits one table on the updates of both and gives it to both.
QUIET_TABLES = ("separate", "shared")
# How the tuning sources are weighed in a cell: "max" = each source (GAISSA, synthetic) covered 90 % on
# its own, the larger half-width kept (the shipped rule); "pooled" = every tuning run one vote, whatever its
# source (for the diagnostic in docs/step.md only: the inner-fold score is itself pooled over the tuning
# runs, so it cannot judge the mix, which is set by how many runs of each source and kind we hold).
MIXES = ("max", "pooled")


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


# --------------------------------------------------------------------------------------- hazard table


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w) / w.sum()
    return float(v[min(int(np.searchsorted(cum, q)), v.size - 1)])


def shortest_pair(
    need_lo: np.ndarray, need_hi: np.ndarray, w: np.ndarray, n_runs: int
) -> tuple[float, float]:
    """The narrowest (lower, upper) half-widths that cover a conformal 90 % of the weighted points: the 10 %
    allowed to miss is split between the two sides where it narrows the interval most."""
    miss = max(0.1 - (0.9 / n_runs), 0.0)  # (1 - alpha)(1 + 1/n) coverage
    best = (math.inf, 0.0, 0.0)
    for miss_lo in np.linspace(0.0, miss, 21):
        lo = _weighted_quantile(need_lo, w, 1.0 - miss_lo) if miss_lo > 0 else float(need_lo.max())
        left = miss - miss_lo
        hi = _weighted_quantile(need_hi, w, 1.0 - left) if left > 0 else float(need_hi.max())
        if lo + hi < best[0]:
            best = (lo + hi, lo, hi)
    return best[1], best[2]


def noise_scale(tr: Trace, power: float) -> np.ndarray:
    """Per update, the factor of the hazard from the run's own 90 % noise half-width (a zero-hazard trace:
    the smaller of its two log half-widths, as a pending change or a clamp only widens one side)."""
    a_lo = np.log(tr.total_j / np.maximum(tr.low_j, 1e-300))
    a_hi = np.log(tr.high_j / tr.total_j)
    a = np.nan_to_num(np.minimum(a_lo, a_hi), nan=0.0)
    return np.array([hazard_scale(float(v), power) for v in a])


def fit_hazard(
    series: list[Series],
    traces: list[Trace],
    edges: tuple[float, ...],
    power: float = 0.0,
    quiet: str = "separate",
    mix: str = "max",
) -> dict[str, Any]:
    """Hazard half-widths per (interval group, remaining-fraction bucket, side) from zero-hazard traces.

    For every update the half-width ``H`` needed to cover the true total is ``sqrt(max(r^2 - a^2, 0))``
    (``r`` = log(true / projected), ``a`` = the noise half-width on that side), divided by the run's noise
    factor (:func:`noise_scale` with ``power``: a normalised conformal score); per cell of a Mondrian
    group (the projector's ``interval_group``: steady, stable, unstable, change ahead) the table holds the
    narrowest pair of quantiles of the two sides that covers a conformal 90 % of the cell
    (:func:`shortest_pair`), each run weighing 1 per cell, taken per source (GAISSA, synthetic) and the
    larger kept, so that both hold; then made non-decreasing in the remaining fraction, with
    unstable >= stable >= steady; an empty cell takes the unstable value.

    ``quiet="shared"``: the steady and the stable updates form one cell, whose values both tables take.
    ``mix="pooled"``: one cell for all sources, every run weighing 1 (see :data:`MIXES`).
    """
    if quiet not in QUIET_TABLES or mix not in MIXES:
        raise ValueError(
            f"quiet must be one of {QUIET_TABLES} and mix one of {MIXES}, got {quiet!r}, {mix!r}"
        )
    sources = ("gaissa", "synthetic") if mix == "max" else ("all",)
    cells: dict[tuple[str, str, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for s, tr in zip(series, traces, strict=True):
        assert tr.group is not None
        r = np.log(s.total_j / tr.total_j)
        a_lo = np.log(tr.total_j / np.maximum(tr.low_j, 1e-300))
        a_hi = np.log(tr.high_j / tr.total_j)
        need_lo = np.where(r < 0, np.sqrt(np.maximum(r**2 - a_lo**2, 0.0)), 0.0)
        need_hi = np.where(r > 0, np.sqrt(np.maximum(r**2 - a_hi**2, 0.0)), 0.0)
        if power > 0:
            factor = noise_scale(tr, power)
            need_lo = np.where(need_lo > 0, need_lo / np.maximum(factor, 1e-12), 0.0)
            need_hi = np.where(need_hi > 0, need_hi / np.maximum(factor, 1e-12), 0.0)
        buckets = np.array([hazard_bucket(f, edges) for f in tr.remaining_fraction])
        run_group = np.where(tr.group == "steady", "stable", tr.group) if quiet == "shared" else tr.group
        source = s.source if mix == "max" else "all"
        for group in INTERVAL_GROUPS:
            for b in range(len(edges) + 1):
                mask = (run_group == group) & (buckets == b)
                if mask.any():
                    w = np.full(int(mask.sum()), 1.0 / mask.sum())
                    cells.setdefault((source, group, b), []).append((need_lo[mask], need_hi[mask], w))
    raw: dict[tuple[str, str], list[float | None]] = {}
    for group in INTERVAL_GROUPS:
        lows: list[float | None] = []
        highs: list[float | None] = []
        for b in range(len(edges) + 1):
            lo: float | None = None
            hi: float | None = None
            for source in sources:
                parts = cells.get((source, group, b), [])
                if parts:
                    need_lo = np.concatenate([p[0] for p in parts])
                    need_hi = np.concatenate([p[1] for p in parts])
                    w = np.concatenate([p[2] for p in parts])
                    pair = shortest_pair(need_lo, need_hi, w, len(parts))
                    lo, hi = max(lo or 0.0, pair[0]), max(hi or 0.0, pair[1])
            lows.append(lo)
            highs.append(hi)
        raw[(group, "low")], raw[(group, "high")] = lows, highs
    if quiet == "shared":
        raw[("steady", "low")], raw[("steady", "high")] = raw[("stable", "low")], raw[("stable", "high")]
    table: dict[str, list[float]] = {}
    for side in ("low", "high"):
        unstable = [v or 0.0 for v in raw[("unstable", side)]]
        for group in INTERVAL_GROUPS:
            filled = [u if v is None else v for v, u in zip(raw[(group, side)], unstable, strict=True)]
            table[f"hazard_{group}_{side}"] = list(np.maximum.accumulate(filled))
        steady, stable = table[f"hazard_steady_{side}"], table[f"hazard_stable_{side}"]
        table[f"hazard_stable_{side}"] = [max(a, b) for a, b in zip(stable, steady, strict=True)]
        stable = table[f"hazard_stable_{side}"]
        table[f"hazard_unstable_{side}"] = [
            max(a, b) for a, b in zip(table[f"hazard_unstable_{side}"], stable, strict=True)
        ]
    out: dict[str, Any] = {"hazard_edges": edges, "hazard_noise_power": power}
    return out | {k: tuple(round(float(v), 4) for v in vals) for k, vals in table.items()}


def apply_hazard(tr: Trace, table: dict[str, Any]) -> Trace:
    """The interval a zero-hazard trace would have had with ``table`` (for selection only)."""
    assert tr.group is not None
    a_lo = np.log(tr.total_j / np.maximum(tr.low_j, 1e-300))
    a_hi = np.log(tr.high_j / tr.total_j)
    b = np.array([hazard_bucket(f, table["hazard_edges"]) for f in tr.remaining_fraction])
    h_lo = np.array([table[f"hazard_{g}_low"][i] for g, i in zip(tr.group, b, strict=True)])
    h_hi = np.array([table[f"hazard_{g}_high"][i] for g, i in zip(tr.group, b, strict=True)])
    factor = noise_scale(tr, float(table["hazard_noise_power"]))
    h_lo, h_hi = h_lo * factor, h_hi * factor
    low = tr.total_j * np.exp(-np.hypot(a_lo, h_lo))
    high = tr.total_j * np.exp(np.hypot(a_hi, h_hi))
    return Trace(tr.total_j, low, high, tr.stable, tr.remaining_fraction, tr.declared, tr.group)


def selection_score(series: list[Series], traces: list[Trace]) -> float:
    """Mean relative interval score over the updates of a run, averaged over runs, + APE at declaration."""
    scores, decl = [], []
    for s, tr in zip(series, traces, strict=True):
        t = s.total_j
        miss = np.maximum(tr.low_j - t, 0.0) + np.maximum(t - tr.high_j, 0.0)
        scores.append(float(np.mean((tr.high_j - tr.low_j + MISS_WEIGHT * miss) / t)))
        if tr.declared is None:
            decl.append(NEVER_PENALTY)
        else:
            decl.append(abs(tr.total_j[tr.declared - 1] - t) / t)
    return float(np.mean(scores) + np.mean(decl))


def zero_hazard(edges: tuple[float, ...], power: float = 0.0) -> dict[str, Any]:
    zero = tuple(0.0 for _ in range(len(edges) + 1))
    names = tuple(f"hazard_{g}_{side}" for g in INTERVAL_GROUPS for side in ("low", "high"))
    out: dict[str, Any] = {"hazard_edges": edges, "hazard_noise_power": power}
    return out | {name: zero for name in names}


def inner_folds(
    series: list[Series], traces: list[Trace], folds: np.ndarray, edges: tuple[float, ...], power: float,
    quiet: str = "separate", mix: str = "max",
) -> tuple[float, list[Trace]]:  # fmt: skip
    """Inner-fold score and the held-out traces: the table fitted on 4 folds, applied to the fifth."""
    applied: list[Trace | None] = [None] * len(series)
    fold_scores = []
    for k in range(INNER_FOLDS):
        fit_idx = np.flatnonzero(folds != k)
        test_idx = np.flatnonzero(folds == k)
        table = fit_hazard(
            [series[i] for i in fit_idx], [traces[i] for i in fit_idx], edges, power, quiet, mix
        )
        held = [apply_hazard(traces[i], table) for i in test_idx]
        for i, tr in zip(test_idx, held, strict=True):
            applied[i] = tr
        fold_scores.append(selection_score([series[i] for i in test_idx], held))
    return float(np.mean(fold_scores)), [tr for tr in applied if tr is not None]


def tune(series: list[Series]) -> tuple[StepParams, list[str]]:
    """Nested selection on the tuning part; returns the chosen params and a log of the grid.

    Every grid point runs once on all tuning runs with a zero hazard; for every bucket-edge set, noise power
    and quiet-table choice the hazard table is fitted on 4 inner folds of tuning groups and the grid point
    scored on the fifth. The log ends with the inner-fold coverage and width per class of run at the chosen
    grid point for every quiet-table choice and source mix (:data:`MIXES`; the mix is not selected).
    """
    groups = sorted({s.group for s in series})
    fold_of = {g: i % INNER_FOLDS for i, g in enumerate(groups)}
    folds = np.array([fold_of[s.group] for s in series])
    log = []
    scored: list[tuple[float, StepParams, str, list[Trace]]] = []
    keys = list(GRID)
    for combo in np.array(np.meshgrid(*GRID.values(), indexing="ij")).reshape(len(keys), -1).T:
        values = {
            k: (int(v) if isinstance(GRID[k][0], int) else float(v)) for k, v in zip(keys, combo, strict=True)
        }
        params = StepParams(**values, **zero_hazard(StepParams().hazard_edges))  # type: ignore[arg-type]
        traces = [run_step(s, params) for s in series]
        for (edge_name, edges), power, quiet in itertools.product(EDGES.items(), NOISE_POWERS, QUIET_TABLES):
            score, _ = inner_folds(series, traces, folds, edges, power, quiet)
            log.append(
                f"{values}, {edge_name} hazard buckets, noise power {power}, {quiet} quiet tables: "
                f"inner-fold score {score:.4f}"
            )
            scored.append((score, dataclasses.replace(params, **zero_hazard(edges, power)), quiet, traces))
    # The best score, or the earliest-declaring grid point within 1 % of it (smallest min_units, then
    # level_tolerance, then min_change_rel, then fewer buckets, then the smaller noise power, then separate
    # quiet tables): an earlier declaration is worth something the score does not see, and fewer buckets
    # are simpler.
    top = min(item[0] for item in scored)
    near = [item for item in scored if item[0] <= top * (1.0 + TIE_TOLERANCE)]
    best = min(
        near,
        key=lambda item: (
            item[1].min_units,
            item[1].level_tolerance,
            item[1].min_change_rel,
            len(item[1].hazard_edges),
            item[1].hazard_noise_power,
            QUIET_TABLES.index(item[2]),
        ),
    )
    chosen, quiet, traces = best[1], best[2], best[3]
    log.append(f"\nChosen: {quiet} quiet tables. Inner folds at the chosen grid point, per class of run:")
    for q, mix in itertools.product(QUIET_TABLES, MIXES):
        score, applied = inner_folds(
            series, traces, folds, chosen.hazard_edges, chosen.hazard_noise_power, q, mix
        )
        log.append(f"\n{q} quiet tables, {mix} source mix: inner-fold score {score:.4f}\n")
        log.append(condition_table(series, applied, per_group=False))
    table = fit_hazard(series, traces, chosen.hazard_edges, chosen.hazard_noise_power, quiet)
    return dataclasses.replace(chosen, **table), log


# --------------------------------------------------------------------------------------- summaries


def _pct(values: list[float], q: float | None) -> str:
    if not values:
        return "n/a"
    arr = np.asarray(values, dtype=float)
    return f"{float(np.max(arr) if q is None else np.percentile(arr, q)):.2f}%"


def summarise(name: str, series: list[Series], traces: list[Trace]) -> dict[str, str]:
    decl_k, decl_ape, decl_cover, decl_width, width_50 = [], [], [], [], []
    at_frac: dict[float, list[float]] = {f: [] for f in FRACTIONS}
    hits = count = 0
    for s, tr in zip(series, traces, strict=True):
        t = s.total_j
        n = tr.total_j.size
        ape = np.abs(tr.total_j - t) / t * 100.0
        has_interval = not np.isnan(tr.low_j).all()
        inside = (tr.low_j <= t * (1 + 1e-9)) & (tr.high_j >= t * (1 - 1e-9))
        width = (tr.high_j - tr.low_j) / t * 100.0
        for f in FRACTIONS:
            k = max(1, math.ceil(f * n)) - 1
            if not np.isnan(ape[k]):
                at_frac[f].append(float(ape[k]))
            if f == 0.5 and has_interval:
                width_50.append(float(width[k]))
        if tr.declared is not None:
            k = tr.declared - 1
            decl_k.append(tr.declared)
            decl_ape.append(float(ape[k]))
            if has_interval:
                decl_cover.append(bool(inside[k]))
                decl_width.append(float(width[k]))
                hits += int(inside[k:].sum())
                count += n - k
    never = 1.0 - len(decl_k) / len(series)
    row = {
        "method": name,
        "declared at (median)": f"{np.median(decl_k):.0f}" if decl_k else "n/a",
        "APE at decl. median / P90 / max": " / ".join(
            [_pct(decl_ape, 50), _pct(decl_ape, 90), _pct(decl_ape, None)]
        ),
    }
    for f in FRACTIONS:
        row[f"APE at {f:.0%} median / P90"] = f"{_pct(at_frac[f], 50)} / {_pct(at_frac[f], 90)}"
    row["coverage at decl."] = f"{np.mean(decl_cover):.0%}" if decl_cover else "—"
    row["coverage after decl."] = f"{hits / count:.1%}" if count else "—"
    row["median width at decl. / 50 %"] = (
        f"{_pct(decl_width, 50)} / {_pct(width_50, 50)}" if decl_width else "—"
    )
    row["never declared"] = f"{never:.0%}"
    return row


# Kinds whose energy per epoch changes regime during the run (the truth, for the report only); the others
# are steady once warmed up. GAISSA runs are reported as their own class.
CHANGING_KINDS = (
    "lr_schedule",
    "progressive_resizing",
    "unfreezing",
    "throttling",
    "thermal_drift",
    "late_step",
)


def _condition_row(label: str, series: list[Series], traces: list[Trace]) -> str:
    decl_cover, decl_width, width_50 = [], [], []
    hits = count = 0
    for s, tr in zip(series, traces, strict=True):
        t = s.total_j
        inside = (tr.low_j <= t * (1 + 1e-9)) & (tr.high_j >= t * (1 - 1e-9))
        width = (tr.high_j - tr.low_j) / t * 100.0
        width_50.append(float(width[max(1, math.ceil(0.5 * width.size)) - 1]))
        if tr.declared is not None:
            k = tr.declared - 1
            decl_cover.append(bool(inside[k]))
            decl_width.append(float(width[k]))
            hits += int(inside[k:].sum())
            count += inside.size - k
    cover = f"{np.mean(decl_cover):.0%}" if decl_cover else "—"
    after = f"{hits / count:.1%}" if count else "—"
    return f"| {label} | {len(series)} | {cover} | {_pct(decl_width, 50)} | {after} | {_pct(width_50, 50)} |"


def condition_table(series: list[Series], traces: list[Trace], per_group: bool = True) -> str:
    """Coverage and median width per class of run (steady vs changing, by the truth) and per interval
    group as the projector sees it (every update)."""
    lines = [
        "| runs | n | coverage at decl. | median width at decl. | coverage after decl. "
        "| median width at 50 % |",
        "|---|---|---|---|---|---|",
    ]
    classes = {
        "steady (synthetic kinds without a regime change)": lambda s: (
            s.source == "synthetic" and s.kind not in CHANGING_KINDS
        ),
        "changing (" + ", ".join(CHANGING_KINDS) + ")": lambda s: s.kind in CHANGING_KINDS,
        "GAISSA (real)": lambda s: s.source == "gaissa",
        "MLPerf Training (real, H100 servers; never tuned on)": lambda s: s.source == "mlperf",
    }
    for label, keep in classes.items():
        idx = [i for i, s in enumerate(series) if keep(s)]
        if idx:
            lines.append(_condition_row(label, [series[i] for i in idx], [traces[i] for i in idx]))
    if not per_group:
        return "\n".join(lines)
    lines += [
        "",
        "| interval group (as the projector sees the run) | updates | coverage | median width |",
        "|---|---|---|---|",
    ]
    for group in INTERVAL_GROUPS:
        inside: list[bool] = []
        widths: list[float] = []
        for s, tr in zip(series, traces, strict=True):
            assert tr.group is not None
            mask = tr.group == group
            t = s.total_j
            inside += list((tr.low_j[mask] <= t * (1 + 1e-9)) & (tr.high_j[mask] >= t * (1 - 1e-9)))
            widths += list((tr.high_j[mask] - tr.low_j[mask]) / t * 100.0)
        if inside:
            lines.append(f"| {group} | {len(inside)} | {np.mean(inside):.1%} | {_pct(widths, 50)} |")
    return "\n".join(lines)


def markdown(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines)


def per_kind_table(series: list[Series], traces: list[Trace], by: str = "kind") -> str:
    """One row per ``kind`` (or per ``group``: ``by="group"``)."""
    rows = []
    for key in dict.fromkeys(getattr(s, by) for s in series):
        idx = [i for i, s in enumerate(series) if getattr(s, by) == key]
        row = summarise(key, [series[i] for i in idx], [traces[i] for i in idx])
        rows.append({(by if k == "method" else k): v for k, v in row.items()})
    return markdown(rows)


def time_updates(n: int = 10_000) -> float:
    """Mean milliseconds of one update() over the last 1,000 of ``n`` updates of a noisy series."""
    rng = np.random.default_rng(0)
    step = StepProjector()
    x = 1000.0 * (1.0 + 0.01 * rng.standard_normal(n))
    for e in x[: n - 1000]:
        step.update(float(e), 1.0, 2.0 * n)
    started = time.perf_counter()
    for e in x[n - 1000 :]:
        step.update(float(e), 1.0, 2.0 * n)
    return (time.perf_counter() - started) / 1000 * 1e3


# --------------------------------------------------------------------------------------- plots


def plot_runs(title: str, series: list[Series], results: dict[str, list[Trace]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(series), 2)
    fig, axes = plt.subplots(1, cols, figsize=(5.2 * cols, 3.3), squeeze=False)
    for ax, i in zip(axes.flat, range(len(series)), strict=False):
        tr, truth = results["StepProjector"][i], series[i].total_j
        k = np.arange(1, tr.total_j.size + 1)
        ax.fill_between(k, tr.low_j / truth, tr.high_j / truth, alpha=0.25, label="90 % interval")
        ax.plot(k, tr.total_j / truth, label="StepProjector")
        ax.plot(k, results["STEP-E (s=10, w=5)"][i].total_j / truth, "--", label="STEP-E")
        if tr.declared:
            ax.axvline(tr.declared, color="k", lw=0.8, label="first declaration")
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_ylim(0.7, 1.3)
        ax.set_title(series[i].name, fontsize=9)
        ax.set_xlabel("epochs seen")
        ax.set_ylabel("projected / true total")
        ax2 = ax.twinx()
        ax2.plot(k, series[i].energy_j / series[i].work, color="grey", lw=0.6, alpha=0.6)
        ax2.set_yticks([])
    axes.flat[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def plots(series: list[Series], results: dict[str, list[Trace]]) -> list[str]:
    IMG.mkdir(parents=True, exist_ok=True)
    names = []
    for kind in dict.fromkeys(s.kind for s in series):
        idx = [i for i, s in enumerate(series) if s.kind == kind][:2]
        sub = {m: [results[m][i] for i in idx] for m in results}
        name = f"step_{kind}.png"
        title = f"{kind} (reporting runs; grey: energy per epoch)"
        plot_runs(title, [series[i] for i in idx], sub, IMG / name)
        names.append(name)
    return names


def write_docs(section: str) -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def params_literal(params: StepParams) -> str:
    fields = [f"    {f.name}={getattr(params, f.name)!r}," for f in dataclasses.fields(params)]
    return "StepParams(\n" + "\n".join(fields) + "\n)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the tuning; report the shipped defaults")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/ (tables only)")
    args = parser.parse_args()
    started = time.perf_counter()
    synth_tune, synth_report = step_scenarios.split()
    tuning = [from_scenario(s) for s in synth_tune]
    reporting_synth = [from_scenario(s) for s in synth_report]
    reporting_gaissa: list[Series] = []
    if gaissa_traces.available():
        g_tune, g_report = gaissa_traces.split(gaissa_traces.load_runs())
        tuning += [from_gaissa(r) for r in g_tune]
        reporting_gaissa = [from_gaissa(r) for r in g_report]
    else:
        print(f"GAISSA data not found in {gaissa_traces.data_dir()}: synthetic scenarios only")
    shipped = StepParams()
    lines = []
    if not args.quick:
        chosen, log = tune(tuning)
        print("Grid (tuning part, nested inner folds):\n" + "\n".join(log))
        same = chosen == shipped
        print(f"\nChosen on the tuning part:\n{params_literal(chosen)}")
        print("shipped StepParams() defaults " + ("EQUAL" if same else "DIFFER FROM") + " the chosen values")
        lines.append(
            "Shipped `StepParams()` defaults "
            + ("equal" if same else "**differ from**")
            + " the values this run chose on the tuning part."
        )
    sections = []
    all_series: list[Series] = []
    all_results: dict[str, list[Trace]] = {m: [] for m in METHODS}
    # MLPerf energy series: every run reports (STEP's constants never saw them); the evaluations are the units
    reporting_mlperf = [from_mlperf(s) for s in stop_data.load_mlperf_energy()]
    for label, part in (
        ("GAISSA reporting groups", reporting_gaissa),
        ("Synthetic reporting runs", reporting_synth),
        ("MLPerf Training energy series, units = evaluations (never used for tuning)", reporting_mlperf),
    ):
        if not part:
            continue
        results = {m: [method(s) for s in part] for m, method in METHODS.items()}
        rows = [summarise(m, part, traces) for m, traces in results.items()]
        groups = sorted({s.group for s in part})
        sections.append(f"### {label} ({len(part)} runs; groups: {', '.join(groups)})\n\n{markdown(rows)}")
        if part is reporting_synth:
            sections.append(
                f"#### StepProjector per synthetic kind\n\n{per_kind_table(part, results['StepProjector'])}"
            )
        if part is reporting_mlperf:
            table = per_kind_table(part, results["StepProjector"], by="group")
            sections.append(f"#### StepProjector per MLPerf benchmark\n\n{table}")
        all_series += part
        for m in METHODS:
            all_results[m] += results[m]
    if all_series:
        sections.append(
            "#### StepProjector interval per class of run (reporting part)\n\n"
            + condition_table(all_series, all_results["StepProjector"])
        )
    in_sample = []
    for source in ("gaissa", "synthetic"):
        part = [s for s in tuning if s.source == source]
        if part:
            row = summarise(f"StepProjector, {source} tuning part", part, [run_step(s) for s in part])
            in_sample.append(row)
    sections.append(
        "### In-sample, for comparison only: the tuning part (the constants were chosen on it)\n\n"
        + markdown(in_sample)
    )
    per_update_ms = time_updates()
    lines.append(f"update() at 10,000 updates: {per_update_ms:.2f} ms per update (this machine).")
    section = "\n\n".join(sections) + "\n\n" + "\n".join(f"* {line}" for line in lines) + "\n"
    print(section)
    if not args.no_docs:
        names = plots(all_series, all_results)
        section += "\n" + "\n".join(f"![{n}](img/{n})" for n in names) + "\n"
        write_docs(section)
        print(f"wrote {DOC.relative_to(ROOT)} and {len(names)} plots in docs/img/")
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
