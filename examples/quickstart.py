"""Quickstart: a small real training on the CPU with the default ``EnergyCallback()``.

Synthetic data (no downloads): 32x32 images of noisy class-specific patterns, a small CNN, 30 epochs in
about two minutes on two cores. The progress bar shows the energy so far (``kWh``) and the projected total
(``proj_kWh``); TensorBoard logs, ``energy_report.json`` and ``energy_epochs.csv`` land in the run's log
directory. Run it with ``make demo`` or ``python examples/quickstart.py --help``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import RichProgressBarTheme
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_energy import EnergyCallback


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


def progress_bar() -> pl.Callback:
    """A CPU run uses little energy: show 3 significant digits rather than 3 decimals of a kWh."""
    if _RICH_AVAILABLE:
        return RichProgressBar(theme=RichProgressBarTheme(metrics_format=".3g"))
    return TQDMProgressBar()  # tqdm already formats numbers with 3 significant digits


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-samples", type=int, default=7168)
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
        callbacks=[callback, progress_bar()],
        log_every_n_steps=10,
        enable_model_summary=False,
    )
    trainer.fit(SmallCNN(), train, val)

    report_path = Path(trainer.log_dir or args.out) / "energy_report.json"
    report = json.loads(report_path.read_text())
    measured_kwh = report["totals"]["energy_kwh"]
    history = report["projection"]["history"]
    projected_kwh = history[-1]["total_j"] / 3.6e6 if history else float("nan")
    first_stable = next((h["epoch"] for h in history if h["stable"]), None)
    labels = ", ".join(f"{k} {v}" for k, v in report["components"].items())
    print(f"\nmeasured {measured_kwh:.6f} kWh, projected {projected_kwh:.6f} kWh ({labels})")
    if first_stable is not None:
        at = history[first_stable]
        print(
            f"STEP declared stable energy at epoch {first_stable}: projected {at['total_j'] / 3.6e6:.6f} kWh "
            f"[{at['low_j'] / 3.6e6:.6f}, {at['high_j'] / 3.6e6:.6f}]"
        )
    if report.get("carbon"):
        carbon = report["carbon"]
        print(f"CO2: {carbon['co2_kg'] * 1000:.3f} g at {carbon['g_per_kwh']:.0f} g/kWh ({carbon['source']})")
    print(f"report: {report_path}   TensorBoard: tensorboard --logdir {args.out}")
    return report


if __name__ == "__main__":
    main()
