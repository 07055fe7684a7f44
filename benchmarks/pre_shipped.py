"""The tables of ``benchmarks/pre_accuracy.py`` on the shipped model: its in-sample figures, power per GPU
(held-out GPU and in-sample), its speed ratios between GPUs against the throughput table's, and BERT-large on
Lambda's GPUs (a model the table does not hold).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from benchmarks.pre_folds import FoldResult, ape, interval_label, known_factor_note
from lightning_energy.pre import DataDescriptor, ModelDescriptor, PreEstimator, RunDescriptor, lookup_gpu
from lightning_energy.pre.throughput import measured_gpu_names, measured_samples_per_s
from tools.pre_dataset import Dataset, with_trainable
from tools.pre_fit import build_estimator, regime_note, trained_share_note
from tools.pre_select import select

#: Reference workloads of the throughput table, as descriptors (ImageNet-1k and SQuAD v1.1 train sets).
REFERENCE_RUNS = {
    "ResNet-50": (ModelDescriptor(8.18e9, (3, 224, 224)), DataDescriptor(256, 1_281_167), "conv"),
    "BERT-base": (ModelDescriptor(7.07e10, (384,), matmul_tf32=True), DataDescriptor(32, 88_641), "matmul"),
}
RATIO_BASE_GPU = "A100 80GB SXM4"


def print_in_sample(ds: Dataset) -> PreEstimator:
    every = np.arange(len(ds.runs))
    selection = select(ds, every)
    estimator, fitted = build_estimator(ds, every, selection)
    est = estimator.predict_many([with_trainable(r.descriptor, fitted.trainable) for r in ds.runs])
    energy, power = np.exp(ds.log_e), np.exp(ds.log_p)
    e = np.array([x.epoch_energy_j for x in est])
    p = np.array([x.power_w for x in est])
    covered = np.mean([x.low_j <= energy[i] <= x.high_j for i, x in enumerate(est)])
    print("\n### Shipped model (selection and fit on all 857 runs) — IN-SAMPLE figures\n")
    scores = ", ".join(f"{w:g}/{k:g}: {s:.3f}" for (w, k), s in selection.scores.items())
    print(
        f"prior weight {selection.prior_weight:g}, overlap exponent {selection.overlap:g}, picked by the "
        f"{selection.rule!r} rule (nested scores: "
        + ", ".join(f"{r} {v:.4f}" for r, v in selection.rule_scores.items())
        + "; fold scores, "
        f"weight/overlap: {scores}), interval {interval_label(selection)} (pooled choice "
        f"{selection.interval.rule} with host factor H={selection.interval.host_factor:g}, model q90 "
        f"{selection.model_log_q90:.3f} (log; candidates "
        + ", ".join(f"{r} {v:.3f}" for r, v in selection.interval.values.items())
        + f"; inflation {selection.interval.inflation:.2f}); {regime_note(selection.interval)}; "
        f"known-machine host factor {known_factor_note(selection)}), "
        f"{trained_share_note(ds, fitted)}\n"
    )
    print("| figure (in-sample) | value |")
    print("|---|---|")
    print(f"| energy MAPE % | {ape(e, energy).mean():.1f} |")
    print(f"| energy median APE % | {np.median(ape(e, energy)):.1f} |")
    print(f"| power MAPE % | {ape(p, power).mean():.1f} |")
    print(f"| 90% coverage % | {100 * covered:.0f} |")
    return estimator


def print_power_per_gpu(ds: Dataset, folds: list[FoldResult], shipped: PreEstimator) -> None:
    power = np.exp(ds.log_p)
    held = np.zeros(len(ds.runs))
    for f in folds:
        if f.kind == "leave-one-GPU-out":
            held[f.test] = [x.power_w for x in f.estimates]
    print("\n### Mean GPU power: predicted vs NVML-measured (nvidia-smi power.draw), per GPU\n")
    print(
        "| GPU | TDP W | runs | measured W (median) | held-out GPU: predicted W (median) | MAPE % | "
        "in-sample MAPE % |"
    )
    print("|---|---|---|---|---|---|---|")
    ins = np.array([x.power_w for x in shipped.predict_many([r.descriptor for r in ds.runs])])
    for gpu in sorted(set(ds.gpu.tolist())):
        m = ds.gpu == gpu
        print(
            f"| {gpu} | {lookup_gpu(gpu).tdp_w:.0f} | {int(m.sum())} | {np.median(power[m]):.0f} | "
            f"{np.median(held[m]):.0f} | {ape(held[m], power[m]).mean():.1f} | "
            f"{ape(ins[m], power[m]).mean():.1f} |"
        )


def print_ratio_check(shipped: PreEstimator) -> None:
    """The model's epoch-time ratio between each measured GPU and the base GPU vs the table's ratio."""
    print(
        "\n### GPU speed ratios: model vs throughput table "
        f"(reference workloads, relative to {RATIO_BASE_GPU})\n"
    )
    print("| workload | precision | GPUs | median abs log deviation | max abs log deviation | worst GPU |")
    print("|---|---|---|---|---|---|")
    examples = []
    for name, (model, data, family) in REFERENCE_RUNS.items():
        for precision in ("32-true", "16-mixed"):
            md = dataclasses.replace(model, precision=precision)
            base_t = shipped.predict(RunDescriptor(md, data, lookup_gpu(RATIO_BASE_GPU))).epoch_seconds
            base_s = measured_samples_per_s(RATIO_BASE_GPU, precision, family)
            deviations = {}
            for gpu in measured_gpu_names():
                table = measured_samples_per_s(gpu, precision, family)
                if table is None or base_s is None:
                    continue
                model_ratio = base_t / shipped.predict(RunDescriptor(md, data, lookup_gpu(gpu))).epoch_seconds
                deviations[gpu] = math.log(model_ratio / (table / base_s))
                if gpu in ("H100 SXM", "V100 SXM2", "A40", "Quadro RTX 6000", "RTX 3090"):
                    examples.append((name, precision, gpu, table / base_s, model_ratio))
            worst = max(deviations, key=lambda g: abs(deviations[g]))
            values = np.abs(list(deviations.values()))
            print(
                f"| {name} | {precision} | {len(values)} | {np.median(values):.3f} | {values.max():.3f} | "
                f"{worst} ({deviations[worst]:+.3f}) |"
            )
    print("\n| workload | precision | GPU | table speed ratio | model speed ratio |")
    print("|---|---|---|---|---|")
    for name, precision, gpu, table, model_ratio in examples:
        print(f"| {name} | {precision} | {gpu} | {table:.2f} | {model_ratio:.2f} |")
    print(
        "\nThe model's ratio is the table's diluted by the GPU-independent host time (data loading, "
        "per-sample overhead), which is the same on every GPU; deviations are therefore towards 1."
    )


#: BERT-large at 384 tokens: per token 2 x 302.3e6 non-embedding weights + 24 layers x 4 x 384 x 1024 for the
#: attention scores and the weighted values, x 384 tokens (as BERT-base in tools/build_throughput_table.py).
BERT_LARGE_FLOPS = 384 * (2 * 302.3e6 + 24 * 4 * 384 * 1024)


def print_bert_large_transfer(lambda_dir: Path) -> None:
    """Absolute speed on a model the table does not hold: BERT-large (3.5x BERT-base's FLOPs, other batches).

    Lambda's own BERT-large runs (``quality == ok``, harness generations converted to the table's level with
    the same factors) against the model's sequences/s for the same batch size, at FP32 (TF32 on, as Lambda
    ran) and FP16.
    """
    from tools.build_throughput_table import GPU_OF_LAMBDA, harness_factors, read_rows

    if not (lambda_dir / "gpu_training_throughput.csv").is_file():
        return
    rows = read_rows(lambda_dir)
    estimator = PreEstimator.default()
    print("\n### A model the throughput table does not hold: BERT-large on Lambda's GPUs\n")
    print(
        "Measured sequences/s (Lambda, same batch size) vs the model's; BERT-large has 3.5x BERT-base's "
        "FLOPs per sequence and ran at other batch sizes (1 to 256). Log error = log(model / measured).\n"
    )
    print("| precision | GPUs | median log error | median abs log error | 90% abs log error | worst GPU |")
    print("|---|---|---|---|---|---|")
    for precision, bucket in (("32-true", "fp32"), ("16-mixed", "fp16")):
        factors = harness_factors(rows, "bert_large_squad", bucket)
        per_gpu: dict[str, list[tuple[float, int]]] = {}
        for r in rows:
            name = GPU_OF_LAMBDA.get(r["gpu"])
            if name is None or r["workload"] != "bert_large_squad" or r["precision"] != bucket:
                continue
            if not r["batch_size"] or ";" in r["batch_size"]:
                continue
            value = float(r["throughput"]) * factors[r["harness"]]
            per_gpu.setdefault(name, []).append((value, int(r["batch_size"])))
        errors = {}
        for name, values in per_gpu.items():
            measured = float(np.median([v for v, _ in values]))
            batch = int(np.median([b for _, b in values]))
            model = ModelDescriptor(BERT_LARGE_FLOPS, (384,), precision=precision, matmul_tf32=True)
            est = estimator.predict(RunDescriptor(model, DataDescriptor(batch, 88_641), lookup_gpu(name)))
            errors[name] = math.log((88_641 / est.epoch_seconds) / measured)
        values = np.array(list(errors.values()))
        worst = max(errors, key=lambda g: abs(errors[g]))
        print(
            f"| {precision} | {len(values)} | {np.median(values):+.3f} | {np.median(np.abs(values)):.3f} | "
            f"{np.quantile(np.abs(values), 0.9):.3f} | {worst} ({errors[worst]:+.3f}) |"
        )
