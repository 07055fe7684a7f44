"""Turn the folder a GPU visit brought back into the tables of docs/validation.md.

    python benchmarks/gpu/summarise.py RESULTS_DIR [...] [--markdown FILE] [--copy-traces tests/data/traces]

RESULTS_DIR is what ``visit.py`` wrote (``nvml_check.json``, ``summary.json``, traces), or a folder holding
several of those (two levels at most). Tables: the GPU and NVML (latency, update periods, the burst
integrated three ways, the ``CUDA_VISIBLE_DEVICES`` mapping), energy counter vs power sampling per
workload, callback overhead, STEP at each epoch vs the measured total, PRE vs measured on this GPU, and
what the visit did not do (skipped for time, failed, cut short).

``--copy-traces DIR`` copies every complete trace into DIR as ``<gpu>_<workload>.json`` (the GPU name in the
file name and in ``meta.gpu_name``); dry-run traces are refused unless ``--allow-dry-run`` (tests only).
Needs numpy and scipy (STEP and PRE), not torch.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analysis import counter_vs_sampling, gap_pct, markdown_table, trace_epochs

from lightning_energy.meters import Trace, load_trace, write_trace
from lightning_energy.meters.trace import TRACE_FORMAT

CHECK_FORMAT = "lightning_energy.nvml_check"
VISIT_FORMAT = "lightning_energy.gpu_visit"
STEADY_EXCLUDES = ("frozen_backbone_until_epoch",)  # meta keys of workloads with a planned regime change


@dataclass
class Results:
    checks: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    traces: dict[str, tuple[Path, Trace]] = field(default_factory=dict)  # workload -> trace


def load_results(folders: Sequence[Path]) -> Results:
    """Every check, summary and trace JSON in ``folders`` (and their sub-folders, two levels)."""
    results = Results()
    files: list[Path] = []
    for folder in folders:
        if folder.is_file():
            files.append(folder)
        else:
            files += sorted([*folder.glob("*.json"), *folder.glob("*/*.json"), *folder.glob("*/*/*.json")])
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            print(f"skipped {path}: {err}", file=sys.stderr)
            continue
        kind = data.get("format") if isinstance(data, dict) else None
        if kind == CHECK_FORMAT:
            results.checks.append(data)
        elif kind == VISIT_FORMAT:
            results.summaries.append(data)
        elif kind == TRACE_FORMAT:
            trace = load_trace(path)
            name = str(trace.meta.get("workload") or path.stem)
            results.traces[name] = (path, trace)
    return results


def gpu_name(trace: Trace) -> str:
    gpus = trace.hardware.get("gpus") or [{}]
    return str(gpus[0].get("name") or trace.meta.get("gpu_name") or "unknown GPU")


def is_steady(trace: Trace) -> bool:
    return not any(key in trace.meta for key in STEADY_EXCLUDES)


# ------------------------------------------------------------------------------------------------ NVML
def nvml_tables(check: dict[str, Any]) -> str:
    """The NVML check as Markdown (also printed by nvml_check.py)."""
    gpu, system = check.get("gpu", {}), check.get("system", {})
    parts = ["### GPU and NVML\n"]
    parts.append(
        markdown_table(
            [
                "GPU",
                "UUID",
                "CUDA index",
                "NVML index",
                "driver",
                "NVML",
                "CUDA driver",
                "compute cap.",
                "power limit W",
                "counter",
                "instant field",
            ],
            [
                [
                    gpu.get("name"),
                    gpu.get("uuid"),
                    gpu.get("cuda_index"),
                    gpu.get("nvml_index"),
                    system.get("driver"),
                    system.get("nvml_version"),
                    system.get("cuda_driver_version"),
                    gpu.get("compute_capability"),
                    gpu.get("power_limit_w"),
                    gpu.get("energy_counter"),
                    gpu.get("instant_power_field"),
                ]
            ],
        )
    )
    if check.get("dry_run"):
        parts.append("\n**Dry run (CPU, fake or idle NVML): not a measurement.**")
    latency = check.get("latency_us") or {}
    if latency:
        parts.append("\n### NVML read latency (µs)\n")
        rows = [[name, v["median_us"], v["p99_us"], v["calls"]] for name, v in latency.items()]
        parts.append(markdown_table(["call", "median µs", "P99 µs", "calls"], rows))
    burst = check.get("burst") or {}
    if burst:
        parts.append("\n### Update period under load (median interval between changes, 1 s tight poll)\n")
        periods = burst.get("update_period_ms") or {}
        rows = [[k, v, None if not v else 1000.0 / v] for k, v in periods.items()]
        parts.append(markdown_table(["reading", "update period ms", "updates/s"], rows))
        parts.append(f"\n### A {burst['burst_s']:g} s burst integrated three ways\n")
        rows = [
            [
                name,
                w["seconds"],
                w["mean_power_w"],
                w["counter_j"],
                w["power_usage_j"],
                w["power_usage_gap_pct"],
                w["instant_j"],
                w["instant_gap_pct"],
            ]
            for name, w in burst["windows"].items()
        ]
        parts.append(
            markdown_table(
                ["window", "s", "mean W", "counter J", "PowerUsage J", "gap %", "instant J", "gap %"], rows
            )
        )
        if burst.get("poller_error"):
            parts.append(f"\npoller error: {burst['poller_error']}")
    mapping = check.get("mapping") or []
    if mapping:
        parts.append("\n### CUDA_VISIBLE_DEVICES mapping (child process, NvmlMeter([0]))\n")
        rows = [
            [m["cuda_visible_devices"], m.get("nvml_uuid"), m.get("torch_uuid"), m["ok"], m.get("error")]
            for m in mapping
        ]
        parts.append(markdown_table(["CUDA_VISIBLE_DEVICES", "NVML UUID", "torch UUID", "ok", "error"], rows))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- traces
def sampling_table(results: Results) -> str:
    rows = []
    for name, (_, trace) in results.traces.items():
        per_epoch = counter_vs_sampling(trace)
        gaps = [abs(float(r["gap_pct"])) for r in per_epoch if r["gap_pct"] is not None]
        first = per_epoch[0]["gap_pct"] if per_epoch else None
        rows.append(
            [
                name,
                len(per_epoch),
                sum(float(r["counter_j"] or 0.0) for r in per_epoch),
                statistics.mean(gaps) if gaps else None,
                max(gaps) if gaps else None,
                first,
            ]
        )
    return markdown_table(
        ["workload", "epochs", "counter J", "mean \\|gap\\| %", "max \\|gap\\| %", "epoch-0 gap %"], rows
    )


def overhead_stages(results: Results) -> list[dict[str, Any]]:
    """The overhead stages of every visit summary."""
    return [
        stage
        for summary in results.summaries
        for stage in summary.get("stages", {}).values()
        if stage.get("kind") == "overhead"
    ]


def overhead_table(results: Results) -> str:
    """Per workload: epochs' wall time without / with the callback, the overhead, the run-to-run noise (spread
    of the runs without the callback: an overhead below it is not resolved) and the one-off seconds."""
    rows: list[list[object]] = []
    for stage in overhead_stages(results):
        row = stage.get("overhead")
        if stage.get("status") != "measured" or not row:
            rows.append([stage["workload"], *([None] * 7), stage.get("status")])
        else:
            epochs_with = sum(r["epochs_s"] for r in row["runs"] if r["callback"])
            without = [r["epochs_s"] for r in row["runs"] if not r["callback"]]
            epochs_without = sum(without)
            noise_pct = 100.0 * (max(without) - min(without)) / statistics.mean(without)
            rows.append(
                [
                    row["workload"],
                    f"{row['epochs']} x {row['steps_per_epoch']}",
                    epochs_without,
                    epochs_with,
                    100.0 * (row["epochs_ratio"] - 1.0),
                    noise_pct,
                    100.0 * (row["fit_ratio"] - 1.0),
                    row.get("one_off_s"),
                    f"{len(row['runs'])} runs",
                ]
            )
    headers = ["workload", "epochs x steps", "epochs without s", "epochs with s", "per-epoch overhead %",
               "noise %", "whole-fit overhead %", "one-off s", "note"]  # fmt: skip
    return markdown_table(headers, rows)


@dataclass(frozen=True)
class StepReplay:
    """STEP fed a trace's epochs one by one, as the callback does; errors against the measured total."""

    workload: str
    total_j: float
    errors_pct: list[float]  # projection after each epoch vs the measured total
    stable: list[bool]

    @property
    def first_stable(self) -> int | None:
        return next((i for i, s in enumerate(self.stable) if s), None)

    @property
    def worst_after_stable_pct(self) -> float | None:
        first = self.first_stable
        return None if first is None else max(abs(e) for e in self.errors_pct[first:])


