"""Fit the achieved roofline of every GPU of Lambda's table and write ``lightning_energy/pre/roofline.json``.

Research tooling (not part of the runtime package). Inputs: ``../shared/data/lambda`` (measured
throughput, never copied) and ``lightning_energy/pre/workloads.json`` (descriptors of the ten workloads,
built by ``tools/lambda_workloads.py``).

For each GPU of the table and precision (fp32 = FP32/TF32, fp16 = FP16/AMP), the machine generation
(harness) with the most workloads is used (one software stack per GPU), its median per workload, converted
to the ``v1`` generation's level by the throughput table's per-workload harness factors
(``tools/build_throughput_table.harness_factors``: the same GPU runs 9-16 % slower under ``v0-20.10``
than under ``v1``, so a GPU measured only under an older generation would look slower than it is). The
fit (log-space least squares, ``scipy.optimize.least_squares``) finds per GPU and precision the achieved
conv FLOP/s, matmul FLOP/s and bandwidth, and one launch latency per kernel shared by all, with weak
priors around the datasheet (see ``PRIORS``). ``lightning_energy.pre.roofline`` documents the time model.

Fallbacks for GPUs outside the table: median achieved/datasheet ratios of the measured GPUs of the same
generation (or of all); their 90 % log time errors are left-one-GPU-out on the table's workloads (the
left-out GPU's own fitted values are not used: nested, except the shared launch latency).

Run: ``python tools/build_roofline_table.py [--data ../shared/data/lambda] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.pre.gpus import lookup_gpu  # noqa: E402
from lightning_energy.pre.roofline import peak_flops  # noqa: E402
from tools.build_throughput_table import (  # noqa: E402
    DEFAULT_DATA,
    GPU_OF_LAMBDA,
    harness_factors,
    read_rows,
)

DEFAULT_OUT = REPO / "lightning_energy" / "pre" / "roofline.json"
WORKLOADS_JSON = REPO / "lightning_energy" / "pre" / "workloads.json"
BUCKETS = ("fp32", "fp16")
#: Bytes moved per parameter and training step: weights read in forward and backward, gradient written and
#: read, Adam's parameter, two moments read and written (10 accesses x 4 bytes).
PARAMETER_BYTES_PER_STEP = 40.0
#: Prior (log mean factor, log sd) of achieved/datasheet: FLOP/s vs the peak, bandwidth vs the datasheet.
PRIORS = {
    "flops": (math.log(0.4), 1.5),
    "bandwidth": (math.log(0.6), 0.7),
    "launch_s": (math.log(1e-5), 2.0),
    "half_bytes": (math.log(0.6), 0.5),  # bytes of a 16-bit run / its FP32 count (activations in 16 bit)
}
PRIOR_WEIGHT = 1.0
#: Prior sd of the per-workload implementation factor (log): how far NVIDIA's tuned implementation of a
#: workload may run from its plain-PyTorch descriptor; the factors sum to zero (the level is the GPU's).
WORKLOAD_FACTOR_SD = 0.5


@dataclass(frozen=True)
class Observation:
    """Measured seconds per item of one workload on one GPU and precision, with the batch of the runs."""

    gpu: str
    bucket: str
    workload: str
    seconds_per_item: float
    batch: float


def load_workloads(path: Path = WORKLOADS_JSON) -> dict[str, dict[str, Any]]:
    workloads: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["workloads"]
    return workloads


def training_factor(path: Path = WORKLOADS_JSON) -> float:
    return float(json.loads(path.read_text(encoding="utf-8"))["training_to_forward_bytes_median"])


def _batch(text: str) -> float | None:
    values = [float(v) for v in text.split(";") if v.strip()]
    return statistics.median(values) if values else None


def observations(data: Path, workloads: Iterable[str]) -> list[Observation]:
    """One observation per (GPU of the table, precision, workload), from the harness with most workloads."""
    wanted = set(workloads)
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    rows = read_rows(data)
    for row in rows:
        gpu = GPU_OF_LAMBDA.get(row["gpu"])
        if gpu is None or row["workload"] not in wanted:
            continue
        groups[(gpu, row["precision"], row["harness"])][row["workload"]].append(row)
    factors = {
        (workload, bucket): harness_factors(rows, workload, bucket)
        for workload in wanted
        for bucket in {row["precision"] for row in rows}
    }
    best: dict[tuple[str, str], tuple[str, dict[str, list[dict[str, str]]]]] = {}
    for (gpu, bucket, harness), by_workload in sorted(groups.items()):
        current = best.get((gpu, bucket))
        if current is None or len(by_workload) >= len(current[1]):
            best[(gpu, bucket)] = (harness, by_workload)
    result = []
    for (gpu, bucket), (harness, by_workload) in sorted(best.items()):
        for workload, chosen in sorted(by_workload.items()):
            batches = [b for b in (_batch(r["batch_size"]) for r in chosen) if b]
            if not batches:
                continue
            factor = factors[(workload, bucket)].get(harness, 1.0)
            throughput = factor * statistics.median(float(r["throughput"]) for r in chosen)
            result.append(Observation(gpu, bucket, workload, 1.0 / throughput, statistics.median(batches)))
    return result


# ------------------------------------------------------------------------------------------ the model
def item_seconds(
    w: Mapping[str, Any],
    batch: float,
    conv: float,
    matmul: float,
    bandwidth: float,
    launch_s: float,
    r: float,
) -> float:
    """Predicted seconds per item of workload ``w`` (see lightning_energy.pre.roofline)."""
    c = float(w["conv_flop_fraction"])
    flops = float(w["forward_flops_per_item"])
    b = w["forward_bytes_per_item"]
    flop_s = 3.0 * flops * (c / conv + (1.0 - c) / matmul)
    matmul_s = max(flop_s, r * float(b["matmul"]) / bandwidth)
    other_s = r * sum(float(v) for k, v in b.items() if k != "matmul") / bandwidth
    items_per_step = batch * float(w["items_per_sample"])
    step_s = (float(w["parameter_count"]) * PARAMETER_BYTES_PER_STEP / bandwidth) + float(
        w["kernels_per_training_step"]
    ) * launch_s
    return matmul_s + other_s + step_s / items_per_step


@dataclass(frozen=True)
class Fit:
    """Fitted achieved speeds per (GPU, precision): (conv FLOP/s, matmul FLOP/s, bandwidth B/s), the shared
    launch latency per kernel and the per-workload implementation factors (log; sum-to-zero prior)."""

    speeds: dict[tuple[str, str], tuple[float, float, float]]
    launch_s: float
    workload_log_factor: dict[str, float]
    half_bytes: float = 1.0


def _prior_centres(gpu: str, bucket: str) -> tuple[float, float, float]:
    desc = lookup_gpu(gpu)
    peak = math.log(peak_flops(desc, bucket)) + PRIORS["flops"][0]
    return peak, peak, math.log(desc.memory_bandwidth_gbs * 1e9) + PRIORS["bandwidth"][0]


def _columns(
    obs: Sequence[Observation], workloads: Mapping[str, Mapping[str, Any]], r: float
) -> dict[str, np.ndarray]:
    """Per-observation arrays of the workload quantities item_seconds uses."""
    rows = [workloads[o.workload] for o in obs]
    b = [w["forward_bytes_per_item"] for w in rows]
    items = np.array([o.batch * float(w["items_per_sample"]) for o, w in zip(obs, rows, strict=True)])
    return {
        "c": np.array([float(w["conv_flop_fraction"]) for w in rows]),
        "flops3": 3.0 * np.array([float(w["forward_flops_per_item"]) for w in rows]),
        "bytes_mm": r * np.array([float(x["matmul"]) for x in b]),
        "bytes_other": r * np.array([sum(float(v) for k, v in x.items() if k != "matmul") for x in b]),
        "param_bytes": np.array([float(w["parameter_count"]) for w in rows])
        * PARAMETER_BYTES_PER_STEP
        / items,
        "kernels": np.array([float(w["kernels_per_training_step"]) for w in rows]) / items,
        "log_t": np.log([o.seconds_per_item for o in obs]),
    }


def fit(obs: Sequence[Observation], workloads: Mapping[str, Mapping[str, Any]], r: float) -> Fit:
    """Least squares in log time with weak priors (module docstring), vectorised.

    Parameters: per GPU and precision the conv and matmul FLOP/s; per GPU one bandwidth (bytes/s are a
    property of the memory, not of the precision); one factor for the bytes a 16-bit run moves relative to
    the FP32 count; one launch latency; one implementation factor per workload.
    """
    keys = sorted({(o.gpu, o.bucket) for o in obs})
    gpus = sorted({o.gpu for o in obs})
    names = sorted({o.workload for o in obs})
    nk, ng = len(keys), len(gpus)
    ki = np.array([keys.index((o.gpu, o.bucket)) for o in obs])
    gi = np.array([gpus.index(o.gpu) for o in obs])
    wi = np.array([names.index(o.workload) for o in obs])
    half = np.array([o.bucket == "fp16" for o in obs])
    col = _columns(obs, workloads, r)
    flop_centres = np.array([_prior_centres(*k)[:2] for k in keys]).ravel()
    bw_centres = np.array([_prior_centres(g, "fp32")[2] for g in gpus])
    centres = np.concatenate([flop_centres, bw_centres, [PRIORS["half_bytes"][0], PRIORS["launch_s"][0]]])
    sds = np.concatenate(
        [
            np.full(2 * nk, PRIORS["flops"][1]),
            np.full(ng, PRIORS["bandwidth"][1]),
            [PRIORS["half_bytes"][1], PRIORS["launch_s"][1]],
        ]
    )
    n = 2 * nk + ng + 2
    x0 = np.concatenate([centres, np.zeros(len(names))])

    def residuals(x: np.ndarray) -> np.ndarray:
        flops = np.exp(x[: 2 * nk].reshape(-1, 2))[ki]
        bandwidth = np.exp(x[2 * nk : 2 * nk + ng])[gi] / np.where(half, math.exp(x[n - 2]), 1.0)
        launch = math.exp(x[n - 1])
        k = x[n:]
        flop_s = col["flops3"] * (col["c"] / flops[:, 0] + (1.0 - col["c"]) / flops[:, 1])
        t = (
            np.maximum(flop_s, col["bytes_mm"] / bandwidth)
            + (col["bytes_other"] + col["param_bytes"]) / bandwidth
            + col["kernels"] * launch
        )
        out = np.log(t) + k[wi] - col["log_t"]
        prior = PRIOR_WEIGHT * (x[:n] - centres) / sds
        k_prior = np.append(k / WORKLOAD_FACTOR_SD, k.sum() * 10.0)
        return np.concatenate([out, prior, k_prior])

    x = least_squares(residuals, x0, method="trf", max_nfev=2000).x
    half_bytes = math.exp(x[n - 2])
    speeds = {}
    for i, key in enumerate(keys):
        bw = math.exp(x[2 * nk + gpus.index(key[0])]) / (half_bytes if key[1] == "fp16" else 1.0)
        speeds[key] = (math.exp(x[2 * i]), math.exp(x[2 * i + 1]), bw)
    factors = {name: float(x[n + i]) for i, name in enumerate(names)}
    return Fit(speeds, float(math.exp(x[n - 1])), factors, half_bytes)


def ratios(fit_: Fit, gpus: Iterable[str], bucket: str) -> dict[str, float]:
    """Median achieved/datasheet ratios of ``gpus`` at ``bucket`` (log-space median)."""
    values: dict[str, list[float]] = defaultdict(list)
    for gpu in gpus:
        speeds = fit_.speeds.get((gpu, bucket))
        if speeds is None:
            continue
        desc = lookup_gpu(gpu)
        peak = peak_flops(desc, bucket)
        values["conv_per_peak"].append(math.log(speeds[0] / peak))
        values["matmul_per_peak"].append(math.log(speeds[1] / peak))
        values["bandwidth_per_datasheet"].append(math.log(speeds[2] / (desc.memory_bandwidth_gbs * 1e9)))
    return {k: round(math.exp(statistics.median(v)), 4) for k, v in values.items()}


def fallback_speeds(gpu: str, bucket: str, rule: Mapping[str, float]) -> tuple[float, float, float]:
    desc = lookup_gpu(gpu)
    peak = peak_flops(desc, bucket)
    return (
        peak * rule["conv_per_peak"],
        peak * rule["matmul_per_peak"],
        desc.memory_bandwidth_gbs * 1e9 * rule["bandwidth_per_datasheet"],
    )


def q90(values: Sequence[float]) -> float:
    ordered = sorted(abs(v) for v in values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def fallback_errors(
    fit_: Fit, obs: Sequence[Observation], workloads: Mapping[str, Any], r: float, bucket: str
) -> dict[str, list[float]]:
    """Left-one-GPU-out log time errors of the same-generation and all-GPU rules (per observation)."""
    gpus = sorted({o.gpu for o in obs if o.bucket == bucket})
    errors: dict[str, list[float]] = {"same": [], "all": []}
    for gpu in gpus:
        others = [g for g in gpus if g != gpu]
        arch = lookup_gpu(gpu).architecture
        same = [g for g in others if lookup_gpu(g).architecture == arch]
        rules = {"all": ratios(fit_, others, bucket)}
        if same:
            rules["same"] = ratios(fit_, same, bucket)
        for level, rule in rules.items():
            speeds = fallback_speeds(gpu, bucket, rule)
            for o in obs:
                if o.gpu == gpu and o.bucket == bucket:
                    t = item_seconds(workloads[o.workload], o.batch, *speeds, fit_.launch_s, r)
                    errors[level].append(math.log(t / o.seconds_per_item))
    return errors


def inference_rule(workloads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Bytes per FLOP by family (conv: conv share >= 0.5) for descriptors without counted traffic, with the
    left-one-workload-out 90 % log error of the rule, and the matmul class's share of the bytes."""
    rule: dict[str, Any] = {}
    for family, members in (
        ("conv", [w for w in workloads.values() if w["conv_flop_fraction"] >= 0.5]),
        ("matmul", [w for w in workloads.values() if w["conv_flop_fraction"] < 0.5]),
    ):
        logs = [
            math.log(sum(w["forward_bytes_per_item"].values()) / w["forward_flops_per_item"]) for w in members
        ]
        loo = (
            [v - statistics.median(logs[:i] + logs[i + 1 :]) for i, v in enumerate(logs)]
            if len(logs) > 1
            else [1.0]
        )
        rule[family] = {
            "bytes_per_flop": round(math.exp(statistics.median(logs)), 6),
            "log_q90": round(q90(loo), 4),
            "workloads": len(members),
        }
    shares = [
        w["forward_bytes_per_item"]["matmul"] / sum(w["forward_bytes_per_item"].values())
        for w in workloads.values()
    ]
    rule["matmul_class_share"] = round(statistics.median(shares), 4)
    return rule


