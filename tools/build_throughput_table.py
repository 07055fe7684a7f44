"""Build ``lightning_energy/pre/throughput.json``: achieved PyTorch training throughput per GPU.

Source: ``../shared/data/lambda/gpu_training_throughput.csv`` (Lambda ``deeplearning-benchmark``, single-GPU
runs; read its README). For every GPU of ``gpus.json`` that Lambda measured, per precision (fp32 = FP32/TF32,
fp16 = FP16/AMP) and per workload family:

* ``conv``: ResNet-50 training at 224 px (images/s), the convolution-heavy reference;
* ``matmul``: BERT-base SQuAD fine-tuning, sequence length 384 (sequences/s), the matmul/attention reference,

the table stores the measured samples/s and the achieved *training* FLOP/s it implies
(``3 x forward FLOPs per sample x samples/s``; forward + backward = 3 forward passes), with the source rows.
Only ``quality == ok`` rows. Numbers are comparable only within a harness generation (README), so each
generation is first converted to the ``v1`` level by a factor estimated from the GPUs measured under both
(``harness_factors_to_v1``); a GPU's value is the median over all its machines after that conversion.

For GPUs without measurements the runtime falls back to a datasheet capability index (FP32 peak and memory
bandwidth, ``capability``) x the median achieved/capability ratio of measured GPUs of the same generation
(else of all measured GPUs). The table stores, per precision and
family, the 90 % quantile of the absolute log error of that rule when each measured GPU is left out in turn
(``same_architecture_log_q90`` where a sibling of the same generation remains, else
``other_architecture_log_q90``), and the same for GPUs unknown to the table (peak from the power limit:
``power_log_q90``), plus the spread between harness generations of GPUs measured by several
after the conversion (``measured_log_q90``). These are the interval terms of the GPU speed.

Run: ``python tools/build_throughput_table.py [--data ../shared/data/lambda] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy._io import atomic_write_text  # noqa: E402
from lightning_energy.pre.gpus import lookup_gpu  # noqa: E402
from lightning_energy.pre.throughput import capability as runtime_capability  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "lambda"
DEFAULT_OUT = REPO / "lightning_energy" / "pre" / "throughput.json"
GPUS_JSON = REPO / "lightning_energy" / "pre" / "gpus.json"

HARNESS_ORDER = ("v0-20.01", "v0-20.10", "v1", "v2")
#: Reference workloads. Forward FLOPs per sample, 2 FLOPs per multiply-add:
#: ResNet-50 at 224 px: 4.09 G multiply-adds (torchvision / He et al. 2016) -> 8.18e9.
#: BERT-base at 384 tokens: per token 2 x 84.9e6 non-embedding weights + 12 layers x 4 x 384 x 768 for the
#: attention scores and the weighted values = 1.84e8, x 384 tokens -> 7.07e10.
REFERENCES = {
    "conv": {"workload": "resnet50", "unit": "images/s", "forward_flops_per_sample": 8.18e9},
    "matmul": {"workload": "bert_base_squad", "unit": "sequences/s", "forward_flops_per_sample": 7.07e10},
}
#: Our GPU table name -> Lambda's GPU names (both V100s of Lambda are SXM2 parts).
LAMBDA_NAMES = {
    "GTX 1080 Ti": ["GTX 1080 Ti"],
    "V100 SXM2": ["V100 32GB", "V100 16GB"],
    "Quadro RTX 5000": ["Quadro RTX 5000"],
    "RTX 2080 Ti": ["RTX 2080 Ti"],
    "Quadro RTX 6000": ["Quadro RTX 6000"],
    "Quadro RTX 8000": ["Quadro RTX 8000"],
    "Titan RTX": ["Titan RTX"],
    "RTX A4000": ["A4000"],
    "A10": ["A10"],
    "RTX 3070": ["RTX 3070"],
    "RTX A5000": ["A5000"],
    "A100 40GB PCIe": ["A100 40GB PCIe"],
    "A100 80GB PCIe": ["A100 80GB PCIe"],
    "A40": ["A40"],
    "RTX A6000": ["RTX A6000"],
    "RTX 3080": ["RTX 3080"],
    "RTX 3090": ["RTX 3090"],
    "A100 40GB SXM4": ["A100 40GB SXM4"],
    "A100 80GB SXM4": ["A100 80GB SXM4"],
    "RTX 6000 Ada": ["RTX 6000 Ada"],
    "RTX 4090": ["RTX 4090"],
    "H100 PCIe": ["H100 80GB PCIe"],
    "H100 SXM": ["H100 80GB SXM5"],
    "H200": ["H200 141GB SXM"],
    "B200": ["B200"],
}
#: Other workloads of each family: how well the reference's GPU factors carry over (``transfer_log_q90``).
OTHER_WORKLOADS = {
    "conv": ("ssd",),
    "matmul": ("bert_large_squad", "gnmt", "transformerxlbase", "transformerxllarge"),
}
PRECISIONS = ("fp32", "fp16")
#: Generations with TF32 tensor cores. Lambda's FP32 runs on them used TF32 (NGC containers enable it); plain
#: PyTorch leaves FP32 matmuls on the CUDA cores unless torch.set_float32_matmul_precision says otherwise.
TF32_ARCHITECTURES = ("Ampere", "Ampere GA100", "Ada", "Hopper", "Blackwell")
BASE_HARNESS = "v1"
GPU_OF_LAMBDA = {lambda_name: name for name, names in LAMBDA_NAMES.items() for lambda_name in names}
MAX_SOURCES = 3


def read_rows(path: Path) -> list[dict[str, str]]:
    with (path / "gpu_training_throughput.csv").open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["quality"] == "ok"]


#: Candidate exponents of the capability index (see ``capability``), chosen per precision and family by the
#: left-one-GPU-out error of the same-generation rule on the table.
CAPABILITY_EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def capability(gpu: dict[str, object], exponent: float) -> float:
    """The runtime's capability index (``lightning_energy.pre.throughput.capability``) of a gpus.json row."""
    return runtime_capability(lookup_gpu(str(gpu["name"])), exponent)