def step_replay(name: str, trace: Trace) -> StepReplay:
    from lightning_energy.step import StepProjector

    epochs = trace_epochs(trace)
    total_j = sum(e.energy_j for e in epochs)
    projector = StepProjector()
    errors, stable = [], []
    for epoch in epochs:
        projection = projector.update(epoch.energy_j, epoch.seconds, total_epochs=len(epochs))
        errors.append(gap_pct(projection.total_j, total_j) or 0.0)
        stable.append(projection.stable)
    return StepReplay(name, total_j, errors, stable)


def step_tables(results: Results) -> str:
    from lightning_energy.step import StepParams
    from lightning_energy.step.analysis import needed_units

    replays = [step_replay(name, trace) for name, (_, trace) in results.traces.items()]
    summary = markdown_table(
        [
            "workload",
            "steady",
            "epochs",
            "measured J",
            "may declare from epoch",
            "first stable epoch",
            "error then %",
            "max \\|error\\| after %",
        ],
        [
            [
                r.workload,
                is_steady(results.traces[r.workload][1]),
                len(r.errors_pct),
                r.total_j,
                needed_units(StepParams(), len(r.errors_pct)) - 1,  # counted from 0, like the epochs
                r.first_stable,
                None if r.first_stable is None else r.errors_pct[r.first_stable],
                r.worst_after_stable_pct,
            ]
            for r in replays
        ],
    )
    longest = max((len(r.errors_pct) for r in replays), default=0)
    rows = []
    for i in range(longest):
        cells: list[object] = [i]
        for r in replays:
            if i >= len(r.errors_pct):
                cells.append("")
            else:
                cells.append(f"{r.errors_pct[i]:+.2f}{' *' if r.stable[i] else ''}")
        rows.append(cells)
    per_epoch = markdown_table(["epoch", *[r.workload for r in replays]], rows)
    legend = "Projection error (%) after each epoch; `*`: STEP declared the run stable."
    return f"{summary}\n\n{legend}\n\n{per_epoch}"


