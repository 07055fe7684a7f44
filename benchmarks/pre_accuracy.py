"""PRE accuracy on the GAISSA data with nested selection, and the GPU-ratio consistency check.

Outer folds: leave-one-GPU-out and leave-one-architecture-out on ``pre_runs.csv``. In every outer fold the
prior weight and the interval constant are chosen on the training part only (its own GPU/architecture folds,
``tools/pre_select.select``), the model is fitted on the training part, and the held-out group is reported:
per-epoch energy and power MAPE, 90 % interval coverage and median width (high / low). The paper's kernel
ridge is fitted on the same outer folds for comparison. In-sample figures (fit and report on all runs) are
labelled as such. Then: predicted vs NVML-measured power per GPU, and the model's speed ratios between GPUs
against the throughput table's for the reference workloads.

Data: ``../shared/data/gaissa/`` (or ``$LIGHTNING_ENERGY_GAISSA``). ``--plots DIR`` writes
``pre_predicted_vs_measured.png``; ``--docs docs/pre.md`` writes the tables and the
``lightning-energy estimate`` examples into that page.
Run: ``PYTHONPATH=. .venv/bin/python benchmarks/pre_accuracy.py --plots docs/img --docs docs/pre.md`` (about
two to four minutes on two cores; ``--quick`` skips the Lambda leave-one-GPU-out refits and the power variants
of ``benchmarks/pre_power.py``, and cannot write the docs).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from benchmarks import pre_lambda, pre_power  # noqa: E402
from lightning_energy.pre import (  # noqa: E402
    DataDescriptor,
    Estimate,
    LabelledRun,
    ModelDescriptor,
    PreEstimator,
    RunDescriptor,
    lookup_gpu,
)
from lightning_energy.pre.physics import GPU_BOUND_SHARE  # noqa: E402
from lightning_energy.pre.throughput import measured_gpu_names, measured_samples_per_s  # noqa: E402
from tools.gaissa import default_gaissa_dir, load_gaissa_runs  # noqa: E402
from tools.perseus import default_perseus_dir  # noqa: E402
from tools.pre_dataset import Dataset, with_trainable  # noqa: E402
from tools.pre_fit import build_estimator, regime_note, trained_share_note  # noqa: E402
from tools.pre_interval import pooled_constants, regime_constants  # noqa: E402
from tools.pre_select import Selection, select  # noqa: E402

PAPER_FEATURES = (
    "batch_size",
    "total_ram_GB",
    "training_size",
    "validation_size",
    "GFLOPs",
    "image_size",
    "gpu_cuda_cores",
    "gpu_total_memory_GB",
    "gpu_max_power_W_spec",
)
#: Reference workloads of the throughput table, as descriptors (ImageNet-1k and SQuAD v1.1 train sets).
REFERENCE_RUNS = {
    "ResNet-50": (ModelDescriptor(8.18e9, (3, 224, 224)), DataDescriptor(256, 1_281_167), "conv"),
    "BERT-base": (ModelDescriptor(7.07e10, (384,), matmul_tf32=True), DataDescriptor(32, 88_641), "matmul"),
}
RATIO_BASE_GPU = "A100 80GB SXM4"
#: Extra candidates of the interval-rules table: the pooled (rule, H) choice of the v5.4 procedure and the
#: best regime-conditional (Mondrian) candidate, both chosen on the training part only.
POOLED_CHOICE, REGIME_CANDIDATE = "pooled choice (v5.4 procedure)", "best regime candidate"
REGIMES = (("GPU-bound (busy >= 80%)", True), ("host/launch-bound", False))


@dataclass(frozen=True)
class FoldResult:
    kind: str
    group: str
    test: np.ndarray
    estimates: list[Estimate]
    selection: Selection
    krr_energy: np.ndarray
    krr_power: np.ndarray
    calibrated: list[Estimate]
    #: the same fit with each candidate interval rule's constant at the pooled choice's H, the pooled
    #: choice (``POOLED_CHOICE``) and the best regime candidate (``REGIME_CANDIDATE``; all computed on the
    #: training part)
    candidates: dict[str, list[Estimate]]
    #: the same fit with each machine's host effect estimated from the training runs on it
    #: (``PreEstimator.machine_effects_on``, the ridge selected on the training part; none for an unseen one)
    machine: list[Estimate]
    #: ``calibrated`` with the unseen machine's host factor for every run (no known-machine factor: v5.4)
    calibrated_unseen: list[Estimate]


def paper_matrix(path: Path) -> np.ndarray:
    with (path / "pre_runs.csv").open(newline="") as handle:
        return np.array([[float(row[c]) for c in PAPER_FEATURES] for row in csv.DictReader(handle)])


def kernel_ridge(
    x: np.ndarray, targets: Sequence[np.ndarray], train: np.ndarray, test: np.ndarray
) -> list[np.ndarray]:
    """The paper's kernel ridge (RBF, alpha 6.64e-4, gamma 0.0442, z-scored features)."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x[train])
    out = []
    for target in targets:
        krr = KernelRidge(kernel="rbf", alpha=6.64e-4, gamma=0.0442).fit(
            scaler.transform(x[train]), target[train]
        )
        out.append(krr.predict(scaler.transform(x[test])))
    return out


