"""What the callback does through a Lightning ``Trainer``: print a line to the user past a live progress
bar, publish figures to the loggers, callbacks and progress bar, sum figures over ranks, synchronise the
training device, meter ``validate``/``test``/``predict``.

The callback's hooks call these so that they stay a few lines; what they compute lives in the pure core.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from lightning_energy import trainer_info
from lightning_energy.labels import MarkEvent
from lightning_energy.meter_session import MeterSession, Warn
from lightning_energy.metering import Reading
from lightning_energy.run_metrics import component_labels
from lightning_energy.stages import Stage, StageEnergy, stage_sums

PREFIX = "lightning_energy: "


def _live_console(trainer: pl.Trainer) -> Any | None:
    """The Rich console of a ``RichProgressBar`` whose live display is running, else ``None``."""
    try:
        from lightning.pytorch.callbacks import RichProgressBar
    except ImportError:  # pragma: no cover - RichProgressBar ships with Lightning >= 2
        return None
    bar = trainer.progress_bar_callback
    progress = bar.progress if isinstance(bar, RichProgressBar) else None
    live = getattr(progress, "live", None)  # Rich's Progress, typed; guarded as Rich versions differ
    return progress.console if progress is not None and getattr(live, "is_started", False) else None


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


def publish(
    trainer: pl.Trainer, bar: Mapping[str, float], epoch_metrics: Mapping[str, float] | None = None
) -> None:
    """Publish figures where ``LightningModule.log`` would, without its cost (about 0.3 ms per figure in
    Lightning 2.x: a ``_ResultMetric`` built, validated and moved per call), on this rank; no collective.

    * ``epoch_metrics`` (at a training epoch's end, the same on every rank): to ``trainer.callback_metrics``
      (EarlyStopping and ModelCheckpoint read it on every rank), to ``trainer.logged_metrics`` and to every
      logger with the row Lightning writes for its epoch-level metrics -- step ``_batches_that_stepped - 1``
      (``_FitLoop.on_advance_end`` decrements it around ``update_train_epoch_metrics``) and the ``epoch``
      key -- as a row of its own (the user's epoch-level metrics go in Lightning's row at the same step).
    * ``bar``: to ``trainer.progress_bar_metrics`` and ``trainer.callback_metrics`` (``prog_bar=True,
      logger=False``).

    Values are what ``log`` makes of a float: a CPU tensor of the default dtype (the loggers write its
    ``item()``; the bar gets that number). Lightning returns its own dicts from these properties and
    empties them only when a run starts (``Trainer._run``) and around the sanity check, so what is written
    here stays until the next ``fit``/``validate``/... call, as a logged figure does. Loggers are not
    flushed here: Lightning saves them every ``log_every_n_steps`` and when the fit ends.
    """
    callback_metrics = trainer.callback_metrics
    for name, value in bar.items():
        callback_metrics[name] = torch.tensor(value)
    trainer.progress_bar_metrics.update({name: float(callback_metrics[name]) for name in bar})
    if epoch_metrics is None:
        return
    tensors = {name: torch.tensor(value) for name, value in epoch_metrics.items()}
    callback_metrics.update(tensors)
    if not trainer.loggers or not tensors:
        return
    trainer.logged_metrics.update(tensors)
    row: dict[str, Any] = {**tensors, "epoch": trainer.current_epoch}
    for logger in trainer.loggers:
        logger.log_metrics(row, step=epoch_log_step(trainer))


def epoch_log_step(trainer: pl.Trainer) -> int:
    """The step Lightning logs a training epoch's epoch-level metrics at, read in ``on_train_epoch_end``:
    its count of batches that stepped, less one (``trainer.global_step`` less one where the loop does not
    have it: the two differ only with several optimizers or manual optimization)."""
    stepped = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", None)
    return (stepped if isinstance(stepped, int) else trainer.global_step) - 1


def sum_over_ranks(trainer: pl.Trainer, values: dict[str, float]) -> dict[str, float]:
    """``values`` summed over all ranks, by name (one collective; every rank must call it)."""
    if trainer.world_size <= 1:
        return values
    names = sorted(values)
    device = trainer.strategy.root_device
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64, device=device)
    reduced = trainer.strategy.reduce(tensor, reduce_op="sum")
    return dict(zip(names, (float(v) for v in reduced.cpu().tolist()), strict=True))


def count_ranks(trainer: pl.Trainer, flag: bool) -> int:
    """How many ranks have ``flag`` set (one collective; every rank must call it), e.g. the ranks with
    nothing to meter by design under CPU DDP: they add 0 J, and the report says how many."""
    return int(sum_over_ranks(trainer, {"n": float(flag)})["n"])


def synchronize_device(trainer: pl.Trainer) -> None:
    """Wait for the work queued on this rank's training device (CUDA only; a no-op on CPU)."""
    device = trainer.strategy.root_device
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)


def boundary_read(trainer: pl.Trainer, session: MeterSession, event: MarkEvent) -> Reading:
    """Read the meter at an epoch's boundary ``event``: the device synchronised, the meter told first. An
    epoch's start does not wait for a meter still opening in the background (the first epoch's, normally):
    its components are settled at the next reading (:meth:`~lightning_energy.metering.Metering.settle`)."""
    synchronize_device(trainer)
    session.mark(event, trainer.current_epoch, synchronize=True)
    return session.read_nowait() if event == "epoch_start" else session.read()


class StageMeter:
    """Meters ``trainer.validate/test/predict`` called on their own: one span from the stage's start to its
    end, summed over ranks; ``results`` holds the last :class:`StageEnergy` of each stage."""

    def __init__(self) -> None:
        self.start_reading: Reading | None = None
        self.results: dict[Stage, StageEnergy] = {}

    def start(self, trainer: pl.Trainer, session: MeterSession) -> None:
        if trainer_info.stage(trainer) is not None:  # not the validation loops inside fit
            synchronize_device(trainer)
            self.start_reading = session.read()

    def end(self, trainer: pl.Trainer, session: MeterSession, log_dir: Path | None, warn: Warn) -> None:
        """Measure the stage that ends (a collective), show its line on global rank 0 and write
        ``energy_<stage>.json`` into ``log_dir`` (``None``: no file); a failure to write only warns."""
        stage = trainer_info.stage(trainer)
        if stage is None:
            return
        synchronize_device(trainer)
        summed = sum_over_ranks(trainer, stage_sums(self.start_reading, session.read()))
        labels = component_labels(session.labels())
        result = self.results[stage] = StageEnergy.from_sums(stage, summed, labels, trainer.world_size)
        self.start_reading = None
        if not trainer.is_global_zero:
            return
        print_line(trainer, result.line())
        if log_dir is not None:
            try:
                result.write(log_dir)
            except OSError as exc:
                warn("stage-file", f"the {stage} energy file was not written: {exc}")
