"""What the callback does through a Lightning ``Trainer``: print a line to the user past a live progress
bar, sum figures over ranks, synchronise the training device.

The callback's hooks call these so that they stay a few lines; what they compute lives in the pure core.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

PREFIX = "lightning_energy: "


def _live_console(trainer: pl.Trainer) -> Any | None:
    """The Rich console of a ``RichProgressBar`` whose live display is running, else ``None``."""
    try:
        from lightning.pytorch.callbacks import RichProgressBar
    except ImportError:  # pragma: no cover - RichProgressBar ships with Lightning >= 2
        return None
    bar = trainer.progress_bar_callback
    progress = getattr(bar, "progress", None) if isinstance(bar, RichProgressBar) else None
    live = getattr(progress, "live", None)
    return progress.console if live is not None and getattr(live, "is_started", False) else None  # type: ignore[union-attr]


def print_line(trainer: pl.Trainer, text: str) -> None:
    """Show ``lightning_energy: text`` to the user on global rank 0.

    While a ``RichProgressBar`` is live, the line goes through its console: Rich prints it above the bar
    and keeps it there. Written past the bar (as Lightning's logger does), the bar's next redraw would
    overwrite it, and the bar redraws one last time when it stops, after the fit's last hook.
    """
    if not trainer.is_global_zero:
        return
    console = _live_console(trainer)
    if console is None:
        rank_zero_info(PREFIX + text)
    else:
        console.print(PREFIX + text, markup=False, highlight=False, soft_wrap=True)


def sum_over_ranks(trainer: pl.Trainer, values: dict[str, float]) -> dict[str, float]:
    """``values`` summed over all ranks, by name (one collective; every rank must call it)."""
    if trainer.world_size <= 1:
        return values
    names = sorted(values)
    device = trainer.strategy.root_device
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64, device=device)
    reduced = trainer.strategy.reduce(tensor, reduce_op="sum")
    return dict(zip(names, (float(v) for v in reduced.cpu().tolist()), strict=True))


def synchronize_device(trainer: pl.Trainer) -> None:
    """Wait for the work queued on this rank's training device (CUDA only; a no-op on CPU)."""
    device = trainer.strategy.root_device
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)
