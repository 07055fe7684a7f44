"""Wall-time overhead of EnergyCallback on a small CPU Lightning fit.

Runs the same fit (the quickstart's CNN on synthetic images) with no callback, with the default
``EnergyCallback()`` and with CodeCarbon's ``OfflineEmissionsTracker`` started and stopped around ``fit``,
alternating the three so that drifts in machine load hit them alike, and prints a Markdown table: median
wall time and process CPU time of each with their ratios to the run without a callback, and the share of
the wall time spent inside the tool's own code.

By default it prints the callback's cost hook by hook (per training batch, per epoch, at set-up, share of
the wall time) on a fit of ~1 ms batches against its budget, beside CodeCarbon's tracker (its background
thread's CPU time included): see ``benchmarks/hook_cost.py``; its last row is the stop forecast's cost per
evaluation, paid only under ``EarlyStopping`` (``StopForecaster.update()`` timed on its own, outside a fit).
``--fit`` runs the whole-fit comparison.

    python benchmarks/overhead.py                 # the hook-cost table (docs/overhead.md)
    python benchmarks/overhead.py --fit --runs 5 --epochs 10
    python benchmarks/overhead.py --fit --long-epoch    # one epoch of 2048 small batches: windows on
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from fit_harness import HookProfile, offline_tracker, quiet_trainer
from hook_cost import TYPICAL, hook_table
from quickstart import SmallCNN, synthetic_images

from lightning_energy import EnergyCallback
from lightning_energy.step.stop import StopForecaster

TRAIN_SAMPLES = 8192  # about 4 s per epoch on two cores: still far shorter than a real GPU epoch


BATCH_SIZE = {"short": 64, "long": 16}
LONG_EPOCH_SAMPLES = 32768  # 2048 batches of 16 in one epoch


def fit_once(callbacks: list[pl.Callback], epochs: int, root: Path, batch_size: int = 64) -> None:
    pl.seed_everything(0, verbose=False)
    samples = LONG_EPOCH_SAMPLES if batch_size == BATCH_SIZE["long"] else TRAIN_SAMPLES
    train = DataLoader(synthetic_images(samples, 10, seed=1), batch_size=batch_size, shuffle=True)
    val = DataLoader(synthetic_images(512, 10, seed=2), batch_size=256)
    quiet_trainer(callbacks, root, epochs, log_every_n_steps=10).fit(SmallCNN(), train, val)


def run_plain(epochs: int, root: Path, batch_size: int) -> float:
    fit_once([], epochs, root, batch_size)
    return 0.0


def run_callback(epochs: int, root: Path, batch_size: int, window_batches: int | None = None) -> float:
    callback = EnergyCallback(history_path=False, window_batches=window_batches)
    profile = HookProfile(callback)
    fit_once([callback], epochs, root, batch_size)
    return profile.total_s()


def run_callback_no_windows(epochs: int, root: Path, batch_size: int) -> float:
    return run_callback(epochs, root, batch_size, window_batches=0)


def run_codecarbon(epochs: int, root: Path, batch_size: int) -> float:
    tracker = offline_tracker(root)
    start = time.perf_counter()
    tracker.start()
    spent = time.perf_counter() - start
    try:
        fit_once([], epochs, root, batch_size)
    finally:
        start = time.perf_counter()
        tracker.stop()
        spent += time.perf_counter() - start
    return spent


def stop_forecast_ms(evaluations: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean ms per ``StopForecaster.update()`` (shipped constants, patience
    10) along a noisy power-law curve of ``evaluations`` evaluations (the run does not stop within it)."""
    rng = np.random.default_rng(0)
    values = 1.0 + 2.0 * np.arange(1, evaluations + 1) ** -0.7 + 0.003 * rng.standard_normal(evaluations)
    means = []
    for _ in range(repeats):
        forecaster = StopForecaster("min", patience=10)
        start = time.perf_counter()
        for value in values:
            forecaster.update(float(value))
        means.append((time.perf_counter() - start) / evaluations)
    return 1000 * statistics.median(means)