def build(data: Path) -> dict[str, Any]:
    workloads = load_workloads()
    r = training_factor()
    obs = observations(data, workloads)
    fit_ = fit(obs, workloads, r)
    gpus: dict[str, dict[str, Any]] = defaultdict(dict)
    for (gpu, bucket), (conv, matmul, bandwidth) in sorted(fit_.speeds.items()):
        gpus[gpu][bucket] = {
            "conv_tflops": round(conv / 1e12, 3),
            "matmul_tflops": round(matmul / 1e12, 3),
            "bandwidth_gbs": round(bandwidth / 1e9, 1),
            "workloads": sorted(o.workload for o in obs if o.gpu == gpu and o.bucket == bucket),
        }
    fallback: dict[str, Any] = {}
    for bucket in BUCKETS:
        measured = sorted({o.gpu for o in obs if o.bucket == bucket})
        by_arch: dict[str, list[str]] = defaultdict(list)
        for gpu in measured:
            by_arch[str(lookup_gpu(gpu).architecture)].append(gpu)
        errors = fallback_errors(fit_, obs, workloads, r, bucket)
        fallback[bucket] = {
            "all": ratios(fit_, measured, bucket),
            "by_architecture": {a: ratios(fit_, g, bucket) for a, g in sorted(by_arch.items())},
            "same_architecture_log_q90": round(q90(errors["same"]), 4),
            "other_architecture_log_q90": round(q90(errors["all"]), 4),
            # a GPU unknown to the GPU table: its peaks are themselves scaled from the power limit
            "power_limit_log_q90": round(math.hypot(q90(errors["all"]), 0.6), 4),
        }
    return {
        "_about": "Achieved roofline per GPU and precision (conv and matmul FLOP/s, bandwidth of "
        "FP32-counted "
        "traffic) fitted to Lambda's single-GPU PyTorch throughput of ten workloads by "
        "tools/build_roofline_table.py; see lightning_energy/pre/roofline.py and docs/pre.md.",
        "format": 1,
        "constants": {
            "training_traffic_factor": round(r, 4),
            "parameter_bytes_per_step": PARAMETER_BYTES_PER_STEP,
            "launch_s": round(fit_.launch_s, 9),
            "half_precision_bytes": round(fit_.half_bytes, 4),
        },
        "workload_log_factor": {k: round(v, 4) for k, v in fit_.workload_log_factor.items()},
        "inference": inference_rule(workloads),
        "gpus": dict(gpus),
        "fallback": fallback,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.data / "gpu_training_throughput.csv").is_file():
        print(f"no Lambda data in {args.data}", file=sys.stderr)
        return 2
    table = build(args.data)
    args.out.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: table[k] for k in ("constants", "inference")}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
