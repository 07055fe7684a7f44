"""The nested outer folds of ``benchmarks/pre_accuracy.py`` and the figures its tables compute from them.

Outer folds: leave-one-GPU-out and leave-one-architecture-out on GAISSA's runs; in each, the selection runs
on the training part only (``tools/pre_select.select``), the model is fitted there and the held-out group
predicted, with the candidate intervals, the per-machine host effect and a run history (``predict_fold``);
the paper's kernel ridge is fitted on the same folds (``kernel_ridge``).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_energy.pre import Estimate
from lightning_energy.pre.physics import GPU_BOUND_SHARE
from tools.pre_dataset import Dataset, with_trainable
from tools.pre_fit import build_estimator
from tools.pre_interval import pooled_constants, regime_constants
from tools.pre_select import Selection, select

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


def known_factor_note(selection: Selection) -> str:
    """The known-machine host factor chosen on the training part, and the unseen machine's H."""
    choice = selection.interval
    unseen = (
        choice.regime.host_bound_host_factor if choice.by_regime and choice.regime else choice.host_factor
    )
    known = "-" if selection.known_host_factor is None else f"{selection.known_host_factor:g}"
    return f"{known} ({unseen:g})"