def harness_factors(rows: list[dict[str, str]], workload: str, precision: str) -> dict[str, float]:
    """Multiplicative factor per harness generation that converts its numbers to the ``v1`` level.

    Estimated from GPUs measured under both generations (median log ratio of their medians); chained through
    ``v1`` (``v2`` and the ``v0`` generations each overlap with it). 1.0 for ``v1`` or without overlap.
    """
    medians: dict[tuple[str, str], float] = {}
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r["workload"] == workload and r["precision"] == precision:
            groups[(GPU_OF_LAMBDA.get(r["gpu"], r["gpu"]), r["harness"])].append(float(r["throughput"]))
    for key, values in groups.items():
        medians[key] = statistics.median(values)
    factors = {}
    for harness in HARNESS_ORDER:
        logs = [
            math.log(medians[(gpu, BASE_HARNESS)] / value)
            for (gpu, h), value in medians.items()
            if h == harness and (gpu, BASE_HARNESS) in medians
        ]
        factors[harness] = (
            round(math.exp(statistics.median(logs)), 4) if logs and harness != BASE_HARNESS else 1.0
        )
    return factors


def measured_entry(
    rows: list[dict[str, str]], family: str, factors: dict[str, float]
) -> dict[str, object] | None:
    """Median over machines of all generations, each converted to the ``v1`` level; with sources."""
    if not rows:
        return None
    adjusted = [float(r["throughput"]) * factors[r["harness"]] for r in rows]
    samples = statistics.median(adjusted)
    flops = 3.0 * float(REFERENCES[family]["forward_flops_per_sample"]) * samples  # type: ignore[arg-type]
    by_harness: dict[str, list[float]] = defaultdict(list)
    for r, value in zip(rows, adjusted, strict=True):
        by_harness[r["harness"]].append(value)
    return {
        "samples_per_s": round(samples, 2),
        "training_tflops": round(flops / 1e12, 3),
        "machines": len(rows),
        "batch_size": sorted({r["batch_size"] for r in rows}),
        "sources": sorted(r["source"].split(";")[0] for r in rows)[:MAX_SOURCES],
        "per_harness_median": {h: round(statistics.median(v), 2) for h, v in sorted(by_harness.items())},
    }


