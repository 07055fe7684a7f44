"""The callback's side of PRE: estimate when training starts, record the run in the history after.

Kept apart from the callback so that its hooks stay a few lines; everything here may raise, and the callback
turns any failure into a warning (an estimate never stops training).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from lightning_energy.accounting import EnergyLedger
from lightning_energy.budget import Budget
from lightning_energy.hardware import GpuInfo, Hardware
from lightning_energy.report_model import PreSummary
from lightning_energy.units import format_energy

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_energy.pre.model import PreEstimator
    from lightning_energy.run import EnergyRun

HistoryPath = str | os.PathLike[str] | bool | None


def _estimate_calibrated(
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    *,
    hardware: Hardware,
    history_path: HistoryPath,
    budget: Budget,
) -> PreSummary:
    """The PRE estimate of this fit on the GPU the meter reports, calibrated with the local run history."""
    from lightning_energy.pre import estimate_for_fit

    estimator, notes = _calibrated(history_path)
    fit = estimate_for_fit(
        trainer,
        pl_module,
        gpu_info=hardware.first_gpu or GpuInfo(),
        total_epochs=budget.total_epochs or 1,
        estimator=estimator,
    )
    return replace(fit, upper_bound=budget.upper_bound, warnings=notes)


def _calibrated(history_path: HistoryPath) -> tuple[PreEstimator, tuple[str, ...]]:
    """The calibrated estimator and the warnings its history gave (shown as usual, and returned so that
    the report keeps them)."""
    from lightning_energy.pre import calibrated_estimator

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = calibrated_estimator(history_path)
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return estimator, tuple(str(w.message) for w in caught if str(w.message).startswith("PRE:"))


def summary(pre: PreSummary) -> str:
    """One console line for a PRE estimate."""
    if not pre.available or pre.total_j is None:
        return f"PRE estimate skipped ({pre.skipped})"
    interval = ""
    if pre.low_j is not None and pre.high_j is not None:
        interval = f" (90 % {format_energy(pre.low_j)} to {format_energy(pre.high_j)})"
    epochs = f"{pre.total_epochs:g} epochs" if pre.total_epochs else "the run"
    gpu = pre.estimate.gpu_name if pre.estimate is not None else "this GPU"
    return f"PRE estimate on {gpu}: {format_energy(pre.total_j)} for {epochs}{interval}"


def record_run(
    history_path: HistoryPath, pre: PreSummary | None, ledger: EnergyLedger, world_size: int
) -> bool:
    """Append the measured per-GPU epoch energy, power and time to the run history.

    An epoch cut short (a ``max_steps`` budget ending mid-epoch: ``EpochRecord.batches`` below the
    descriptor's ``steps_per_epoch``) counts as its share of an epoch, so the row holds full-epoch figures.
    Returns ``False`` when there is nothing to add (no PRE descriptor, no measured GPU energy, no history).
    """
    measured = ledger.measured
    descriptor = None if pre is None or not pre.available else pre.descriptor
    if history_path is False or descriptor is None or not measured:
        return False
    from lightning_energy.pre import RunHistory

    full = descriptor.data.steps_per_epoch
    epochs = sum(epoch_share(r.batches, full) for r in measured)
    gpu_j = sum(r.components_j.get("gpu", 0.0) for r in measured) / max(1, world_size)
    seconds = sum(r.duration_s for r in measured)
    if gpu_j <= 0 or seconds <= 0 or epochs <= 0:
        return False
    RunHistory(None if history_path is None or history_path is True else history_path).append(
        descriptor,
        epoch_energy_j=gpu_j / epochs,
        power_w=gpu_j / seconds,
        epoch_seconds=seconds / epochs,
        epochs=max(1, round(epochs)),
    )
    return True


def epoch_share(batches: int | None, batches_per_epoch: int | None) -> float:
    """The share of a full epoch that ``batches`` training batches are (1 when either is unknown)."""
    if batches is None or not batches_per_epoch or batches >= batches_per_epoch:
        return 1.0
    return max(batches, 1) / batches_per_epoch


def estimate_before_training(
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    cuda: bool,
    hardware: Callable[[], Hardware],
    history_path: HistoryPath,
    budget: Budget,
) -> tuple[PreSummary, str, bool]:
    """The PRE summary for the run, its console line and whether that line is a warning (the estimate
    failed). ``hardware`` is called only on GPU (a host meter still opening is not waited for on CPU).
    Never raises: an estimate never stops training."""
    if not cuda:
        return PreSummary(skipped="CPU-only training: PRE models GPU energy"), _SKIPPED_CPU, False
    try:
        pre = _estimate_calibrated(
            trainer, pl_module, hardware=hardware(), history_path=history_path, budget=budget
        )
    except Exception as exc:  # an estimate never stops training: any failure is a warning
        skipped = PreSummary(skipped=f"estimation failed: {type(exc).__name__}: {exc}")
        return skipped, f"PRE estimate failed, training continues without it: {exc}", True
    bound = " (an upper bound: early stopping may end the run sooner)" if pre.upper_bound else ""
    return pre, f"{summary(pre)}{bound}", False


_SKIPPED_CPU = "PRE estimate skipped (CPU-only training)."


def append_history(history_path: HistoryPath, run: EnergyRun, world_size: int) -> str | None:
    """:func:`record_run` for ``run``, returning the warning to show instead of raising (a convenience
    never fails the fit)."""
    try:
        record_run(history_path, run.pre, run.ledger, world_size)
    except Exception as exc:  # the history is a convenience: a failure must not fail the fit
        return f"could not append this run to the run history: {exc}"
    return None
