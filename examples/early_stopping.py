"""Early stopping: the expected total (stop forecast x energy per epoch) beside the ``max_epochs`` bound.

The quickstart's small CNN on synthetic images (CPU, no downloads), with ``EarlyStopping`` on the
validation accuracy (``stopping_threshold``) and a generous ``max_epochs``. Each epoch the callback
forecasts when the run will stop from the accuracy curve and logs ``energy/expected_kwh`` (progress bar:
``exp_<unit>``) next to STEP's projection to ``max_epochs`` (``proj_<unit>``). At the end this script
prints the expected total after every epoch beside the measured one: it converges as the stop nears.
Run it with ``python examples/early_stopping.py [--help]`` (about a minute on two cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quickstart import SmallCNN, synthetic_images

from lightning_energy import EnergyCallback, RunReport, load_report
from lightning_energy.units import format_energy


def main(argv: list[str] | None = None) -> RunReport:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--target", type=float, default=0.75, help="stop at this validation accuracy")
    parser.add_argument("--train-samples", type=int, default=768)
    parser.add_argument("--out", default="runs/early_stopping", help="root directory of the run's logs")
    args = parser.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    torch.set_num_threads(2)
    train = DataLoader(synthetic_images(args.train_samples, 10, seed=1), batch_size=64, shuffle=True)
    val = DataLoader(synthetic_images(512, 10, seed=2), batch_size=256)
    stopper = EarlyStopping(monitor="val_acc", mode="max", stopping_threshold=args.target, patience=20)
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=args.out,
        callbacks=[EnergyCallback(history_path=False), stopper],
        log_every_n_steps=10,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(SmallCNN(lr=5e-4), train, val)

    report = load_report(Path(trainer.log_dir or args.out))
    measured = report.totals.energy_j
    print(f"\nstopped after {len(report.epochs)} of {args.max_epochs} epochs")
    if measured is None:
        print("no energy measured")
        return report
    print(f"measured {format_energy(measured)}")
    bounds = {p.epoch: p.total_j for p in report.projections}
    for point in report.expected:
        bound = bounds.get(point.epoch)
        print(
            f"after epoch {point.epoch:3d}: expected {format_energy(point.total_j)} "
            f"[{format_energy(point.low_j)}, {format_energy(point.high_j)}], stop at epoch "
            f"{point.stop_epoch:.0f} ({abs(point.total_j - measured) / measured:.0%} off); max_epochs bound "
            + ("—" if bound is None else format_energy(bound))
        )
    return report


if __name__ == "__main__":
    main()
