"""What the overhead benchmarks share: a quiet CPU ``Trainer``, the fit of a small MLP (~1 ms batches), the
callback hooks timed call by call, a no-op callback timed the same way (the timer's own cost) and
CodeCarbon's offline tracker.

Used by ``benchmarks/overhead.py`` (the whole-fit comparison), ``benchmarks/hook_cost.py`` (hook by hook)
and ``benchmarks/share_ab.py`` (fits with and without the callback).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HOOKS = (
    "setup",
    "on_fit_start",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_fit_end",
    "teardown",
)


def quiet_trainer(callbacks: list[pl.Callback], root: Path, epochs: int, **options: Any) -> pl.Trainer:
    """A one-process CPU ``Trainer`` without progress bar, model summary or checkpoints; ``options`` are
    the benchmark's other ``Trainer`` arguments."""
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        default_root_dir=root,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **options,
    )


class TinyMLP(pl.LightningModule):
    """About 1 ms per training batch on two CPU cores; times the ``log_dict`` calls made on it (only the
    callback logs: its figures go through Lightning's ``LightningModule.log``)."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, 10)
        self.log_s, self.logged = 0.0, 0  # time in log_dict, figures logged

    def log_dict(self, dictionary: Any, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        try:
            super().log_dict(dictionary, *args, **kwargs)
        finally:
            self.log_s += time.perf_counter() - start
            self.logged += len(dictionary)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.head(self.net(x)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(
    callbacks: list[pl.Callback],
    root: Path,
    *,
    epochs: int,
    batches: int,
    batch_size: int,
    model: TinyMLP | None = None,
) -> float:
    """One fit (of ``model``, default a new ``TinyMLP``); its wall time in seconds."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batches * batch_size, 64, generator=generator)
    y = torch.randint(0, 10, (batches * batch_size,), generator=generator)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    trainer = quiet_trainer(callbacks, root, epochs, logger=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(model or TinyMLP(), loader)
    return time.perf_counter() - start


class HookProfile:
    """Wraps a callback's hooks; keeps the wall time of every call, by hook."""

    def __init__(self, callback: pl.Callback) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        for name in HOOKS:
            setattr(callback, name, self._timed(name, getattr(callback, name)))

    def _timed(self, name: str, hook: Callable[..., None]) -> Callable[..., None]:
        times = self.times[name]

        def timed(*args: object, **kwargs: object) -> None:
            start = time.perf_counter()
            try:
                hook(*args, **kwargs)
            finally:
                times.append(time.perf_counter() - start)

        return timed

    def per_batch_s(self) -> list[float]:
        """Each training batch's time in the callback: its start hook (where a full window closes) plus
        its end hook."""
        starts, ends = self.times["on_train_batch_start"], self.times["on_train_batch_end"]
        return [start + end for start, end in zip(starts, ends, strict=True)]

    def total_s(self, names: tuple[str, ...] = HOOKS) -> float:
        return sum(sum(self.times[n]) for n in names)


class NoOpCallback(pl.Callback):
    """Defines every timed hook and does nothing: timed with :class:`HookProfile` in the same fit, it
    measures what the timing itself adds to each call."""

    def _nothing(self, *args: object, **kwargs: object) -> None:
        return None

    setup = on_fit_start = on_train_start = on_train_epoch_start = on_train_batch_start = _nothing
    on_train_batch_end = on_train_epoch_end = on_fit_end = teardown = _nothing


def offline_tracker(root: Path) -> Any:
    """CodeCarbon's ``OfflineEmissionsTracker`` for Germany, writing nothing, into ``root`` (created)."""
    from codecarbon import OfflineEmissionsTracker

    root.mkdir(parents=True, exist_ok=True)  # CodeCarbon needs its output folder to exist
    return OfflineEmissionsTracker(
        country_iso_code="DEU", output_dir=str(root), save_to_file=False, log_level="error"
    )
