"""What the overhead benchmarks share: a quiet CPU ``Trainer``, the callback hooks timed call by call, a
no-op callback timed the same way (the timer's own cost) and CodeCarbon's offline tracker.

Used by ``benchmarks/overhead.py`` (the whole-fit comparison) and ``benchmarks/hook_cost.py`` (hook by hook).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

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
