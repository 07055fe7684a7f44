"""Accuracy of the STEP projector against simple baselines, on the GAISSA traces and on synthetic series.

Protocol (the data's README): each of the 309 GPU power traces is cut into ``trained_epochs`` equal-time
pseudo-epochs; their energies are fed in order to every method with the true number of epochs, and each
projection is compared with the sum of all pseudo-epochs (absolute percentage error, APE).

Methods: ``StepProjector`` (defaults), carbontracker (N x first epoch, fixed after epoch 1), gpyjoules
(epoch 0 as warm-up, running mean of the rest, from epoch 5) and the paper's STEP-E (stable from epoch
s=10, projection = measured + (N - seen) x mean of the last w=5 epochs, from epoch 15).

Run: ``.venv/bin/python benchmarks/step_accuracy.py [--no-docs] [--every K]``. It prints Markdown tables,
saves ``docs/img/step_*.png`` and rewrites the marked section of ``docs/step.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gaissa_traces

from lightning_energy.step import StepProjector

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "step.md"
IMG = ROOT / "docs" / "img"
BEGIN = "<!-- BEGIN step_accuracy -->"
END = "<!-- END step_accuracy -->"
FRACTIONS = (0.10, 0.25, 0.50)


@dataclass
class Trace:
    """Per-epoch output of one method on one series (index k-1 = after k epochs); NaN = no projection."""

    total_j: np.ndarray
    low_j: np.ndarray
    high_j: np.ndarray
    declared: int | None  # epochs seen at the first stable declaration


Method = Callable[[np.ndarray, int | None], Trace]


def _no_interval(total: np.ndarray, declared: int | None) -> Trace:
    nan = np.full_like(total, np.nan)
    return Trace(total, nan, nan, declared)


def run_step(x: np.ndarray, val_every: int | None = None) -> Trace:
    step = StepProjector(val_every_n_epochs=val_every)
    n = x.size
    out = np.empty((3, n))
    declared = None
    for k, e in enumerate(x):
        p = step.update(float(e), 1.0, n)
        out[:, k] = (p.total_j, p.low_j, p.high_j)
        if p.stable and declared is None:
            declared = k + 1
    return Trace(out[0], out[1], out[2], declared)


def run_carbontracker(x: np.ndarray, val_every: int | None = None) -> Trace:
    return _no_interval(np.full(x.size, x.size * x[0]), 1)


def run_gpyjoules(x: np.ndarray, val_every: int | None = None) -> Trace:
    n = x.size
    total = np.full(n, np.nan)
    csum = np.cumsum(x)
    for k in range(2, n + 1):
        total[k - 1] = csum[k - 1] + (n - k) * (csum[k - 1] - x[0]) / (k - 1)
    total[:4] = np.nan  # available from epoch 5, as in the reference figures
    return _no_interval(total, 5 if n >= 5 else None)


def run_step_e(x: np.ndarray, val_every: int | None = None, s: int = 10, w: int = 5) -> Trace:
    n = x.size
    total = np.full(n, np.nan)
    csum = np.cumsum(x)
    for k in range(s + w, n + 1):
        total[k - 1] = csum[k - 1] + (n - k) * x[k - w : k].mean()
    return _no_interval(total, s + w if n >= s + w else None)


METHODS: dict[str, Method] = {
    "StepProjector": run_step,
    "carbontracker (N x epoch 0)": run_carbontracker,
    "warm-up + running mean (gpyjoules)": run_gpyjoules,
    "paper STEP-E (s=10, w=5)": run_step_e,
}


def _ape(total: np.ndarray, true_j: float) -> np.ndarray:
    return np.abs(total - true_j) / true_j * 100.0


def _fmt(values: list[float], q: float | None) -> str:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0 or np.isnan(arr).any():
        return "n/a"
    v = float(np.max(arr) if q is None else np.percentile(arr, q))
    return f"{v:.2f}%"


def summarise(name: str, traces: list[Trace], truths: list[float]) -> dict[str, str]:
    at_decl, decl_epochs, cover_hits, cover_n = [], [], 0, 0
    at_frac: dict[float, list[float]] = {f: [] for f in FRACTIONS}
    for tr, true_j in zip(traces, truths, strict=True):
        n = tr.total_j.size
        ape = _ape(tr.total_j, true_j)
        if tr.declared is not None:
            decl_epochs.append(tr.declared)
            at_decl.append(float(ape[tr.declared - 1]))
            after = slice(tr.declared - 1, n)
            if not np.isnan(tr.low_j[after]).all():
                inside = (tr.low_j[after] <= true_j * (1 + 1e-9)) & (tr.high_j[after] >= true_j * (1 - 1e-9))
                cover_hits += int(inside.sum())
                cover_n += inside.size
        for f in FRACTIONS:
            at_frac[f].append(float(ape[max(1, math.ceil(f * n)) - 1]))
    row = {
        "method": name,
        "declared at epoch (median)": f"{np.median(decl_epochs):.0f}" if decl_epochs else "n/a",
        "APE at declaration median / P90 / max": " / ".join(
            [_fmt(at_decl, 50), _fmt(at_decl, 90), _fmt(at_decl, None)]
        ),
    }
    for f in FRACTIONS:
        row[f"APE at {f:.0%} median / P90"] = f"{_fmt(at_frac[f], 50)} / {_fmt(at_frac[f], 90)}"
    row["interval coverage after declaration"] = f"{cover_hits / cover_n:.1%}" if cover_n else "—"
    return row


def markdown(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines)


def epoch_curves(traces: list[Trace], truths: list[float], max_k: int) -> np.ndarray:
    """(3, max_k) median / P90 / max APE over the runs at each number of epochs seen (NaN ignored)."""
    ape = np.full((len(traces), max_k), np.nan)
    for i, (tr, t) in enumerate(zip(traces, truths, strict=True)):
        m = min(max_k, tr.total_j.size)
        ape[i, :m] = _ape(tr.total_j[:m], t)
    out = np.full((3, max_k), np.nan)
    for k in range(max_k):
        valid = ape[:, k][~np.isnan(ape[:, k])]
        if valid.size:
            out[:, k] = (np.median(valid), np.percentile(valid, 90), valid.max())
    return out


def compare_with_step_e(ours: list[Trace], step_e: list[Trace], truths: list[float], min_n: int) -> str:
    """Epochs >= 15 (all runs reaching them) at which ours is worse than STEP-E in median, P90 or max."""
    a = epoch_curves(ours, truths, min_n)
    b = epoch_curves(step_e, truths, min_n)
    ks = np.arange(15, min_n + 1)
    worse = {
        name: [int(k) for k in ks if a[i, k - 1] > b[i, k - 1] + 1e-9]
        for i, name in enumerate(["median", "P90", "max"])
    }
    parts = [
        f"{name}: {len(v)} of {ks.size} epochs" + (f" ({v[:8]})" if v else "") for name, v in worse.items()
    ]
    return (
        f"Epochs 15..{min_n} (every run reaches them) where StepProjector's APE statistic over runs exceeds "
        f"STEP-E's: " + "; ".join(parts) + "."
    )


SYNTHETIC_KINDS = (
    "steady",
    "heavy warm-up",
    "plateau then jump",
    "validation every 3",
    "throttling",
    "slow drift",
)


def synthetic_series(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """One synthetic run (per-epoch energy, J) and its validation schedule (or None)."""
    n = int(rng.integers(40, 121))
    e = np.arange(n)
    x = 1000.0 * (1.0 + 0.005 * rng.standard_normal(n))
    val_every = None
    if kind == "heavy warm-up":
        x *= 1.0 + 1.5 * np.exp(-e / 1.5)
    elif kind == "plateau then jump":
        x[: int(rng.integers(5, 30))] *= rng.uniform(0.6, 0.9)
    elif kind == "validation every 3":
        val_every = 3
        x[(e + 1) % 3 == 0] *= 1.4
    elif kind == "throttling":
        x[int(rng.integers(15, n - 10)) :] *= rng.uniform(0.7, 0.9)
    elif kind == "slow drift":
        x *= 1.0 + rng.uniform(-0.002, 0.002) * e
    return x, val_every


def synthetic_table(runs_per_kind: int = 20) -> str:
    rng = np.random.default_rng(2026)
    rows = []
    for kind in SYNTHETIC_KINDS:
        series = [synthetic_series(kind, rng) for _ in range(runs_per_kind)]
        truths = [float(x.sum()) for x, _ in series]
        for name, method in METHODS.items():
            rows.append(summarise(f"{kind}: {name}", [method(x, v) for x, v in series], truths))
        if kind == "validation every 3":
            traces = [run_step(x, None) for x, _ in series]
            rows.append(summarise(f"{kind}: StepProjector, schedule not told", traces, truths))
    keep = ["method", "declared at epoch (median)", "APE at declaration median / P90 / max"]
    keep += [f"APE at {f:.0%} median / P90" for f in FRACTIONS[:2]] + ["interval coverage after declaration"]
    return markdown([{k: r[k] for k in keep} for r in rows])


def plot(runs: list[gaissa_traces.Run], results: dict[str, list[Trace]], truths: list[float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    names = []
    picks = [i for i, r in enumerate(runs) if r.run_id.endswith("/00")][:4]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=False)
    for ax, i in zip(axes.flat, picks, strict=False):
        tr, truth = results["StepProjector"][i], truths[i]
        k = np.arange(1, tr.total_j.size + 1)
        ax.fill_between(k, tr.low_j / truth, tr.high_j / truth, alpha=0.25, label="interval (90%)")
        ax.plot(k, tr.total_j / truth, label="StepProjector")
        ax.plot(k, results["paper STEP-E (s=10, w=5)"][i].total_j / truth, "--", label="STEP-E")
        ax.plot(k, results["warm-up + running mean (gpyjoules)"][i].total_j / truth, ":", label="gpyjoules")
        if tr.declared:
            ax.axvline(tr.declared, color="k", lw=0.8)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_ylim(0.8, 1.2)
        ax.set_title(runs[i].run_id, fontsize=9)
        ax.set_xlabel("epochs seen")
        ax.set_ylabel("projected / true total")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "step_runs.png", dpi=90)
    plt.close(fig)
    names.append("step_runs.png")

    max_k = 60
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, traces in results.items():
        curves = epoch_curves(traces, truths, max_k)
        k = np.arange(1, max_k + 1)
        axes[0].plot(k, curves[0], label=name)
        axes[1].plot(k, curves[1], label=name)
    for ax, title in zip(axes, ["median APE over runs", "P90 APE over runs"], strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("epochs seen")
        ax.set_ylabel("APE of the projected total (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "step_error_vs_epoch.png", dpi=90)
    plt.close(fig)
    names.append("step_error_vs_epoch.png")
    return names


def write_docs(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# STEP\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="use every K-th run (quick look)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/ (table only)")
    args = parser.parse_args()
    if not gaissa_traces.available():
        print(f"GAISSA data not found in {gaissa_traces.data_dir()} (set {gaissa_traces.ENV_VAR})")
        return
    started = time.perf_counter()
    runs = gaissa_traces.load_runs(every=args.every)
    truths = [r.total_j for r in runs]
    results: dict[str, list[Trace]] = {}
    for name, method in METHODS.items():
        results[name] = [method(r.epoch_energy_j, None) for r in runs]
    rows = [summarise(name, traces, truths) for name, traces in results.items()]
    table = markdown(rows)
    min_n = min(r.trained_epochs for r in runs)
    note = compare_with_step_e(results["StepProjector"], results["paper STEP-E (s=10, w=5)"], truths, min_n)
    synth = synthetic_table()
    section = (
        f"### GAISSA traces ({len(runs)} runs, pseudo-epoch protocol)\n\n{table}\n\n{note}\n\n"
        f"### Synthetic series (20 runs per kind, 40 to 120 epochs, 0.5% noise)\n\n{synth}\n"
    )
    print(section)
    if not args.no_docs and args.every == 1:
        names = plot(runs, results, truths)
        section += "\n" + "\n".join(f"![{n}](img/{n})" for n in names) + "\n"
        write_docs(section)
        print(f"wrote {DOC.relative_to(ROOT)} and docs/img/: {', '.join(names)}")
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