def q90(values: list[float]) -> float:
    ordered = sorted(abs(v) for v in values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def build(data: Path) -> dict[str, object]:
    gpus = {str(g["name"]): g for g in json.loads(GPUS_JSON.read_text(encoding="utf-8"))["gpus"]}
    rows = read_rows(data)
    factors = {
        precision: {
            family: harness_factors(rows, str(ref["workload"]), precision)
            for family, ref in REFERENCES.items()
        }
        for precision in PRECISIONS
    }
    table: dict[str, dict[str, dict[str, object]]] = {}
    for name, lambda_names in LAMBDA_NAMES.items():
        if name not in gpus:
            raise SystemExit(f"{name!r} is not in gpus.json")
        entry: dict[str, dict[str, object]] = {}
        for precision in PRECISIONS:
            for family, ref in REFERENCES.items():
                chosen = [
                    r
                    for r in rows
                    if r["gpu"] in lambda_names
                    and r["precision"] == precision
                    and r["workload"] == ref["workload"]
                ]
                measured = measured_entry(chosen, family, factors[precision][family])
                if measured is not None:
                    entry.setdefault(precision, {})[family] = measured
        table[name] = entry
    fallback: dict[str, dict[str, dict[str, object]]] = {}
    for precision in PRECISIONS:
        for family in REFERENCES:
            stats = fallback_stats(gpus, table, precision, family)
            stats["transfer_log_q90"] = round(transfer_q90(rows, table, precision, family), 4)
            fallback.setdefault(precision, {})[family] = stats
    fallback["fp32"]["matmul"]["cuda_cores"] = cuda_core_stats(gpus, table)
    return {
        "_about": __doc__.split("\n\n")[0] + " Built by tools/build_throughput_table.py; see docs/pre.md.",
        "source": "lambdal/deeplearning-benchmark @ aa5addb6a53675a649a80036dad548f1c27cbcc4 "
        "(single-GPU rows of gpu_training_throughput.csv, parsed from its result logs; quality == ok)",
        "references": REFERENCES,
        "harness_factors_to_v1": factors,
        "measured": table,
        "fallback": fallback,
    }


def fallback_stats(
    gpus: dict[str, dict[str, object]],
    table: dict[str, dict[str, dict[str, object]]],
    precision: str,
    family: str,
) -> dict[str, object]:
    """Achieved/capability and achieved/TDP ratios and the left-one-GPU-out errors of the fallback rules.

    The capability exponent is the one whose same-generation rule has the smallest 90 % left-one-GPU-out
    error (ties: the larger exponent, i.e. closer to the plain FP32 peak). The stored 90 % errors are nested:
    for each left-out GPU the exponent is chosen on the other GPUs only.
    """
    achieved = {
        name: float(entry[precision][family]["training_tflops"])  # type: ignore[arg-type]
        for name, entry in table.items()
        if family in entry.get(precision, {})
    }
    by_exponent = {a: _rule_errors(gpus, achieved, a) for a in CAPABILITY_EXPONENTS}
    exponent = _best_exponent(gpus, achieved)
    same_errors, other_errors = _nested_rule_errors(gpus, achieved)
    ratio = {n: achieved[n] / capability(gpus[n], exponent) for n in achieved}
    tdp_ratio = {n: achieved[n] / float(gpus[n]["tdp_w"]) for n in achieved}  # type: ignore[arg-type]
    by_arch: dict[str, list[float]] = defaultdict(list)
    for n, value in ratio.items():
        by_arch[str(gpus[n]["architecture"])].append(value)
    power_errors = [
        math.log(statistics.median(tdp_ratio[m] for m in tdp_ratio if m != n) / tdp_ratio[n])
        for n in tdp_ratio
    ]
    spread = []
    for entry in table.values():
        per_harness = entry.get(precision, {}).get(family, {}).get("per_harness_median", {})  # type: ignore[union-attr]
        values = list(per_harness.values())  # type: ignore[union-attr]
        if len(values) > 1:
            spread.append(math.log(max(values) / min(values)) / 2.0)
    return {
        "capability_exponent": exponent,
        "same_architecture_log_q90_by_exponent": {
            str(a): round(q90(errors[0]), 4) for a, errors in by_exponent.items()
        },
        "ratio_to_capability_by_architecture": {
            a: round(statistics.median(v), 4) for a, v in sorted(by_arch.items())
        },
        "ratio_to_capability_all": round(statistics.median(ratio.values()), 4),
        "tflops_per_tdp_w": round(statistics.median(tdp_ratio.values()), 5),
        "same_architecture_log_q90": round(q90(same_errors), 4),
        "other_architecture_log_q90": round(q90(other_errors), 4),
        "power_log_q90": round(q90(power_errors), 4),
        "measured_log_q90": round(q90(spread), 4),
        "gpus": len(achieved),
    }


def _best_exponent(gpus: dict[str, dict[str, object]], achieved: dict[str, float]) -> float:
    """The exponent whose same-generation rule has the smallest 90 % left-one-GPU-out error (ties: larger)."""
    return min(CAPABILITY_EXPONENTS, key=lambda a: (q90(_rule_errors(gpus, achieved, a)[0]), -a))


def _nested_rule_errors(
    gpus: dict[str, dict[str, object]], achieved: dict[str, float]
) -> tuple[list[float], list[float]]:
    """Left-one-GPU-out errors with the exponent chosen without the left-out GPU (nested; honest q90)."""
    same_errors, other_errors = [], []
    for n in achieved:
        rest = {m: v for m, v in achieved.items() if m != n}
        exponent = _best_exponent(gpus, rest)
        ratio = {m: v / capability(gpus[m], exponent) for m, v in rest.items()}
        value = achieved[n] / capability(gpus[n], exponent)
        same = [ratio[m] for m in ratio if gpus[m]["architecture"] == gpus[n]["architecture"]]
        if same:
            same_errors.append(math.log(statistics.median(same) / value))
        other_errors.append(math.log(statistics.median(ratio.values()) / value))
    return same_errors, other_errors


def _rule_errors(
    gpus: dict[str, dict[str, object]], achieved: dict[str, float], exponent: float
) -> tuple[list[float], list[float]]:
    """Left-one-GPU-out log errors of the same-generation and the all-GPU capability rules."""
    ratio = {n: achieved[n] / capability(gpus[n], exponent) for n in achieved}
    same_errors, other_errors = [], []
    for n, value in ratio.items():
        same = [ratio[m] for m in ratio if m != n and gpus[m]["architecture"] == gpus[n]["architecture"]]
        if same:
            same_errors.append(math.log(statistics.median(same) / value))
        other_errors.append(math.log(statistics.median(ratio[m] for m in ratio if m != n) / value))
    return same_errors, other_errors


def cuda_core_stats(
    gpus: dict[str, dict[str, object]], table: dict[str, dict[str, dict[str, object]]]
) -> dict[str, object]:
    """FP32 matmul speed without TF32: FP32 peak x the median achieved/peak of GPUs without TF32 cores.

    The ratio comes from the measured GPUs of the generations before Ampere (their FP32 matmuls always ran on
    CUDA cores); its 90 % error is left-one-GPU-out among them. On a TF32 GPU with TF32 off, the runtime takes
    the smaller of this and the measured (TF32) speed.
    """
    ratio = {
        name: float(entry["fp32"]["matmul"]["training_tflops"]) / float(gpus[name]["peak_fp32_tflops"])  # type: ignore[arg-type]
        for name, entry in table.items()
        if "matmul" in entry.get("fp32", {}) and gpus[name]["architecture"] not in TF32_ARCHITECTURES
    }
    errors = [
        math.log(statistics.median(ratio[m] for m in ratio if m != n) / value) for n, value in ratio.items()
    ]
    return {
        "tf32_architectures": list(TF32_ARCHITECTURES),
        "ratio_to_peak_fp32": round(statistics.median(ratio.values()), 4),
        "log_q90": round(q90(errors), 4),
        "gpus": sorted(ratio),
    }


def transfer_q90(
    rows: list[dict[str, str]], table: dict[str, dict[str, dict[str, object]]], precision: str, family: str
) -> float:
    """90 % absolute log error of the family's GPU factors on the family's *other* workloads.

    Per workload: log(throughput_g / reference_speed_g) minus its median over GPUs (the workload's own FLOPs
    and efficiency cancel), pooled over workloads and GPUs.
    """
    errors = []
    for workload in OTHER_WORKLOADS[family]:
        factors = harness_factors(rows, workload, precision)
        per_gpu: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            name = GPU_OF_LAMBDA.get(r["gpu"])
            if name and r["workload"] == workload and r["precision"] == precision:
                per_gpu[name].append(float(r["throughput"]) * factors[r["harness"]])
        logs = {
            name: math.log(
                statistics.median(values) / float(table[name][precision][family]["training_tflops"])
            )  # type: ignore[arg-type]
            for name, values in per_gpu.items()
            if family in table[name].get(precision, {})
        }
        if len(logs) >= 3:
            centre = statistics.median(logs.values())
            errors.extend(value - centre for value in logs.values())
    return q90(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder of gpu_training_throughput.csv"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output JSON (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if not (args.data / "gpu_training_throughput.csv").is_file():
        print(f"error: {args.data}/gpu_training_throughput.csv not found", file=sys.stderr)
        return 2
    table = build(args.data)
    text = json.dumps(table, indent=1) + "\n"
    atomic_write_text(args.out, text)
    measured = table["measured"]
    print(f"wrote {args.out}: {len(measured)} measured GPUs")  # type: ignore[arg-type]
    for precision, families in table["fallback"].items():  # type: ignore[union-attr]
        for family, stats in families.items():
            print(
                f"{precision} {family}: fallback log q90 same generation "
                f"{stats['same_architecture_log_q90']}, "
                f"other {stats['other_architecture_log_q90']}, "
                f"power-only {stats['power_log_q90']}, harness spread {stats['measured_log_q90']}, "
                f"transfer to other workloads {stats['transfer_log_q90']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