@dataclass(frozen=True)
class MeasuredRun:
    """One recorded workload as PRE sees it: its descriptor and the measured GPU energy and time."""

    workload: str
    descriptor: Any  # lightning_energy.pre.RunDescriptor (imported lazily)
    epochs: int
    gpu_j: float
    seconds: float
    pre: dict[str, Any]


def measured_runs(results: Results) -> tuple[list[MeasuredRun], dict[str, str]]:
    """Workloads whose trace holds a PRE descriptor; the others with the reason."""
    from lightning_energy.pre import RunDescriptor

    runs, skipped = [], {}
    for name, (_, trace) in results.traces.items():
        epochs = trace_epochs(trace)
        pre = dict(trace.meta.get("pre") or {})
        gpu_j, seconds = sum(e.gpu_j for e in epochs), sum(e.seconds for e in epochs)
        if not epochs or "descriptor" not in pre or gpu_j <= 0 or seconds <= 0:
            skipped[name] = str(pre.get("skipped") or "no PRE descriptor or no measured GPU energy")
            continue
        descriptor = RunDescriptor.from_dict(pre["descriptor"])
        runs.append(MeasuredRun(name, descriptor, len(epochs), gpu_j, seconds, pre))
    return runs, skipped


def calibrated_elsewhere_j(runs: Sequence[MeasuredRun]) -> dict[str, float]:
    """PRE for each workload after calibrating on the *other* workloads' runs (leave one workload out),
    through the run history the callback keeps: the figure a user gets on this GPU after a few runs."""
    from lightning_energy.pre import PreEstimator, RunHistory

    estimates: dict[str, float] = {}
    if len(runs) < 2:
        return estimates
    with tempfile.TemporaryDirectory(prefix="le-pre-") as folder:
        for held_out in runs:
            history = RunHistory(Path(folder) / f"{slug(held_out.workload)}.sqlite")
            for run in runs:
                if run is not held_out:
                    history.append(
                        run.descriptor,
                        epoch_energy_j=run.gpu_j / run.epochs,
                        power_w=run.gpu_j / run.seconds,
                        epoch_seconds=run.seconds / run.epochs,
                        epochs=run.epochs,
                    )
            estimator = PreEstimator.default().calibrated(history)
            estimates[held_out.workload] = (
                estimator.predict(held_out.descriptor).epoch_energy_j * held_out.epochs
            )
    return estimates