def predict_fold(
    ds: Dataset, train: np.ndarray, test: np.ndarray
) -> tuple[
    list[Estimate], Selection, list[Estimate], dict[str, list[Estimate]], list[Estimate], list[Estimate]
]:
    """Nested: select on ``train`` only, fit on ``train``, predict ``test`` (GAISSA nuisance applied).

    The third result: the same estimator calibrated on the training runs as a run history
    (``PreEstimator.calibrated_on``: a per-GPU offset and spread), as for a user who trained other models
    on the same machines before. The fourth: the estimates with each candidate interval rule's constant.
    The fifth: with only each machine's host effect from the training runs on it
    (``PreEstimator.machine_effects_on``, ridge selected on the training part). The sixth: the third
    with the unseen machine's host factor for every run (no known-machine factor, as v5.4).
    """
    selection = select(ds, train)
    estimator, fitted = build_estimator(ds, train, selection)
    descriptors = [with_trainable(ds.runs[i].descriptor, fitted.trainable) for i in test]
    history = [
        dataclasses.replace(ds.runs[i], descriptor=with_trainable(ds.runs[i].descriptor, fitted.trainable))
        for i in train
    ]
    calibrated = estimator.calibrated_on(history).predict_many(descriptors)
    choice, repeat = selection.interval, estimator.interval.repeat_log_sigma
    intervals = {rule: pooled_constants(choice, repeat, rule) for rule in choice.values}
    intervals[POOLED_CHOICE] = pooled_constants(choice, repeat)
    if choice.regime is not None:
        intervals[REGIME_CANDIDATE] = regime_constants(choice, repeat)
    candidates = {
        name: dataclasses.replace(estimator, interval=interval).predict_many(descriptors)
        for name, interval in intervals.items()
    }
    machine = estimator.machine_effects_on(history).predict_many(descriptors)
    unseen = dataclasses.replace(
        estimator, interval=dataclasses.replace(estimator.interval, known_host_log_factor=None)
    )
    calibrated_unseen = unseen.calibrated_on(history).predict_many(descriptors)
    return estimator.predict_many(descriptors), selection, calibrated, candidates, machine, calibrated_unseen


def outer_folds(ds: Dataset, x_paper: np.ndarray) -> list[FoldResult]:
    energy = np.exp(ds.log_e)
    power = np.exp(ds.log_p)
    results = []
    every = np.arange(len(ds.runs))
    for kind, labels in (("leave-one-GPU-out", ds.gpu), ("leave-one-architecture-out", ds.architecture)):
        for group in sorted(set(labels.tolist())):
            test, train = every[labels == group], every[labels != group]
            estimates, selection, calibrated, candidates, machine, unseen = predict_fold(ds, train, test)
            krr_e, krr_p = kernel_ridge(x_paper, (energy, power), train, test)
            results.append(
                FoldResult(
                    kind,
                    group,
                    test,
                    estimates,
                    selection,
                    krr_e,
                    krr_p,
                    calibrated,
                    candidates,
                    machine,
                    unseen,
                )
            )
    return results