def stop_forecast_row() -> str:
    """The table row of the stop forecast's cost per evaluation (a Trainer with ``EarlyStopping`` only)."""
    return (
        "| per evaluation with `EarlyStopping` (the stop forecast: `StopForecaster.update()` timed on its "
        f"own, mean over a noisy curve of 20 / 60 evaluations, median of 5) | {stop_forecast_ms(20):.1f} / "
        f"{stop_forecast_ms(60):.1f} ms | not in the per-epoch budget (measured without `EarlyStopping`) | |"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=None, help="runs of each variant (median taken; default 3 hooks, 5 --fit)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 3 hooks, 10 --fit)")
    parser.add_argument(
        "--long-epoch",
        action="store_true",
        help="one epoch of 2048 batches of 16 (in-epoch windows at work) instead of epochs of 128 batches",
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=1000,
        help="training batches per epoch of the hook-cost fit (default 1000)",
    )
    parser.add_argument(
        "--typical-epochs",
        type=int,
        default=TYPICAL["epochs"],
        help=f"epochs of the typical fit the share is judged on (default {TYPICAL['epochs']})",
    )
    parser.add_argument(
        "--typical-batches",
        type=int,
        default=TYPICAL["batches"],
        help=f"batches per epoch of that fit (default {TYPICAL['batches']}: CIFAR-10 in batches of 32)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=8,
        help="A/B pairs of fits of typical length, with and without the callback, for the share (0: none)",
    )
    parser.add_argument("--fit", action="store_true", help="the whole-fit comparison instead of hook costs")
    args = parser.parse_args(argv)
    args.runs = args.runs or (5 if args.fit else 3)
    args.epochs = args.epochs or (10 if args.fit else 3)
    if not args.fit:
        warnings.filterwarnings("ignore")
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        torch.set_num_threads(2)
        table = hook_table(
            runs=args.runs,
            epochs=args.epochs,
            batches=args.batches,
            typical_epochs=args.typical_epochs,
            typical_batches=args.typical_batches,
            pairs=args.pairs,
        )
        table += "\n" + stop_forecast_row()
        print(table)
        return table
    batch_size = BATCH_SIZE["long" if args.long_epoch else "short"]
    if args.long_epoch:
        args.epochs = 1
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    variants: dict[str, Callable[[int, Path, int], float]] = {
        "no callback": run_plain,
        "EnergyCallback()": run_callback,
        "EnergyCallback(window_batches=0)": run_callback_no_windows,
        "CodeCarbon OfflineEmissionsTracker": run_codecarbon,
    }
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    inside: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in variants.items():  # imports and first-use costs are paid before timing
            run(1, Path(tmp) / f"warmup-{len(name)}", batch_size)
        for i in range(args.runs):
            for name, run in variants.items():
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                spent = run(args.epochs, Path(tmp) / f"{i}-{len(wall[name])}", batch_size)
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
                inside[name].append(spent / wall[name][-1])
    med = statistics.median
    batches = (LONG_EPOCH_SAMPLES if args.long_epoch else TRAIN_SAMPLES) // batch_size
    lines = [
        f"{args.runs} alternating runs of each variant, {args.epochs} epoch(s) each of "
        f"{batches} batches of {batch_size}, CPU, "
        f"{torch.get_num_threads()} threads. Wall time on a shared machine is noisy; process CPU time "
        "(all threads) is less so; the share of wall time spent inside the tool's own code (its hooks, or "
        "the tracker's start and stop) is the most precise measure of what it adds.",
        "",
        "| variant | median wall (s) | wall ratio | median CPU (s) | CPU ratio | time in the tool |",
        "|---|---|---|---|---|---|",
    ]
    for name in variants:
        wall_ratio = med(wall[name]) / med(wall["no callback"])
        cpu_ratio = med(cpu[name]) / med(cpu["no callback"])
        lines.append(
            f"| {name} | {med(wall[name]):.2f} | {wall_ratio:.4f} | {med(cpu[name]):.2f} | {cpu_ratio:.4f} "
            f"| {100 * med(inside[name]):.3f}% |"
        )
    lines += ["", "Raw wall times (s):"]
    lines += [f"- {name}: {[round(v, 2) for v in values]}" for name, values in wall.items()]
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
