"""The tables of ``benchmarks/pre_accuracy.py`` on what is known of the machines: the per-machine host
effect, a run history on the same machines (held-out architecture) and the cheapest GPU per configuration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmarks.pre_folds import FoldResult, ape, coverage_of, in_regime, known_factor_note
from lightning_energy.pre import Estimate
from lightning_energy.pre.physics import GPU_BOUND_SHARE
from tools.pre_dataset import Dataset


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
        known = "" if f is None else known_factor_note(f.selection)
        print(
            f"| {name} | {len(idx)} | {ape(pred, energy[idx]).mean():.1f} | "
            f"{np.median(ape(pred, energy[idx])):.1f} | {100 * covered:.0f} | x{width:.2f} | {known} | "
            f"{' | '.join(cells)} |"
        )


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