def pre_table(results: Results) -> str:
    """PRE vs the measured GPU energy of each whole recording (out of sample: PRE never saw these runs)."""
    from lightning_energy.pre import PreEstimator

    estimator = PreEstimator.default()
    runs, skipped = measured_runs(results)
    elsewhere = calibrated_elsewhere_j(runs)
    rows: list[list[object]] = [[name, *([None] * 8), reason] for name, reason in skipped.items()]
    for run in runs:
        now = estimator.predict(run.descriptor)
        at_record = float(run.pre.get("total_j") or 0.0) / max(1, int(run.pre.get("total_epochs") or 1))
        calibrated = elsewhere.get(run.workload)
        rows.append(
            [
                run.workload,
                at_record * run.epochs,
                now.epoch_energy_j * run.epochs,
                run.gpu_j,
                gap_pct(now.epoch_energy_j * run.epochs, run.gpu_j),
                now.low_j * run.epochs <= run.gpu_j <= now.high_j * run.epochs,
                gap_pct(calibrated, run.gpu_j),
                now.power_w,
                run.gpu_j / run.seconds,
                None,
            ]
        )
    headers = ["workload", "PRE at record J", "PRE now J", "measured GPU J", "PRE now error %",
               "in 90% interval", "calibrated on others error %", "PRE W", "measured W", "note"]  # fmt: skip
    return markdown_table(headers, rows)


DONE = ("done", "recorded", "measured")


def status_lines(results: Results) -> str:
    """One line per stage a visit did not finish: skipped for time, failed, cut short, or never reached."""
    lines = []
    for summary in results.summaries:
        if not summary.get("finished"):
            lines.append(f"* the visit did not finish (cut after {summary.get('elapsed_s', 0):.0f} s)")
        for name, stage in summary.get("stages", {}).items():
            if stage.get("status") not in DONE:
                lines.append(f"* {name}: {stage.get('status')} {stage.get('error') or ''}".rstrip())
    return "\n".join(lines)


def render(results: Results) -> str:
    parts = []
    for check in results.checks:
        parts.append(nvml_tables(check))
    if results.traces:
        names = sorted({gpu_name(t) for _, t in results.traces.values()})
        dry = any(t.meta.get("dry_run") for _, t in results.traces.values())
        parts.append(
            f"### Recorded workloads on {', '.join(names)}" + (" (DRY RUN, not a measurement)" if dry else "")
        )
        parts.append("#### Energy counter vs power sampling (per epoch, gpu0)\n\n" + sampling_table(results))
        parts.append("#### STEP at each epoch vs the measured total\n\n" + step_tables(results))
        parts.append(
            "#### PRE vs measured on this GPU (whole recorded run, GPU only)\n\n" + pre_table(results)
        )
    if overhead_stages(results):
        parts.append(
            "#### Callback overhead (wall time with / without, ABBA order)\n\n" + overhead_table(results)
        )
    problems = status_lines(results)
    if problems:
        parts.append("#### Not done\n\n" + problems)
    return "\n\n".join(parts) + "\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


def copy_traces(results: Results, dest: Path, *, allow_dry_run: bool = False) -> list[Path]:
    """Copy complete traces to ``dest/<gpu>_<workload>.json``, with ``meta.gpu_name``."""
    written: list[Path] = []
    for name, (path, trace) in results.traces.items():
        if not trace.meta.get("complete"):
            print(f"not copied {path}: incomplete recording", file=sys.stderr)
            continue
        if trace.meta.get("dry_run") and not allow_dry_run:
            print(f"not copied {path}: a dry run, not a measurement", file=sys.stderr)
            continue
        trace.meta.setdefault("gpu_name", gpu_name(trace))
        written.append(write_trace(trace, dest / f"{slug(gpu_name(trace))}_{slug(name)}.json"))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, nargs="+", help="folders (or files) the visit wrote")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--copy-traces", type=Path, help="copy complete traces here as <gpu>_<workload>.json")
    parser.add_argument("--allow-dry-run", action="store_true", help="copy dry-run traces too (tests only)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.results if not p.exists()]
    if missing:
        parser.error(f"results: not found: {', '.join(missing)}")
    results = load_results(args.results)
    if not (results.checks or results.summaries or results.traces):
        parser.error("results: no nvml_check.json, summary.json or trace found")
    text = render(results)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    if args.copy_traces:
        for path in copy_traces(results, args.copy_traces, allow_dry_run=args.allow_dry_run):
            print(f"copied {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