def ape(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(pred / truth - 1.0) * 100.0


def print_outer_table(ds: Dataset, folds: list[FoldResult]) -> None:
    energy, power = np.exp(ds.log_e), np.exp(ds.log_p)
    print("### Nested outer folds: held-out group, selection on the training part only\n")
    print(
        "| split | held out | runs | prior weight, overlap (selection rule) | "
        "interval rule, host factor: q90 (log) | energy MAPE % | "
        "energy median APE % | power MAPE % | 90% coverage % | median width (high/low) | KRR energy MAPE % | "
        "KRR power MAPE % |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f in folds:
        e = np.array([x.epoch_energy_j for x in f.estimates])
        p = np.array([x.power_w for x in f.estimates])
        covered = np.array(
            [x.low_j <= energy[i] <= x.high_j for x, i in zip(f.estimates, f.test, strict=True)]
        )
        width = np.median([x.high_j / x.low_j for x in f.estimates])
        print(
            f"| {f.kind} | {f.group} | {len(f.test)} | {f.selection.prior_weight:g}, "
            f"{f.selection.overlap:g} ({f.selection.rule}) | {interval_label(f.selection)} | "
            f"{ape(e, energy[f.test]).mean():.1f} | {np.median(ape(e, energy[f.test])):.1f} | "
            f"{ape(p, power[f.test]).mean():.1f} | {100 * covered.mean():.0f} | x{width:.2f} | "
            f"{ape(f.krr_energy, energy[f.test]).mean():.1f} | {ape(f.krr_power, power[f.test]).mean():.1f} |"
        )
    for kind in ("leave-one-GPU-out", "leave-one-architecture-out"):
        chosen = [f for f in folds if f.kind == kind]
        idx = np.concatenate([f.test for f in chosen])
        est = [x for f in chosen for x in f.estimates]
        e = np.array([x.epoch_energy_j for x in est])
        p = np.array([x.power_w for x in est])
        covered = np.mean([x.low_j <= energy[i] <= x.high_j for x, i in zip(est, idx, strict=True)])
        fold_cover = np.mean([coverage_of(f.estimates, energy[f.test]) for f in chosen])
        fold_mean = np.mean(
            [ape(np.array([x.epoch_energy_j for x in f.estimates]), energy[f.test]).mean() for f in chosen]
        )
        print(
            f"| {kind} | **all runs pooled** | {len(idx)} | | | {ape(e, energy[idx]).mean():.1f} "
            f"(fold mean {fold_mean:.1f}) | {np.median(ape(e, energy[idx])):.1f} | "
            f"{ape(p, power[idx]).mean():.1f} | "
            f"{100 * covered:.0f} (fold mean {100 * fold_cover:.0f}) | "
            f"x{np.median([x.high_j / x.low_j for x in est]):.2f} | | |"
        )


def interval_label(selection: Selection) -> str:
    """The chosen interval and its q90 (log): per regime (GPU-bound/other) when the regime candidate won."""
    choice = selection.interval
    if choice.by_regime and choice.regime is not None:
        r = choice.regime
        return f"{choice.label}: {r.gpu_bound_log_q90:.2f}/{r.host_bound_log_q90:.2f}"
    return f"{choice.label}: {selection.model_log_q90:.2f}"


def in_regime(estimates: Sequence[Estimate], gpu_bound: bool) -> np.ndarray:
    """Which estimates are predicted in the regime (True: GPU-bound, busy share >= GPU_BOUND_SHARE)."""
    return np.array([(x.gpu_busy_share or 0.0) >= GPU_BOUND_SHARE for x in estimates]) == gpu_bound


def regime_cells(estimates: Sequence[Estimate], truth: np.ndarray) -> str:
    """``coverage % / width`` of the GPU-bound and of the other runs, as two table cells."""
    cells = []
    for _, bound in REGIMES:
        mask = in_regime(estimates, bound)
        if not mask.any():
            cells.append("-")
            continue
        chosen = [x for x, m in zip(estimates, mask, strict=True) if m]
        width = np.median([x.high_j / x.low_j for x in chosen])
        cells.append(f"{100 * coverage_of(chosen, truth[mask]):.0f} / x{width:.2f}")
    return " | ".join(cells)


def coverage_of(estimates: Sequence[Estimate], truth: np.ndarray) -> float:
    """Share of runs whose measured energy lies in the 90 % interval."""
    return float(np.mean([x.low_j <= t <= x.high_j for x, t in zip(estimates, truth, strict=True)]))


def print_interval_rules(ds: Dataset, folds: list[FoldResult]) -> None:
    """Outer-fold coverage and width of every candidate interval rule, each computed on the training part
    only; the shipped procedure uses the one chosen on the training part's own groups (``chosen``)."""
    energy = np.exp(ds.log_e)
    print("\n#### Interval rules on the outer folds (each constant computed on the training part only)\n")
    print(
        "The interval rule is chosen in each outer fold on the training part's groups, each held out once "
        "more (`tools/pre_interval.choose_interval_rule`); the rows below show what each candidate would "
        "have given, for comparison. The rule rows are pooled at the pooled choice's H; the pooled choice is "
        "what the v5.4 procedure (pooled candidates only) would ship; the best regime candidate is the "
        "regime-conditional (Mondrian) interval, `q_model` and H per predicted regime, that the selection "
        "compared with it (chosen only where it reached 90 % and was narrower on the training part's "
        "groups). Pooled: every held-out run weighs 1 (RTX 3070 and inception_v3 hold half "
        "and three quarters of the runs); fold mean: every held-out group weighs 1. The last two columns: "
        "pooled coverage % / median width of the runs predicted GPU-bound and of the others.\n"
    )
    print(
        "| split | rule | chosen in folds | pooled coverage % | fold-mean coverage % | "
        "median width (high/low) | coverage % per held-out group | GPU-bound (busy >= 80%) | "
        "host/launch-bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in ("leave-one-GPU-out", "leave-one-architecture-out"):
        chosen = [f for f in folds if f.kind == kind]
        names = [name for name in chosen[0].candidates if all(name in f.candidates for f in chosen)]
        for rule in (*names, "chosen"):
            per_fold = [f.estimates if rule == "chosen" else f.candidates[rule] for f in chosen]
            pooled = [x for est in per_fold for x in est]
            idx = np.concatenate([f.test for f in chosen])
            covs = [coverage_of(est, energy[f.test]) for est, f in zip(per_fold, chosen, strict=True)]
            times = sum(_chosen_as(f.selection, rule) for f in chosen)
            groups = ", ".join(f"{f.group} {100 * c:.0f}" for f, c in zip(chosen, covs, strict=True))
            print(
                f"| {kind} | {'**chosen (shipped procedure)**' if rule == 'chosen' else rule} | "
                f"{len(chosen) if rule == 'chosen' else times} of {len(chosen)} | "
                f"{100 * coverage_of(pooled, energy[idx]):.0f} | {100 * np.mean(covs):.0f} | "
                f"x{np.median([x.high_j / x.low_j for x in pooled]):.2f} | {groups} | "
                f"{regime_cells(pooled, energy[idx])} |"
            )


def _chosen_as(selection: Selection, name: str) -> bool:
    """Whether the fold's shipped interval is the candidate ``name`` of the interval-rules table."""
    choice = selection.interval
    if name == REGIME_CANDIDATE:
        return choice.by_regime
    if name == POOLED_CHOICE:
        return not choice.by_regime
    return not choice.by_regime and choice.rule == name


def print_interval_groups(ds: Dataset, folds: list[FoldResult]) -> None:
    """Per outer fold and predicted regime: coverage and width of the pooled choice and of the shipped one."""
    energy = np.exp(ds.log_e)
    print("\n#### Interval per held-out group and predicted regime (nested outer folds)\n")
    print(
        "Each fold's intervals as chosen on its training part: the pooled choice of the v5.4 procedure and "
        "the shipped procedure's choice (the regime-conditional candidate where it won). Cells: 90% "
        "coverage % / median width (high/low). The best regime candidate of each fold is named even where "
        "it was not chosen.\n"
    )
    print(
        "| split | held out | best regime candidate (training part; q90 GPU-bound/other) | regime | runs | "
        "pooled choice (v5.4 procedure) | chosen (shipped procedure) |"
    )
    print("|---|---|---|---|---|---|---|")
    for f in folds:
        regime = f.selection.interval.regime
        name = "-"
        if regime is not None:
            name = (
                f"{regime.label}: {regime.gpu_bound_log_q90:.2f}/{regime.host_bound_log_q90:.2f}"
                f"{' (chosen)' if f.selection.interval.by_regime else ''}"
            )
        truth = energy[f.test]
        for label, bound in REGIMES:
            mask = in_regime(f.estimates, bound)
            if not mask.any():
                continue
            cells = []
            for est in (f.candidates[POOLED_CHOICE], f.estimates):
                kept = [x for x, m in zip(est, mask, strict=True) if m]
                width = np.median([x.high_j / x.low_j for x in kept])
                cells.append(f"{100 * coverage_of(kept, truth[mask]):.0f} / x{width:.2f}")
            print(
                f"| {f.kind} | {f.group} | {name} | {label} | {int(mask.sum())} | {cells[0]} | {cells[1]} |"
            )


def print_regimes(ds: Dataset, folds: list[FoldResult]) -> None:
    """Outer-fold error, coverage and width per predicted regime (one interval constant for both)."""
    energy = np.exp(ds.log_e)
    print("\n#### By predicted regime (nested outer folds, pooled)\n")
    print("| split | regime | runs | energy median APE % | 90% coverage % | median width (high/low) |")
    print("|---|---|---|---|---|---|")
    for kind in ("leave-one-GPU-out", "leave-one-architecture-out"):
        pairs = [(x, i) for f in folds if f.kind == kind for x, i in zip(f.estimates, f.test, strict=True)]
        for regime, keep in (
            ("GPU-bound (busy >= 80%)", lambda x: x.gpu_busy_share >= GPU_BOUND_SHARE),
            ("host/launch-bound", lambda x: x.gpu_busy_share < GPU_BOUND_SHARE),
            ("GPU speed measured", lambda x: x.speed_source == "measured"),
            ("GPU speed from the fallback", lambda x: x.speed_source != "measured"),
        ):
            chosen = [(x, i) for x, i in pairs if keep(x)]
            if not chosen:
                continue
            pred = np.array([x.epoch_energy_j for x, _ in chosen])
            truth = energy[[i for _, i in chosen]]
            covered = np.mean([x.low_j <= energy[i] <= x.high_j for x, i in chosen])
            width = np.median([x.high_j / x.low_j for x, _ in chosen])
            print(
                f"| {kind} | {regime} | {len(chosen)} | {np.median(ape(pred, truth)):.1f} | "
                f"{100 * covered:.0f} | x{width:.2f} |"
            )


def _figures(est: Sequence[Estimate], truth: np.ndarray) -> str:
    pred = np.array([x.epoch_energy_j for x in est])
    errors = ape(pred, truth)
    covered = np.mean([x.low_j <= t <= x.high_j for x, t in zip(est, truth, strict=True)])
    width = np.median([x.high_j / x.low_j for x in est])
    return f"{errors.mean():.1f} / {np.median(errors):.1f} / {100 * covered:.0f} / x{width:.2f}"


def print_machine_effect(ds: Dataset, folds: list[FoldResult]) -> None:
    """Outer folds without and with the per-machine host effect (``lightning_energy.pre.machine``)."""
    energy = np.exp(ds.log_e)
    print("\n#### Per-machine host effect (nested outer folds)\n")
    print(
        "Each machine's (GAISSA: each GPU's host) shared log factor on the per-step overhead and the host "
        "cost per sample, estimated from the training runs on that machine and shrunk towards the pooled "
        "value by a ridge chosen on the training part's own group folds "
        "(`tools/pre_machine.choose_machine_ridge`; inf: none). A held-out GPU is a machine never seen: it "
        "gets the pooled value, so its figures cannot move. The interval constants are the fold's own (not "
        "recalibrated for the effect). Cells: energy MAPE % / median APE % / 90% coverage % / median width, "
        "pooled -> with the effect.\n"
    )
    print(
        "| split | held out | runs | ridge (inner scores: none -> chosen) | pooled host parts | "
        "with machine effect |"
    )
    print("|---|---|---|---|---|---|")
    for f in folds:
        sel = f.selection
        inner = (
            f"{sel.machine_scores[math.inf]:.3f} -> {sel.machine_scores[sel.machine_ridge]:.3f}"
            if sel.machine_scores
            else "-"
        )
        truth = energy[f.test]
        print(
            f"| {f.kind} | {f.group} | {len(f.test)} | {sel.machine_ridge:g} ({inner}) | "
            f"{_figures(f.estimates, truth)} | {_figures(f.machine, truth)} |"
        )
    for kind in ("leave-one-GPU-out", "leave-one-architecture-out"):
        chosen = [f for f in folds if f.kind == kind]
        idx = np.concatenate([f.test for f in chosen])
        before = [x for f in chosen for x in f.estimates]
        after = [x for f in chosen for x in f.machine]
        print(
            f"| {kind} | **all runs pooled** | {len(idx)} | | {_figures(before, energy[idx])} | "
            f"{_figures(after, energy[idx])} |"
        )
        for regime, keep in (
            ("GPU-bound (busy >= 80%)", lambda x: x.gpu_busy_share >= GPU_BOUND_SHARE),
            ("host/launch-bound", lambda x: x.gpu_busy_share < GPU_BOUND_SHARE),
        ):
            # the regime of the pooled prediction, so that both columns hold the same runs
            mask = np.array([keep(x) for x in before])
            if not mask.any():
                continue
            b = [x for x, m in zip(before, mask, strict=True) if m]
            a = [x for x, m in zip(after, mask, strict=True) if m]
            print(
                f"| {kind} | {regime} | {int(mask.sum())} | | {_figures(b, energy[idx[mask]])} | "
                f"{_figures(a, energy[idx[mask]])} |"
            )


def print_calibrated(ds: Dataset, folds: list[FoldResult]) -> None:
    """Held-out architecture, the training runs serving as a history of the same machines (calibration)."""
    energy = np.exp(ds.log_e)
    print("\n#### With a run history on the same machines (held-out architecture)\n")
    print(
        "The training part of each leave-one-architecture-out fold serves as the run history "
        "(`PreEstimator.calibrated_on`: the machine's host effect, then a per-GPU offset and spread), as for "
        "a user who trained other models "
        "on the same machines before; the held-out architecture is still unseen. Known-machine H: the host "
        "factor for a new model on a machine whose host effect the history measured, chosen on the training "
        "part's own architecture folds (`tools/pre_machine.choose_known_host_factor`; '-': none, the unseen "
        "machine's H stays). The last three columns: 90% coverage % / median width with the unseen machine's "
        "H for every run (v5.4) -> with the known-machine H, all runs and per predicted regime.\n"
    )
    print(
        "| held out | runs | energy MAPE % | energy median APE % | 90% coverage % | "
        "median width (high/low) | known-machine H (unseen H) | all runs: unseen H -> known-machine H | "
        "GPU-bound (busy >= 80%) | host/launch-bound |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    chosen = [f for f in folds if f.kind == "leave-one-architecture-out"]
    for f in [*chosen, None]:
        parts = chosen if f is None else [f]
        idx = np.concatenate([g.test for g in parts])
        est = [x for g in parts for x in g.calibrated]
        pred = np.array([x.epoch_energy_j for x in est])
        covered = np.mean([x.low_j <= energy[i] <= x.high_j for x, i in zip(est, idx, strict=True)])
        width = np.median([x.high_j / x.low_j for x in est])
        name = "**all runs pooled**" if f is None else f.group
        before = [x for g in parts for x in g.calibrated_unseen]
        cells = []
        for mask in (
            np.ones(len(est), dtype=bool),
            in_regime(before, True),
            in_regime(before, False),
        ):
            if not mask.any():
                cells.append("-")
                continue
            pair = []
            for values in (before, est):
                kept = [x for x, m in zip(values, mask, strict=True) if m]
                width_k = np.median([x.high_j / x.low_j for x in kept])
                pair.append(f"{100 * coverage_of(kept, energy[idx[mask]]):.0f} / x{width_k:.2f}")
            cells.append(" -> ".join(pair))
        known = "" if f is None else _known_factor(f.selection)
        print(
            f"| {name} | {len(idx)} | {ape(pred, energy[idx]).mean():.1f} | "
            f"{np.median(ape(pred, energy[idx])):.1f} | {100 * covered:.0f} | x{width:.2f} | {known} | "
            f"{' | '.join(cells)} |"
        )


def _known_factor(selection: Selection) -> str:
    """The known-machine host factor chosen on the training part, and the unseen machine's H."""
    choice = selection.interval
    unseen = (
        choice.regime.host_bound_host_factor if choice.by_regime and choice.regime else choice.host_factor
    )
    known = "-" if selection.known_host_factor is None else f"{selection.known_host_factor:g}"
    return f"{known} ({unseen:g})"


def print_cheapest_gpu(ds: Dataset, folds: list[FoldResult]) -> None:
    """Which GPU is cheapest for a configuration measured on several GPUs.

    One model must rank all GPUs of a configuration, as for a user: the predictions of the fold that held
    the configuration's architecture out (the GPUs were in its training part), and of the fold that held
    each GPU out (a different model per GPU: the harder, mixed case).
    """
    energy = np.exp(ds.log_e)
    by_kind = {
        kind: np.full(len(ds.runs), np.nan) for kind in ("leave-one-architecture-out", "leave-one-GPU-out")
    }
    krr = np.full(len(ds.runs), np.nan)
    history = np.full(len(ds.runs), np.nan)
    for f in folds:
        by_kind[f.kind][f.test] = [x.epoch_energy_j for x in f.estimates]
        if f.kind == "leave-one-architecture-out":
            krr[f.test] = f.krr_energy
            history[f.test] = [x.epoch_energy_j for x in f.calibrated]
    configs: dict[tuple[object, ...], dict[str, list[int]]] = {}
    for i, run in enumerate(ds.runs):
        d = run.descriptor
        key = (run.architecture, run.dataset, d.model.input_shape, d.data.batch_size)
        configs.setdefault(key, {}).setdefault(run.gpu_name, []).append(i)
    rows = []
    right = dict.fromkeys([*by_kind, "krr", "history"], 0)
    for key, by_gpu in sorted(configs.items(), key=lambda kv: str(kv[0])):
        if len(by_gpu) < 2:
            continue
        measured = {g: float(np.median(energy[ix])) for g, ix in by_gpu.items()}
        truth = min(measured, key=measured.__getitem__)
        picks = {}
        for name, values in (*by_kind.items(), ("krr", krr), ("history", history)):
            predicted = {g: float(np.median(values[ix])) for g, ix in by_gpu.items()}
            picks[name] = min(predicted, key=predicted.__getitem__)
            right[name] += picks[name] == truth
        gap = sorted(measured.values())[1] / sorted(measured.values())[0] - 1.0
        rows.append((key, truth, picks, gap))
    n = len(rows)
    print("\n### Cheapest GPU for a configuration measured on two or more GPUs\n")
    print(
        f"{n} configurations. One model per configuration, fitted without its architecture: PRE picks the "
        f"cheapest GPU for **{right['leave-one-architecture-out']} of {n}**, the paper's KRR (same folds) "
        f"for {right['krr']} of {n} (it learns each machine from the other architectures' runs); PRE "
        f"calibrated on those runs as a history: {right['history']} of {n}. Each GPU predicted by a model "
        f"fitted without that GPU: PRE {right['leave-one-GPU-out']} of {n}.\n"
    )
    print(
        "| architecture | data set | input | batch | cheapest (measured) "
        "| PRE's pick (architecture held out) | measured gap to 2nd |"
    )
    print("|---|---|---|---|---|---|---|")
    for (arch, dataset, shape, batch), truth, picks, gap in rows:
        pick = picks["leave-one-architecture-out"]
        print(
            f"| {arch} | {dataset} | {shape[-1]} px | {batch} | {truth} | {pick}"
            f"{'' if pick == truth else ' (wrong)'} | {100 * gap:.0f} % |"
        )


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
        f"known-machine host factor {_known_factor(selection)}), "
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


def write_plot(out: Path, ds: Dataset, folds: list[FoldResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    energy = np.exp(ds.log_e) / 1e3
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, kind in zip(axes, ("leave-one-GPU-out", "leave-one-architecture-out"), strict=True):
        for f in (f for f in folds if f.kind == kind):
            pred = np.array([x.epoch_energy_j for x in f.estimates]) / 1e3
            low = np.array([x.low_j for x in f.estimates]) / 1e3
            high = np.array([x.high_j for x in f.estimates]) / 1e3
            ax.errorbar(
                energy[f.test],
                pred,
                yerr=[pred - low, high - pred],
                fmt="o",
                ms=3,
                alpha=0.5,
                elinewidth=0.5,
                label=f.group,
            )
        lim = [energy.min() / 3, energy.max() * 3]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            xlim=lim,
            ylim=lim,
            title=f"{kind} (nested; bars: 90% interval)",
            xlabel="measured per-epoch energy (kJ)",
            ylabel="predicted (kJ)",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "pre_predicted_vs_measured.png", dpi=100)
    plt.close(fig)


#: ``lightning-energy estimate`` examples of docs/pre.md: ImageNet-1k for 90 epochs, SQuAD v1.1 for 2.
DOC_GPUS = (
    "A100 40GB PCIe",
    "A100 80GB SXM4",
    "H100 PCIe",
    "H100 SXM",
    "L4",
    "L40S",
    "A10",
    "T4",
    "RTX A6000",
    "RTX 4090",
    "A40",
    "V100 PCIe",
    "V100 SXM2",
    "Quadro RTX 6000",
)
DOC_ESTIMATES = (
    (
        "ResNet-50, ImageNet-1k",
        "--gflops 8.18 --input-shape 3,224,224 --batch-size 256 --train-samples 1281167 "
        "--val-samples 50000 --epochs 90",
    ),
    (
        "BERT-base fine-tuning, SQuAD v1.1 (384 tokens)",
        "--gflops 70.7 --input-shape 384 --batch-size 32 --train-samples 88641 --epochs 2",
    ),
)
BEGIN, END = "<!-- BEGIN pre_accuracy -->", "<!-- END pre_accuracy -->"
BEGIN_ESTIMATES, END_ESTIMATES = "<!-- BEGIN pre_estimates -->", "<!-- END pre_estimates -->"


def estimate_examples() -> str:
    """The docs' ``lightning-energy estimate`` outputs, run in this process with the shipped model."""
    from lightning_energy.cli import main as cli_main

    out = []
    for precision, flags in (("32-true", ""), ("32-true", " --tf32"), ("16-mixed", "")):
        for title, args in DOC_ESTIMATES:
            if flags and "384" not in args:
                continue  # TF32 changes matmuls only: ResNet-50's convolutions use it by default
            argv = ["estimate", *args.split(), "--precision", precision, *flags.split()]
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                cli_main([*argv, *(x for gpu in DOC_GPUS for x in ("--gpu", gpu))])
            shown = f"$ lightning-energy {' '.join(argv)} --gpu ..."
            out.append(
                f"#### {title}, {precision}{flags}\n\n```text\n{shown}\n{buffer.getvalue().rstrip()}\n```\n"
            )
    return "\n".join(out)


def replace_between(path: Path, begin: str, end: str, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{section.rstrip()}\n{end}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_gaissa_dir(REPO))
    parser.add_argument("--lambda-data", type=Path, default=REPO.parent / "shared" / "data" / "lambda")
    parser.add_argument("--perseus-data", type=Path, default=default_perseus_dir(REPO))
    parser.add_argument("--plots", type=Path, help="write the docs figure into this folder (e.g. docs/img)")
    parser.add_argument(
        "--docs", type=Path, help="write the tables and examples into this page (docs/pre.md)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the Lambda leave-one-GPU-out refits and the power variants (faster); not with --docs",
    )
    args = parser.parse_args(argv)
    if args.quick and args.docs is not None:
        parser.error("--docs needs the full run: drop --quick")
    if not (args.data / "pre_runs.csv").is_file():
        print(f"skipped: GAISSA data not found at {args.data} (set LIGHTNING_ENERGY_GAISSA)")
        return 0
    runs: list[LabelledRun] = load_gaissa_runs(args.data)
    ds = Dataset.from_runs(runs)
    folds = outer_folds(ds, paper_matrix(args.data))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_outer_table(ds, folds)
        print_interval_rules(ds, folds)
        print_interval_groups(ds, folds)
        print_regimes(ds, folds)
        print_machine_effect(ds, folds)
        print_calibrated(ds, folds)
        print_cheapest_gpu(ds, folds)
        shipped = print_in_sample(ds)
        print_power_per_gpu(ds, folds, PreEstimator.default())
        if not args.quick:
            pre_power.run(args.data, args.perseus_data)
        print_ratio_check(shipped)
        print_bert_large_transfer(args.lambda_data)
        pre_lambda.run(args.lambda_data, args.plots, quick=args.quick)
    print(buffer.getvalue(), end="")
    if args.plots is not None:
        write_plot(args.plots, ds, folds)
    if args.docs is not None:
        replace_between(args.docs, BEGIN, END, buffer.getvalue())
        replace_between(args.docs, BEGIN_ESTIMATES, END_ESTIMATES, estimate_examples())
    return 0


if __name__ == "__main__":
    sys.exit(main())
