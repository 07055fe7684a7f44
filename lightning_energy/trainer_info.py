"""What the callback needs to know about a Lightning ``Trainer``: the plan, the devices, the ranks."""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping, Timer


@dataclass(frozen=True)
class Budget:
    """How long the run is planned to be: in epochs, in seconds (``max_time``), or both."""

    total_epochs: int | None
    total_seconds: float | None
    upper_bound: bool  # early stopping may end the run sooner


def _finite_positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def planned_epochs(trainer: pl.Trainer) -> int | None:
    """The number of training epochs the trainer will run at most.

    ``max_epochs`` directly; ``max_steps`` converted with the number of optimizer steps per epoch (training
    batches / ``accumulate_grad_batches``); the smaller of the two when both are set; ``None`` when neither
    bounds the run (``max_epochs=-1`` and no ``max_steps``).
    """
    candidates: list[int] = []
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs >= 0:
        candidates.append(int(max_epochs))
    max_steps = trainer.max_steps
    batches = trainer.num_training_batches
    if max_steps is not None and max_steps > 0 and _finite_positive(batches):
        steps_per_epoch = math.ceil(float(batches) / max(1, trainer.accumulate_grad_batches))
        candidates.append(math.ceil(max_steps / steps_per_epoch))
    return min(candidates) if candidates else None


def time_budget_s(trainer: pl.Trainer) -> float | None:
    """The ``max_time`` budget of the training stage in seconds, or ``None`` without one."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, Timer):
            elapsed = callback.time_elapsed("train")
            remaining = callback.time_remaining("train")
            if remaining is not None:
                return float(elapsed + remaining)
    return None


def has_early_stopping(trainer: pl.Trainer) -> bool:
    return any(isinstance(c, EarlyStopping) for c in trainer.callbacks)  # type: ignore[attr-defined]


def budget(trainer: pl.Trainer) -> Budget:
    return Budget(planned_epochs(trainer), time_budget_s(trainer), has_early_stopping(trainer))


def cuda_device_indices(trainer: pl.Trainer) -> list[int]:
    """The CUDA device this process trains on (its own, not every GPU of the node); empty on CPU."""
    device = trainer.strategy.root_device
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else 0]


def val_every_n_epochs(trainer: pl.Trainer) -> int | None:
    """Epoch period of validation inside the training epoch, when validation runs at all."""
    n = trainer.check_val_every_n_epoch
    if n is None or trainer.limit_val_batches == 0:
        return None
    return int(n)


def versions() -> dict[str, str]:
    import torch

    from lightning_energy import __version__

    return {
        "lightning_energy": __version__,
        "lightning": pl.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
