"""The callback's side of PRE: estimate at fit start, rescale to the final budget, record the run after.

Kept apart from the callback so that its hooks stay a few lines; everything here may raise, and the callback
turns any failure into a warning (an estimate never stops training).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning_energy.accounting import EnergyLedger

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_energy.pre.describe import FitEstimate

HistoryPath = str | os.PathLike[str] | bool | None


def estimate_fit(
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    *,
    hardware: Mapping[str, Any],
    history_path: HistoryPath,
    total_epochs: int,
) -> FitEstimate:
    """The PRE estimate of this fit on the GPU the meter reports, calibrated with the local run history."""
    from lightning_energy.pre import PreEstimator, RunHistory, estimate_for_fit

    gpus = hardware.get("gpus") or [{}]
    estimator = PreEstimator.default()
    if history_path is not False:
        estimator = estimator.calibrated(RunHistory(_path(history_path)))
    return estimate_for_fit(
        trainer, pl_module, gpu_info=gpus[0], total_epochs=total_epochs, estimator=estimator
    )


def rescale(pre: dict[str, Any] | None, total_epochs: int | None) -> None:
    """Scale a whole-run estimate in place to ``total_epochs`` (known once the dataloaders are set up)."""
    if not pre or "total_j" not in pre or not total_epochs or pre.get("total_epochs") == total_epochs:
        return
    scale = total_epochs / max(1, int(pre.get("total_epochs") or 1))
    for key in ("total_j", "low_j", "high_j"):
        if pre.get(key) is not None:
            pre[key] = float(pre[key]) * scale
    pre["total_epochs"] = total_epochs


def record_run(
    history_path: HistoryPath, pre: Mapping[str, Any] | None, ledger: EnergyLedger, world_size: int
) -> bool:
    """Append the measured per-GPU epoch energy, power and time to the run history.

    Returns ``False`` when there is nothing to add (no PRE descriptor, no measured GPU energy, no history).
    """
    measured = ledger.measured
    if history_path is False or not pre or "descriptor" not in pre or not measured:
        return False
    from lightning_energy.pre import RunDescriptor, RunHistory

    gpu_j = sum(r.components_j.get("gpu", 0.0) for r in measured) / max(1, world_size)
    seconds = sum(r.duration_s for r in measured)
    if gpu_j <= 0 or seconds <= 0:
        return False
    RunHistory(_path(history_path)).append(
        RunDescriptor.from_dict(pre["descriptor"]),
        epoch_energy_j=gpu_j / len(measured),
        power_w=gpu_j / seconds,
        epoch_seconds=seconds / len(measured),
        epochs=len(measured),
    )
    return True


def _path(history_path: HistoryPath) -> str | os.PathLike[str] | None:
    return None if history_path is None or isinstance(history_path, bool) else history_path
