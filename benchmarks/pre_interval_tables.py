"""The tables of ``benchmarks/pre_accuracy.py`` on the nested outer folds' errors and intervals: the outer
table, every candidate interval rule, the interval per held-out group and regime, and the figures per
predicted regime.
"""

from __future__ import annotations

import numpy as np

from benchmarks.pre_folds import (
    POOLED_CHOICE,
    REGIME_CANDIDATE,
    REGIMES,
    FoldResult,
    ape,
    coverage_of,
    in_regime,
    interval_label,
    regime_cells,
)
from lightning_energy.pre.physics import GPU_BOUND_SHARE
from tools.pre_dataset import Dataset
from tools.pre_select import Selection


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
