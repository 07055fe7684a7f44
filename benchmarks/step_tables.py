"""The figures and Markdown tables of ``benchmarks/step_accuracy.py``: a method's summary over runs
(``summarise``), coverage and width per class of run and per interval group (``condition_table``), and the
cost of one ``StepProjector.update`` (``time_updates``).
"""

from __future__ import annotations

import math
import time

import numpy as np
from step_methods import Series, Trace

from lightning_energy.step import StepProjector
from lightning_energy.step.params import INTERVAL_GROUPS

FRACTIONS = (0.10, 0.25, 0.50)


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
