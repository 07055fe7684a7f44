"""The hazard table of the STEP interval and its nested selection (``tune``), for
``benchmarks/step_accuracy.py``: per (interval group, remaining-fraction bucket, side) half-widths fitted on
zero-hazard traces (``fit_hazard``), applied to a trace (``apply_hazard``) and scored on inner folds of
tuning groups (``inner_folds``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
from step_methods import Series, Trace, run_step
from step_tables import condition_table

from lightning_energy.step import StepParams
from lightning_energy.step.params import INTERVAL_GROUPS, hazard_bucket, hazard_scale

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
