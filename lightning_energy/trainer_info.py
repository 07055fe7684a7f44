"""What the callback needs to know about a Lightning ``Trainer``: the plan, the devices, the ranks."""

from __future__ import annotations

import math
import platform
import sys
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BackboneFinetuning, EarlyStopping, Timer

from lightning_energy.budget import Budget
from lightning_energy.step.hints import EvalSchedule, KnownChange, known_changes
from lightning_energy.step.projector import StepProjector
from lightning_energy.step.stop_tracker import StopSettings, StopTracker


def _finite_positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def batches_per_epoch(trainer: pl.Trainer) -> int | None:
    """Training batches per epoch after ``limit_train_batches``; ``None`` when unknown (iterable data)."""
    batches = trainer.num_training_batches
    return int(batches) if _finite_positive(batches) else None


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
    """The run's plan: ``max_epochs``, ``max_steps``, batches per epoch, ``max_time``, early stopping."""
    max_epochs = trainer.max_epochs
    max_steps = trainer.max_steps
    return Budget(
        max_epochs=int(max_epochs) if max_epochs is not None and max_epochs >= 0 else None,
        max_steps=int(max_steps) if max_steps is not None and max_steps > 0 else None,
        batches_per_epoch=batches_per_epoch(trainer),
        accumulate_grad_batches=max(1, int(trainer.accumulate_grad_batches)),
        total_seconds=time_budget_s(trainer),
        upper_bound=has_early_stopping(trainer),
    )


def stage(trainer: pl.Trainer) -> str | None:
    """``"validate"``, ``"test"`` or ``"predict"`` while the Trainer runs that entry point on its own;
    ``None`` during ``fit`` (its validation loops belong to the training epochs)."""
    fn = trainer.state.fn
    value = None if fn is None else str(fn.value)
    return value if value in ("validate", "test", "predict") else None


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

    from lightning_energy._version import __version__

    return {
        "lightning_energy": __version__,
        "lightning": pl.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def report_facts(trainer: pl.Trainer) -> dict[str, Any]:
    """What the report says about the trainer: ranks, nodes and library versions."""
    return {"world_size": trainer.world_size, "num_nodes": trainer.num_nodes, "versions": versions()}


def early_stopping(trainer: pl.Trainer) -> EarlyStopping | None:
    """The Trainer's first ``EarlyStopping`` callback, if any."""
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, EarlyStopping):
            return callback
    return None


def stop_tracker(trainer: pl.Trainer) -> StopTracker | None:
    """The stop forecast of an ``EarlyStopping`` run (``None`` without one, or with settings it cannot use).

    Reads the callback's public settings; ``min_delta`` is stored negated for ``mode="min"``. Evaluations
    are mapped to epochs with ``check_val_every_n_epoch`` / ``val_check_interval``.
    """
    es = early_stopping(trainer)
    if es is None:
        return None
    interval = trainer.val_check_interval
    every = trainer.check_val_every_n_epoch
    try:
        settings = StopSettings(
            monitor=str(es.monitor),
            mode=str(es.mode),
            patience=int(es.patience),
            min_delta=abs(float(es.min_delta)),
            stopping_threshold=es.stopping_threshold,
            divergence_threshold=es.divergence_threshold,
        )
        schedule = EvalSchedule(
            check_val_every_n_epoch=None if every is None else int(every),
            val_check_interval=float(interval) if isinstance(interval, float) else int(interval),
            batches_per_epoch=batches_per_epoch(trainer),
        )
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        return StopTracker(settings, schedule, max_epochs)
    except (TypeError, ValueError):  # an unusual schedule: no forecast, nothing else changes
        return None


def announced_changes(trainer: pl.Trainer) -> tuple[KnownChange, ...]:
    """Regime changes the Trainer announces: ``BackboneFinetuning`` and dataloader reloads."""
    unfreeze = None
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, BackboneFinetuning):
            unfreeze = int(callback.unfreeze_backbone_at_epoch)
    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
    try:
        return known_changes(
            unfreeze_backbone_at_epoch=unfreeze,
            max_epochs=max_epochs,
            reload_dataloaders_every_n_epochs=int(getattr(trainer, "reload_dataloaders_every_n_epochs", 0)),
        )
    except (TypeError, ValueError):
        return ()


def step_projector(trainer: pl.Trainer, template: StepProjector | None) -> StepProjector:
    """A user's projector keeps its settings, not its data; the default hears the Trainer's announcements."""
    if template is not None:
        return template.fresh()
    return StepProjector(
        val_every_n_epochs=val_every_n_epochs(trainer), known_changes=announced_changes(trainer)
    )


def feed_stop_forecast(trainer: pl.Trainer, stop: StopTracker | None) -> None:
    """After a validation (not the sanity check): give the monitored metric to the stop forecast."""
    if stop is None or trainer.sanity_checking:
        return
    value = trainer.callback_metrics.get(stop.settings.monitor)
    if value is not None:
        stop.evaluate(float(value))
