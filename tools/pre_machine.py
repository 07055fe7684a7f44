"""The per-machine host effect: its ridge (``choose_machine_ridge``) and the host factor for a new model on a
machine a run history has measured (``choose_known_host_factor``), both chosen on the selection's group folds.

Research/fitting code (not part of the runtime package), used by ``tools/pre_select.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from lightning_energy.errors import EstimationError
from lightning_energy.pre import machine, physics
from lightning_energy.pre.model import PreEstimator
from tools.pre_dataset import Dataset, repeat_log_sigma, with_trainable
from tools.pre_interval import HOST_FACTORS, IntervalChoice, chosen_constants
from tools.pre_params import Fitted, Fold
from tools.pre_quantiles import TARGET_COVERAGE

#: Candidate ridges of the per-machine host effect (``lightning_energy.pre.machine.host_effect``), in units
#: of runs whose epoch time moves fully with it: inf is no effect (the pooled host parts for every machine).
MACHINE_RIDGES = (math.inf, 100.0, 30.0, 10.0, 3.0, 1.0)


def machine_shifts(
    ds: Dataset, fitted: Fitted, train: np.ndarray, test: np.ndarray, ridge: float
) -> np.ndarray:
    """Per run of ``test``: the host effect of its machine (GPU: GAISSA's GPUs each sit in their own host)
    estimated from the runs of ``train`` on that machine (``machine.host_effect``); 0 for a machine with no
    run in ``train``, or for an infinite ridge."""
    out = np.zeros(len(test))
    if math.isinf(ridge):
        return out
    for name in sorted(set(ds.gpu[test].tolist())):
        seen = train[ds.gpu[train] == name]
        if len(seen):
            f = ds.subset(seen, fitted.trainable)
            out[ds.gpu[test] == name] = machine.host_effect(fitted.theta, f, ds.log_t[seen], ridge)
    return out


def choose_machine_ridge(
    ds: Dataset, folds: Sequence[Fold], fits: Sequence[Fitted], ridges: Sequence[float] = MACHINE_RIDGES
) -> tuple[float, dict[float, float]]:
    """The ridge of the per-machine host effect, chosen on ``folds`` (each with its fit ``fits``): for each
    ridge the held-out runs get their machine's effect from the fold's training runs (``machine_shifts``),
    and the score is the mean over folds of the mean absolute log energy error (each fold weighing 1, as
    ``score_grid``). A fold whose group is a machine sees no run of it: its score is the same for every
    ridge. The lowest score wins; ties go to the larger ridge (no effect first)."""
    if not ridges or any(not r >= 0 for r in ridges):
        raise EstimationError(f"ridges must be >= 0 (inf: no effect), got {ridges!r}")
    order = sorted(set(ridges), reverse=True)
    scores = {}
    for ridge in order:
        per_fold = []
        for (_, _, train, test), fitted in zip(folds, fits, strict=True):
            t, p, _ = fitted.predict_log(ds, test, machine_shifts(ds, fitted, train, test, ridge))
            per_fold.append(float(np.abs(t + p - ds.log_e[test]).mean()))
        scores[ridge] = float(np.mean(per_fold))
    best = min(order, key=lambda r: (round(scores[r], 12), order.index(r)))
    return best, scores


def choose_known_host_factor(
    ds: Dataset,
    folds: Sequence[Fold],
    fits: Sequence[Fitted],
    choice: IntervalChoice,
    ridge: float,
    host_factors: Sequence[float] = HOST_FACTORS,
) -> tuple[float | None, dict[float, float]]:
    """The host factor H for a new model on a machine whose host effect a history measured.

    Judged on the leave-one-architecture-out folds of ``folds`` only (a held-out architecture's machines
    are in the fold's training part): each fold's fit (``fits``), with the chosen interval constants
    (``chosen_constants``) and the ridge ``ridge``, is calibrated on the fold's training runs as a history
    (``PreEstimator.calibrated_on``: the machine's host effect, then per-GPU offsets) and predicts the
    held-out runs. For each candidate factor below the unseen machine's H (the host/launch-bound one for a
    regime interval) the score is the lowest of the coverage averaged over the folds (each weighing 1) of
    all, of the GPU-bound and of the other runs on GPUs with measured speed; the smallest factor whose score
    reaches ``TARGET_COVERAGE`` is used (it applies only where it narrows, ``PreEstimator.log_q90``). None
    (the unseen machine's H) with no ridge (no effect is measured), fewer than two such folds, or no
    candidate reaching the target. Returns it and every candidate's score (the unseen H's under its own
    key)."""
    if math.isinf(ridge):
        return None, {}
    judged = [(fold, fitted) for fold, fitted in zip(folds, fits, strict=True) if fold[0] == "architecture"]
    if len(judged) < 2:
        return None, {}
    unseen = (
        choice.regime.host_bound_host_factor if choice.by_regime and choice.regime else choice.host_factor
    )
    candidates = sorted(h for h in set(host_factors) if 1.0 <= h < unseen)
    if not candidates:
        return None, {}
    constants = chosen_constants(choice, repeat_log_sigma(ds))
    covered: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {h: [] for h in [*candidates, unseen]}
    for (_, _, train, test), fitted in judged:
        estimator = PreEstimator(
            fitted.theta, fitted.phi, constants, selected={"machine_host_ridge": ridge}
        ).calibrated_on(
            [
                dataclasses.replace(
                    ds.runs[i], descriptor=with_trainable(ds.runs[i].descriptor, fitted.trainable)
                )
                for i in train
            ]
        )
        descriptors = [with_trainable(ds.runs[i].descriptor, fitted.trainable) for i in test]
        truth = np.exp(ds.log_e[test])
        keep = ds.features.speed_measured[test]
        for h in covered:
            interval = dataclasses.replace(constants, known_host_log_factor=math.log(h))
            est = dataclasses.replace(estimator, interval=interval).predict_many(descriptors)
            inside = np.array([x.low_j <= t <= x.high_j for x, t in zip(est, truth, strict=True)])
            bound = np.array([(x.gpu_busy_share or 0.0) >= physics.GPU_BOUND_SHARE for x in est])
            covered[h].append((inside[keep], bound[keep]))
    scores = {}
    for h, per_fold in covered.items():
        parts = [[float(np.mean(inside)) for inside, _ in per_fold if len(inside)]]
        for regime in (True, False):
            parts.append(
                [float(np.mean(inside[b == regime])) for inside, b in per_fold if (b == regime).any()]
            )
        scores[h] = min(float(np.mean(p)) for p in parts if p)
    reaching = [h for h in candidates if scores[h] >= TARGET_COVERAGE - 1e-12]
    return (min(reaching) if reaching else None), scores
