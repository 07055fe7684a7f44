"""Wall-time overhead of EnergyCallback on a small CPU Lightning fit.

Runs the same fit (the quickstart's CNN on synthetic images) with no callback, with the default
``EnergyCallback()`` and with CodeCarbon's ``OfflineEmissionsTracker`` started and stopped around ``fit``,
alternating the three so that drifts in machine load hit them alike, and prints the median wall time of
each and its ratio to the run without a callback as a Markdown table.

    python benchmarks/overhead.py --runs 7 --epochs 4
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
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from quickstart import SmallCNN, synthetic_images

from lightning_energy import EnergyCallback


def fit_once(callbacks: list[pl.Callback], epochs: int, root: Path) -> None:
    pl.seed_everything(0, verbose=False)
    train = DataLoader(synthetic_images(2048, 10, seed=1), batch_size=64, shuffle=True)
    val = DataLoader(synthetic_images(512, 10, seed=2), batch_size=256)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=root,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=10,
    )
    trainer.fit(SmallCNN(), train, val)


def run_plain(epochs: int, root: Path) -> None:
    fit_once([], epochs, root)


def run_callback(epochs: int, root: Path) -> None:
    fit_once([EnergyCallback(history_path=False)], epochs, root)


def run_codecarbon(epochs: int, root: Path) -> None:
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(
        country_iso_code="DEU", output_dir=str(root), save_to_file=False, log_level="error"
    )
    tracker.start()
    try:
        fit_once([], epochs, root)
    finally:
        tracker.stop()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each variant (median taken)")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    variants: dict[str, Callable[[int, Path], None]] = {
        "no callback": run_plain,
        "EnergyCallback()": run_callback,
        "CodeCarbon OfflineEmissionsTracker": run_codecarbon,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        run_plain(1, Path(tmp) / "warmup")
        for i in range(args.runs):
            for name, run in variants.items():
                start = time.perf_counter()
                run(args.epochs, Path(tmp) / f"{i}-{len(times[name])}")
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["no callback"])
    lines = [
        f"Median of {args.runs} alternating runs, {args.epochs} epochs each, CPU, "
        f"{torch.get_num_threads()} threads.",
        "",
        "| variant | median wall time (s) | ratio of medians | median paired ratio |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        paired = statistics.median(v / b for v, b in zip(values, times["no callback"], strict=True))
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.3f} | {median / base:.4f} | {paired:.4f} |")
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
