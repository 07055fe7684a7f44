"""Quickstart: a small real training on the CPU with the default ``EnergyCallback()``.

Synthetic data (no downloads): 32x32 images of noisy class-specific patterns, a small CNN, 20 epochs in
under a minute on two lightly loaded cores. The progress bar shows the energy so far and the projected
total (``proj_``) in a unit that suits the run (``Wh`` or ``mWh`` here); TensorBoard logs,
``energy_report.json`` and ``energy_epochs.csv`` land in the run's log directory. Run it with ``make demo`` or
``python examples/quickstart.py --help``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_energy import EnergyCallback, RunReport, load_report
from lightning_energy.units import format_energy, format_mass


def synthetic_images(n: int, classes: int, seed: int) -> TensorDataset:
    """``n`` noisy 1x32x32 images: each class is a fixed random pattern, each sample a shifted, noisy copy."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, classes, (n,), generator=gen)
    shifts = torch.randint(-3, 4, (n, 2), generator=gen)
    images = torch.stack(
        [
            torch.roll(patterns[y], shifts=(int(dx), int(dy)), dims=(1, 2))
            for y, (dx, dy) in zip(labels, shifts, strict=True)
        ]
    )
    images = images + 1.5 * torch.randn(images.shape, generator=gen)
    return TensorDataset(images, labels)


class SmallCNN(pl.LightningModule):
    def __init__(self, classes: int = 10, lr: float = 2e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 8 * 8, 64),
            nn.ReLU(),
            nn.Linear(64, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> RunReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-samples", type=int, default=3072)
    parser.add_argument("--country", default="DEU", help="ISO country code for CO2, or grams CO2e/kWh")
    parser.add_argument("--out", default="runs/quickstart", help="root directory of the run's logs")
    parser.add_argument("--no-history", action="store_true", help="do not append to the run history")
    args = parser.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    torch.set_num_threads(2)
    train = DataLoader(synthetic_images(args.train_samples, 10, seed=1), batch_size=64, shuffle=True)
    val = DataLoader(synthetic_images(1024, 10, seed=2), batch_size=256)
    try:
        intensity: float | str = float(args.country)
    except ValueError:
        intensity = args.country
    callback = EnergyCallback(carbon_intensity=intensity, history_path=False if args.no_history else None)
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=args.out,
        callbacks=[callback],
        log_every_n_steps=10,
        enable_model_summary=False,
    )
    trainer.fit(SmallCNN(), train, val)

    report_dir = Path(trainer.log_dir or args.out)
    report = load_report(report_dir)
    labels = ", ".join(f"{k} {v}" for k, v in report.components.items())
    final = report.final_projection
    measured = "nothing" if report.totals.energy_j is None else format_energy(report.totals.energy_j)
    projected = "none" if final is None else format_energy(final.total_j)
    print(f"\nmeasured {measured}, projected {projected} ({labels})")
    declared = report.first_stable
    if declared is not None:
        low, high = format_energy(declared.low_j), format_energy(declared.high_j)
        print(
            f"STEP declared stable energy after epoch {declared.epoch}: projected "
            f"{format_energy(declared.total_j)} [{low}, {high}]"
        )
    elif final is not None:
        print(f"STEP: {final.reason or 'not stable'}")
    if report.carbon is not None and report.carbon.co2_kg is not None:
        carbon, intensity = report.carbon, report.carbon.intensity
        print(f"CO2: {format_mass(carbon.co2_kg)} at {intensity.g_per_kwh:.0f} g/kWh ({intensity.source})")
    print(f"report: {report_dir / 'energy_report.json'}   TensorBoard: tensorboard --logdir {args.out}")
    return report


if __name__ == "__main__":
    main()
