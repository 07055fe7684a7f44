"""PRE's roofline on Lambda's ten workloads x 25 GPUs: nested time errors, regimes, the cheapest GPU, a plot.

Called by ``benchmarks/pre_accuracy.py`` (it prints these tables after the GAISSA ones). Outer folds:

* leave-one-workload-out: the roofline (per-GPU FLOP/s and bandwidth, launch latency, 16-bit bytes factor)
  is refitted without the workload, and the held-out workload is predicted from its descriptor alone (its
  implementation factor is unknown: 0);
* leave-one-GPU-out: refitted without the GPU, which is then predicted by the datasheet fallback (its
  generation's median achieved/datasheet ratios, else all GPUs').

Lambda measures time only; energy rankings use the shipped power model on both sides (predicted and
measured time x the same predicted power), so they test the time ranking weighted by power.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_energy.pre import DataDescriptor, PreEstimator, RunDescriptor, lookup_gpu
from lightning_energy.pre.roofline import workload_descriptor
from tools.build_roofline_table import (
    Fit,
    Observation,
    fallback_speeds,
    fit,
    item_seconds,
    load_workloads,
    observations,
    ratios,
    training_factor,
)


@dataclass(frozen=True)
class Prediction:
    obs: Observation
    seconds: float  # predicted seconds per item
    bandwidth_share: float  # of the predicted GPU time

    @property
    def log_error(self) -> float:
        return math.log(self.seconds / self.obs.seconds_per_item)


def _parts(w: Mapping[str, Any], o: Observation, speeds: Sequence[float], launch: float, r: float) -> float:
    """Share of the predicted time that is bandwidth-bound (beyond the FLOP time)."""
    c = float(w["conv_flop_fraction"])
    flop_s = 3.0 * float(w["forward_flops_per_item"]) * (c / speeds[0] + (1.0 - c) / speeds[1])
    total = item_seconds(w, o.batch, speeds[0], speeds[1], speeds[2], launch, r)
    return max(total - flop_s, 0.0) / total


def _predict(
    fit_: Fit, o: Observation, workloads: Mapping[str, Any], r: float, speeds: Sequence[float]
) -> Prediction:
    w = workloads[o.workload]
    seconds = item_seconds(w, o.batch, speeds[0], speeds[1], speeds[2], fit_.launch_s, r)
    return Prediction(o, seconds, _parts(w, o, speeds, fit_.launch_s, r))


def leave_one_workload_out(
    obs: list[Observation], workloads: Mapping[str, Any], r: float
) -> list[Prediction]:
    out = []
    for name in sorted({o.workload for o in obs}):
        fitted = fit([o for o in obs if o.workload != name], workloads, r)
        for o in obs:
            if o.workload == name and (o.gpu, o.bucket) in fitted.speeds:
                out.append(_predict(fitted, o, workloads, r, fitted.speeds[(o.gpu, o.bucket)]))
    return out


def leave_one_gpu_out(obs: list[Observation], workloads: Mapping[str, Any], r: float) -> list[Prediction]:
    out = []
    for gpu in sorted({o.gpu for o in obs}):
        fitted = fit([o for o in obs if o.gpu != gpu], workloads, r)
        arch = lookup_gpu(gpu).architecture
        for bucket in ("fp32", "fp16"):
            others = sorted({g for g, b in fitted.speeds if b == bucket})
            same = [g for g in others if lookup_gpu(g).architecture == arch]
            rule = ratios(fitted, same or others, bucket)
            if not rule:
                continue
            speeds = fallback_speeds(gpu, bucket, rule)
            for o in obs:
                if o.gpu == gpu and o.bucket == bucket:
                    scaled = o  # the workload's implementation factor is known here (other GPUs ran it)
                    p = _predict(fitted, scaled, workloads, r, speeds)
                    factor = math.exp(fitted.workload_log_factor.get(o.workload, 0.0))
                    out.append(Prediction(o, p.seconds * factor, p.bandwidth_share))
    return out


def _ape(errors: Sequence[float]) -> tuple[float, float]:
    apes = sorted(100.0 * abs(math.expm1(e)) for e in errors)
    p90 = apes[min(len(apes) - 1, math.ceil(0.9 * len(apes)) - 1)]
    return statistics.median(apes), p90


def _relative(preds: Sequence[Prediction]) -> list[float]:
    """Log errors after removing each (workload, precision)'s median error: the error of the GPU-to-GPU
    ratios, which decides rankings (the level of a held-out workload is its descriptor's business)."""
    groups: dict[tuple[str, str], list[Prediction]] = defaultdict(list)
    for p in preds:
        groups[(p.obs.workload, p.obs.bucket)].append(p)
    out = []
    for members in groups.values():
        level = statistics.median(p.log_error for p in members)
        out += [p.log_error - level for p in members]
    return out


def print_time_tables(lowo: list[Prediction], logo: list[Prediction], fit_all: Fit) -> None:
    print("### Time on Lambda's workloads x GPUs (roofline, nested outer folds)\n")
    print(
        "Seconds per item (image, sequence, token, sample, mel frame, audio sample) predicted for a held-out "
        "workload (refitted without it, its descriptor only) and for a held-out GPU (refitted without it, "
        "datasheet fallback). *Absolute*: APE of the time; *GPU-to-GPU*: APE after removing each workload's "
        "median error, i.e. the error of the predicted speed ratios between GPUs, which decides a ranking.\n"
    )
    print(
        "| outer fold | held out | GPU x precision | absolute median / P90 APE % "
        "| GPU-to-GPU median / P90 APE % | predicted bandwidth share (median) |"
    )
    print("|---|---|---|---|---|---|")
    for label, preds, key in (
        ("leave-one-workload-out", lowo, lambda p: p.obs.workload),
        ("leave-one-GPU-out", logo, lambda p: p.obs.gpu),
    ):
        if not preds:
            print(f"| {label} | (skipped: --quick) | | | | |")
            continue
        groups: dict[str, list[Prediction]] = defaultdict(list)
        for p in preds:
            groups[key(p)].append(p)
        relative = dict(zip([id(p) for p in preds], _relative(preds), strict=True))
        for name, members in sorted(groups.items()):
            a = _ape([p.log_error for p in members])
            rel = _ape([relative[id(p)] for p in members])
            share = statistics.median(p.bandwidth_share for p in members)
            print(
                f"| {label} | {name} | {len(members)} | {a[0]:.0f} / {a[1]:.0f} "
                f"| {rel[0]:.0f} / {rel[1]:.0f} | {share:.2f} |"
            )
        a = _ape([p.log_error for p in preds])
        rel = _ape(_relative(preds))
        print(
            f"| {label} | **all pooled** | {len(preds)} | {a[0]:.0f} / {a[1]:.0f} "
            f"| {rel[0]:.0f} / {rel[1]:.0f} | |"
        )
    print()
    print("#### By predicted regime (leave-one-workload-out)\n")
    print("| regime | predictions | absolute median / P90 APE % | GPU-to-GPU median / P90 APE % |")
    print("|---|---|---|---|")
    relative = dict(zip([id(p) for p in lowo], _relative(lowo), strict=True))
    for regime, test in (
        ("compute-bound", lambda p: p.bandwidth_share <= 0.5),
        ("bandwidth-bound", lambda p: p.bandwidth_share > 0.5),
    ):
        members = [p for p in lowo if test(p)]
        if members:
            a = _ape([p.log_error for p in members])
            rel = _ape([relative[id(p)] for p in members])
            print(f"| {regime} | {len(members)} | {a[0]:.0f} / {a[1]:.0f} | {rel[0]:.0f} / {rel[1]:.0f} |")
    print()
    factors = ", ".join(f"{k} {math.exp(v):.2f}" for k, v in sorted(fit_all.workload_log_factor.items()))
    print(
        f"In-sample (all workloads, all GPUs): launch latency {fit_all.launch_s * 1e6:.1f} us per kernel, "
        f"16-bit bytes / FP32 count {fit_all.half_bytes:.2f}; implementation factors (measured / descriptor "
        f"time; a held-out workload gets 1): {factors}.\n"
    )


def _power(workload: str, bucket: str, gpu: str, batch: float, estimator: PreEstimator) -> float:
    precision = "32-true" if bucket == "fp32" else "16-mixed"
    model = workload_descriptor(workload, precision, matmul_tf32=True)
    samples = max(int(batch), 1) * 100
    data = DataDescriptor(max(int(batch), 1), samples)
    return estimator.predict(RunDescriptor(model, data, lookup_gpu(gpu))).power_w


def print_ranking(lowo: list[Prediction]) -> None:
    """Cheapest GPU per (workload, precision): predicted time x power vs measured time x the same power."""
    estimator = PreEstimator.default()
    groups: dict[tuple[str, str], list[Prediction]] = defaultdict(list)
    for p in lowo:
        groups[(p.obs.workload, p.obs.bucket)].append(p)
    print("### Cheapest and fastest GPU per Lambda workload (held-out workload)\n")
    print(
        "| workload | precision | GPUs | cheapest (measured time x power) | PRE's pick | its measured energy "
        "above the cheapest | fastest measured | PRE's fastest |"
    )
    print("|---|---|---|---|---|---|---|---|")
    hits = fast_hits = total = near = 0
    for (workload, bucket), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        power = {p.obs.gpu: _power(workload, bucket, p.obs.gpu, p.obs.batch, estimator) for p in members}
        energy = {p.obs.gpu: p.obs.seconds_per_item * power[p.obs.gpu] for p in members}
        measured = min(energy, key=lambda g: energy[g])
        picked = min(members, key=lambda p: p.seconds * power[p.obs.gpu]).obs.gpu
        regret = 100.0 * (energy[picked] / energy[measured] - 1.0)
        near += regret <= 10.0
        fastest = min(members, key=lambda p: p.obs.seconds_per_item).obs.gpu
        fast_pick = min(members, key=lambda p: p.seconds).obs.gpu
        total += 1
        hits += measured == picked
        fast_hits += fastest == fast_pick
        print(
            f"| {workload} | {bucket} | {len(members)} | {measured} "
            f"| {picked}{'' if picked == measured else ' (wrong)'} "
            f"| {regret:.0f} % | {fastest} | {fast_pick}{'' if fast_pick == fastest else ' (wrong)'} |"
        )
    print(
        f"\nCheapest GPU right for **{hits} of {total}** (workload, precision) pairs (chance: about 1 in "
        f"24), a pick within 10 % of the cheapest's energy for {near} of {total}; fastest right for "
        f"{fast_hits} of "
        f"{total}.\n"
    )


def write_plot(out: Path, lowo: list[Prediction]) -> Path | None:
    """Predicted (held-out workload) vs measured time per item on each GPU, for a bandwidth-bound and a
    compute-bound workload."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    shares: dict[str, list[float]] = defaultdict(list)
    for p in lowo:
        shares[p.obs.workload].append(p.bandwidth_share)
    ordered = sorted(shares, key=lambda k: statistics.median(shares[k]))
    chosen = [("compute-bound", ordered[0]), ("bandwidth-bound", ordered[-1])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, (regime, workload) in zip(axes, chosen, strict=True):
        for bucket, marker in (("fp32", "o"), ("fp16", "s")):
            members = sorted(
                (p for p in lowo if p.obs.workload == workload and p.obs.bucket == bucket),
                key=lambda p: p.obs.seconds_per_item,
            )
            if not members:
                continue
            x = list(range(len(members)))
            ax.scatter(
                x, [1 / p.obs.seconds_per_item for p in members], marker=marker, label=f"measured {bucket}"
            )
            ax.scatter(
                x,
                [1 / p.seconds for p in members],
                marker=marker,
                facecolors="none",
                edgecolors="k",
                label=f"predicted {bucket}",
            )
            for i, p in zip(x, members, strict=True):
                ax.annotate(p.obs.gpu, (i, 1 / p.obs.seconds_per_item), fontsize=6, rotation=60)
        ax.set_yscale("log")
        ax.set_title(f"{workload} ({regime}, held out)")
        ax.set_xlabel("GPUs, slowest to fastest (measured)")
        ax.set_ylabel("items/s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pre_roofline_lambda.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def print_perseus_power(perseus_dir: Path) -> None:
    """Measured mean power per GPU (Perseus: NVML energy per iteration, every GPU at one power limit) against
    what PRE's power curve gives a fully busy GPU at that limit: a check of the model, not a fit."""
    import csv

    rows = []
    for gpu_name, path, stages in (
        ("A100 80GB PCIe", perseus_dir / "sosp24_A100_zeus_global.csv", 4),
        ("A40", perseus_dir / "sosp24_A40_zeus_global.csv", 8),
    ):
        if not path.is_file():
            print(f"skipped: Perseus data not found at {perseus_dir}\n")
            return
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                limits = {float(row[f"power_limit_{i}"]) for i in range(stages)}
                if len(limits) == 1:
                    rows.append(
                        (
                            gpu_name,
                            row["model_name"],
                            limits.pop(),
                            float(row["energy"]) / float(row["time"]) / stages,
                        )
                    )
    estimator = PreEstimator.default()
    print("### Mean GPU power on data-centre GPUs (Perseus, NVML) — IN-SAMPLE since v5.5\n")
    print(
        "Pipeline-parallel training (4 x A100 80GB PCIe, 8 x A40), every GPU at one power limit: measured "
        "energy / time / GPUs, against the shipped model's power for a busy GPU with that limit (a "
        "1e12-FLOP step of a compute-bound transformer). PRE's curve knows the busy share, the step time "
        "and the board class, not the model's mix. Since v5.5 the data-centre class shift is fitted on "
        "these rows (with MLPerf's), so this table is in-sample; the held-out figures are in the power "
        "table above.\n"
    )
    errors = []
    print("| GPU | model | power limit W | measured W per GPU | measured / limit | PRE W (busy GPU) |")
    print("|---|---|---|---|---|---|")
    for gpu_name, model_name, limit, watts in sorted(rows):
        if limit < 300:  # the boards' default limit; Perseus also runs lower ones
            continue
        gpu = dataclasses.replace(lookup_gpu(gpu_name), tdp_w=limit)
        descriptor = RunDescriptor(
            workload_descriptor("bert_large_squad", "16-mixed"), DataDescriptor(8, 8000), gpu
        )
        predicted = estimator.predict(descriptor).power_w
        errors.append(abs(predicted / watts - 1.0))
        print(
            f"| {gpu_name} | {model_name} | {limit:.0f} | {watts:.0f} | {watts / limit:.2f} "
            f"| {predicted:.0f} |"
        )
    print()


def run(lambda_dir: Path, plots: Path | None = None, quick: bool = False) -> None:
    """Print the Lambda tables (and write the plot); skips with a reason without the data. ``quick``: no
    leave-one-GPU-out refits (25 of the 35 roofline fits)."""
    if not (lambda_dir / "gpu_training_throughput.csv").is_file():
        print(f"skipped: Lambda data not found at {lambda_dir}\n")
        return
    workloads = load_workloads()
    r = training_factor()
    obs = observations(lambda_dir, workloads)
    lowo = leave_one_workload_out(obs, workloads, r)
    logo = [] if quick else leave_one_gpu_out(obs, workloads, r)
    print_time_tables(lowo, logo, fit(obs, workloads, r))
    print_ranking(lowo)
    print_perseus_power(lambda_dir.parent / "perseus")
    if plots is not None:
        write_plot(plots, lowo)
