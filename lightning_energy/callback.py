"""``EnergyCallback``: measure, project and report the energy of a Lightning training run.

The callback is glue: meters read counters, :mod:`lightning_energy.accounting` turns boundary readings into
epoch records, :class:`~lightning_energy.step.StepProjector` projects the total, :mod:`lightning_energy.pre`
estimates it before training and :mod:`lightning_energy.report` writes the report. Each hook delegates.

The epoch window: a training epoch's energy is the meter's reading at ``on_train_epoch_end`` minus its
reading at ``on_train_epoch_start``. It includes every training step and the validation loop that runs at
the end of the epoch (Lightning runs it before ``on_train_epoch_end``); it excludes the sanity check, which
runs before the first epoch, and what runs after the epoch (checkpoints saved by callbacks ordered after
this one). The whole fit, sanity check and gaps included, is reported separately as ``fit_energy_j``.

Logged metrics (every Lightning logger, once per training epoch, the same value on every rank):

=============================== ====== =====================================================================
name                            unit   meaning
=============================== ====== =====================================================================
``energy/epoch_kwh``            kWh    energy of this epoch, all ranks and components (not logged if missing)
``energy/epoch_power_w``        W      mean power over this epoch, all ranks (not logged if missing)
``energy/total_kwh``            kWh    measured energy since the first epoch, across resumes
``energy/<category>_kwh``       kWh    the same for one category: ``gpu``, ``cpu``, ``ram`` (``other``)
``energy/projected_kwh``        kWh    projected energy of the whole run (STEP)
``energy/projected_low_kwh``    kWh    lower end of the projection's interval
``energy/projected_high_kwh``   kWh    upper end of the projection's interval
``energy/stable``               0/1    1 once STEP has detected stable per-epoch energy
``energy/pre_kwh``              kWh    the pre-training (PRE) estimate of the whole run, when there is one
``energy/co2_kg``               kg     CO2e of the measured energy (only with ``carbon_intensity``)
``energy/projected_co2_kg``     kg     CO2e of the projected energy (only with ``carbon_intensity``)
=============================== ====== =====================================================================

Progress bar: ``kWh`` (energy so far, refreshed during the epoch from this rank's meter at most every
``refresh_s`` seconds, exact at each epoch end), ``proj_kWh`` (projected total), ``pre_kWh`` (PRE).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from lightning_energy import fit_estimate, trainer_info
from lightning_energy.accounting import (
    CATEGORIES,
    EnergyLedger,
    EpochRecord,
    by_category,
    check_reading,
    joules_to_kwh,
    reading_delta,
)
from lightning_energy.carbon import CarbonIntensity, resolve_carbon_intensity
from lightning_energy.errors import MeterError
from lightning_energy.meters.base import EnergyMeter
from lightning_energy.step import Projection, StepProjector

_STATE_VERSION = 1


class EnergyCallback(pl.Callback):
    """Measure the energy of training, project the whole run's total and write a report.

    Args:
        meter: ``"auto"`` (default: the NVML meter for the GPU this process trains on plus, on local rank 0,
            the host CPU/RAM meter; the host meter alone on CPU) or any object with ``read()`` returning
            cumulative joules per component and ``close()``. Meters passed in are not closed by the callback.
        carbon_intensity: grams CO2e per kWh, or an ISO 3166 country code (``"FR"``/``"FRA"``) resolved
            offline from CodeCarbon's bundled data. ``None`` (default): CO2 is not reported.
        pue: power usage effectiveness of the data centre, applied to CO2 only (default 1.0).
        projector: the STEP projector; default ``StepProjector()`` with the trainer's validation period.
        estimate: run the pre-training (PRE) estimate at fit start on CUDA runs.
        history_path: the run-history database used to calibrate PRE and appended to at the end of each
            run; ``None`` for the default in the user's cache directory, ``False`` to disable history.
        report: write ``energy_report.json`` and ``energy_epochs.csv`` into the run's log directory.
        refresh_s: the most often, in seconds, that the progress bar's energy is refreshed during an epoch.
    """

    def __init__(
        self,
        meter: str | EnergyMeter = "auto",
        *,
        carbon_intensity: float | str | None = None,
        pue: float = 1.0,
        projector: StepProjector | None = None,
        estimate: bool = True,
        history_path: str | Path | bool | None = None,
        report: bool = True,
        refresh_s: float = 2.0,
    ) -> None:
        if isinstance(meter, str):
            if meter != "auto":
                raise ValueError(f"meter must be 'auto' or an object with read() and close(), got {meter!r}")
        elif not (callable(getattr(meter, "read", None)) and callable(getattr(meter, "close", None))):
            raise TypeError(
                f"meter must be 'auto' or an object with read() and close(), got {type(meter).__name__}"
            )
        if projector is not None and not isinstance(projector, StepProjector):
            raise TypeError(f"projector must be a StepProjector or None, got {type(projector).__name__}")
        if history_path is True:
            history_path = None
        if not isinstance(refresh_s, int | float) or not math.isfinite(refresh_s) or refresh_s < 0:
            raise ValueError(f"refresh_s must be a finite number of seconds >= 0, got {refresh_s!r}")
        self.meter_spec = meter
        self.carbon: CarbonIntensity | None = resolve_carbon_intensity(carbon_intensity, pue=pue)
        self.estimate = bool(estimate)
        self.history_path = history_path
        self.report = bool(report)
        self.refresh_s = float(refresh_s)
        self.projector = projector
        self._meter: EnergyMeter | None = None
        self._meter_problem: str | None = None
        self.ledger = EnergyLedger()
        self.projections: list[dict[str, Any]] = []
        self.pre: dict[str, Any] | None = None
        self.warnings: list[str] = []
        self._pending_state: Mapping[str, Any] | None = None
        self._reset_run_state()

    def _reset_run_state(self) -> None:
        self._log_dir: Path | None = None
        self._budget = trainer_info.Budget(None, None, False)
        self._started_at = datetime.now(timezone.utc).isoformat()
        self._fit_start: tuple[dict[str, float] | None, float] = (None, time.monotonic())
        self._fit_energy_j: float | None = None
        self._epoch_start: tuple[dict[str, float] | None, float, str | None] = (None, time.monotonic(), None)
        self._last_refresh = 0.0
        self._written = False
        self._warned_meter = False

    # ----------------------------------------------------------------------------------------------- hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._reset_run_state()
        self._log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # broadcasts: every rank calls it
        self._meter = self._open_meter(trainer)
        if self.projector is None:
            self.projector = StepProjector(val_every_n_epochs=trainer_info.val_every_n_epochs(trainer))
        self._apply_pending_state()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._budget = trainer_info.budget(trainer)
        self._fit_start = (self._safe_read(), time.monotonic())
        if self.estimate and not self.pre:
            self._estimate_before_training(trainer, pl_module)
        if trainer.is_global_zero:
            try:
                from lightning_energy.tensorboard import add_energy_layout

                add_energy_layout(trainer)
            except Exception as exc:
                self._warn(f"could not add the TensorBoard energy chart: {exc}")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the training batches are known only now: a ``max_steps`` budget becomes a number of epochs here
        self._budget = trainer_info.budget(trainer)
        fit_estimate.rescale(self.pre, self._budget.total_epochs)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._synchronize(trainer)
        self._mark("epoch_start", trainer.current_epoch)
        reading, problem = self._read_or_problem()
        self._epoch_start = (reading, time.monotonic(), problem)
        self._last_refresh = time.monotonic()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        if now - self._last_refresh < self.refresh_s or self._meter is None or self._epoch_start[0] is None:
            return
        self._last_refresh = now
        try:  # cheap live view: this rank's counter, no synchronisation; exact values come at epoch end
            in_epoch_j = sum(reading_delta(self._epoch_start[0], check_reading(self._meter.read())).values())
        except Exception:
            return
        pl_module.log("kWh", joules_to_kwh(self.ledger.total_j + in_epoch_j), prog_bar=True, logger=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._synchronize(trainer)
        self._mark("epoch_end", trainer.current_epoch)
        record = self._finish_epoch(trainer)  # a collective: every rank joins
        self.ledger.add(record)
        projection = self._project(trainer, record)
        # values are already summed over ranks and equal everywhere: "max" only tells Lightning so
        sync = trainer.world_size > 1
        for metrics, in_bar in (
            (self._epoch_metrics(record, projection), False),
            (self._bar_metrics(projection), True),
        ):
            to_logger = not in_bar and bool(trainer.loggers)
            pl_module.log_dict(metrics, prog_bar=in_bar, logger=to_logger, sync_dist=sync, reduce_fx="max")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        end, start = self._safe_read(), self._fit_start[0]
        fit_j: float | None = None
        if start is not None and end is not None:
            try:
                fit_j = sum(reading_delta(start, end).values())
            except MeterError:
                fit_j = None
        # the whole fit on all ranks together: unknown when any rank could not measure it (a collective)
        summed_j, unknown = self._sum_over_ranks(trainer, [fit_j or 0.0, float(fit_j is None)])
        self._fit_energy_j = None if unknown else summed_j
        status = "partial" if self.ledger.missing_epochs or not self.ledger.records else "complete"
        self._write_report(trainer, status)
        if trainer.is_global_zero:
            self._append_history(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        detail = f": {exception}" if str(exception) else ""
        self.warnings.append(f"training stopped by {type(exception).__name__}{detail}")
        self._write_report(trainer, "failed")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._close_meter()

    # ------------------------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "ledger": self.ledger.state_dict(),
            "projections": list(self.projections),
            "projector": self.projector.state_dict() if self.projector is not None else None,
            "pre": self.pre,
            "warnings": list(self.warnings),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_state = state_dict
        self._apply_pending_state()

    def _apply_pending_state(self) -> None:
        state = self._pending_state
        if state is None:
            return
        self.ledger.load_state_dict(state.get("ledger") or {})
        self.projections = list(state.get("projections") or [])
        self.pre = state.get("pre")
        self.warnings = list(state.get("warnings") or [])
        projector_state = state.get("projector")
        if self.projector is not None:
            if projector_state:
                self.projector.load_state_dict(projector_state)
            self._pending_state = None

    # ------------------------------------------------------------------------------------------ metering
    def _open_meter(self, trainer: pl.Trainer) -> EnergyMeter | None:
        if not isinstance(self.meter_spec, str):
            return self.meter_spec
        if self._meter is not None:
            return self._meter
        from lightning_energy.meters import auto_meter

        try:
            return auto_meter(trainer_info.cuda_device_indices(trainer), meter_host=trainer.local_rank == 0)
        except Exception as exc:
            self._meter_problem = f"no energy meter available: {exc}"
            self._warn(f"{self._meter_problem}. Epoch energy will be reported as missing.")
            return None

    def _close_meter(self) -> None:
        if self._meter is not None and isinstance(self.meter_spec, str):
            try:
                self._meter.close()
            except Exception as exc:
                self._warn(f"closing the energy meter failed: {exc}")
            self._meter = None

    def _synchronize(self, trainer: pl.Trainer) -> None:
        device = trainer.strategy.root_device
        if device.type == "cuda" and torch.cuda.is_initialized():
            torch.cuda.synchronize(device)

    def _mark(self, event: str, epoch: int) -> None:
        mark = getattr(self._meter, "mark", None)
        if callable(mark):
            try:
                mark(event, epoch)
            except Exception as exc:
                self._warn(f"meter.mark({event!r}) failed: {exc}")

    def _read_or_problem(self) -> tuple[dict[str, float] | None, str | None]:
        if self._meter is None:
            return None, self._meter_problem or "no energy meter"
        try:
            return check_reading(self._meter.read()), None
        except Exception as exc:
            return None, f"meter raised {type(exc).__name__}: {exc}"

    def _safe_read(self) -> dict[str, float] | None:
        return self._read_or_problem()[0]

    def _finish_epoch(self, trainer: pl.Trainer) -> EpochRecord:
        """This rank's epoch energy by category, summed over all ranks (every rank must call this)."""
        start, started, problem = self._epoch_start
        duration_s = time.monotonic() - started
        end, end_problem = self._read_or_problem()
        categories = dict.fromkeys(CATEGORIES, 0.0)
        problem = problem or end_problem
        if problem is None and start is not None and end is not None:
            try:
                categories = by_category(reading_delta(start, end))
            except MeterError as exc:
                problem = str(exc)
        local = [categories[c] for c in CATEGORIES] + [1.0 if problem else 0.0, duration_s, 1.0]
        summed = self._sum_over_ranks(trainer, local)
        n = len(CATEGORIES)
        world = max(summed[n + 2], 1.0)
        epoch = trainer.current_epoch
        if summed[n] > 0:
            reason = problem or f"the meter failed on {int(summed[n])} of {int(world)} ranks"
            if not self._warned_meter:
                self._warned_meter = True
                self._warn(
                    f"epoch {epoch}: energy not measured ({reason}); the epoch is marked missing, later "
                    "failures are listed in the report"
                )
            return EpochRecord(epoch, summed[n + 1] / world, None, {}, reason)
        components = {c: summed[i] for i, c in enumerate(CATEGORIES)}
        return EpochRecord(epoch, summed[n + 1] / world, sum(components.values()), components)

    @staticmethod
    def _sum_over_ranks(trainer: pl.Trainer, values: list[float]) -> list[float]:
        if trainer.world_size <= 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=trainer.strategy.root_device)
        reduced = trainer.strategy.reduce(tensor, reduce_op="sum")
        return [float(v) for v in reduced.cpu().tolist()]

    # ---------------------------------------------------------------------------------------- projecting
    def _project(self, trainer: pl.Trainer, record: EpochRecord) -> Projection | None:
        if self.projector is None:
            return None
        plan = self._budget
        total_epochs = plan.total_epochs
        total_seconds = plan.total_seconds
        if total_epochs is None and total_seconds is None:
            return None
        if total_epochs is not None and total_seconds is not None:
            mean_epoch_s = self.ledger.duration_s / max(1, len(self.ledger.records))
            if mean_epoch_s * total_epochs <= total_seconds:
                total_seconds = None  # the epoch budget ends the run first
            else:
                total_epochs = None
        kwargs: dict[str, Any] = (
            {"total_epochs": max(total_epochs, len(self.ledger.records))}
            if total_epochs is not None
            else {"total_seconds": total_seconds}
        )
        try:
            if record.energy_j is None:
                projection = self.projector.skip(record.duration_s, **kwargs)
            else:
                projection = self.projector.update(record.energy_j, record.duration_s, **kwargs)
        except Exception as exc:
            self._warn(f"STEP projection failed at epoch {record.epoch}: {exc}")
            return None
        self.projections.append(
            {
                "epoch": record.epoch,
                "total_j": projection.total_j,
                "low_j": projection.low_j,
                "high_j": projection.high_j,
                "stable": projection.stable,
                "stable_since": projection.stable_since,
                "epoch_energy_j": projection.epoch_energy_j,
                "method": projection.method,
            }
        )
        return projection

    def _estimate_before_training(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer_info.cuda_device_indices(trainer):
            self.pre = {"skipped": "CPU-only training: PRE models GPU energy"}
            rank_zero_info("lightning_energy: PRE estimate skipped (CPU-only training).")
            return
        try:
            fit = fit_estimate.estimate_fit(
                trainer,
                pl_module,
                hardware=getattr(self._meter, "hardware", None) or {},
                history_path=self.history_path,
                total_epochs=self._budget.total_epochs or 1,
            )
        except Exception as exc:
            self.pre = {"skipped": f"estimation failed: {type(exc).__name__}: {exc}"}
            self._warn(f"PRE estimate failed, training continues without it: {exc}")
            return
        self.pre = {**fit.to_dict(), "upper_bound": self._budget.upper_bound}
        if self.projector is not None:  # the prior is the per-epoch energy of all devices together
            self.projector.set_prior(fit.estimate.epoch_energy_j * fit.devices, fit.estimate.rel_sigma)
        bound = " (an upper bound: early stopping may end the run sooner)" if self._budget.upper_bound else ""
        rank_zero_info(f"lightning_energy: {fit.summary()}{bound}")

    def _append_history(self, trainer: pl.Trainer) -> None:
        try:
            fit_estimate.record_run(self.history_path, self.pre, self.ledger, trainer.world_size)
        except Exception as exc:
            self._warn(f"could not append this run to the run history: {exc}")

    # ------------------------------------------------------------------------------------------- logging
    def _epoch_metrics(self, record: EpochRecord, projection: Projection | None) -> dict[str, float]:
        total_kwh = joules_to_kwh(self.ledger.total_j)
        metrics: dict[str, float] = {"energy/total_kwh": total_kwh}
        if record.energy_j is not None:
            metrics["energy/epoch_kwh"] = joules_to_kwh(record.energy_j)
            if record.power_w is not None:
                metrics["energy/epoch_power_w"] = record.power_w
        totals_j = self.ledger.category_totals_j()
        for category in self.ledger.present_categories():
            metrics[f"energy/{category}_kwh"] = joules_to_kwh(totals_j[category])
        if projection is not None:
            metrics["energy/projected_kwh"] = joules_to_kwh(projection.total_j)
            metrics["energy/projected_low_kwh"] = joules_to_kwh(projection.low_j)
            metrics["energy/projected_high_kwh"] = joules_to_kwh(projection.high_j)
            metrics["energy/stable"] = float(projection.stable)
        pre_kwh = self._pre_kwh()
        if pre_kwh is not None:
            metrics["energy/pre_kwh"] = pre_kwh
        if self.carbon is not None:
            metrics["energy/co2_kg"] = self.carbon.co2_kg(total_kwh)
            if projection is not None:
                metrics["energy/projected_co2_kg"] = self.carbon.co2_kg(joules_to_kwh(projection.total_j))
        return metrics

    def _bar_metrics(self, projection: Projection | None) -> dict[str, float]:
        bar = {"kWh": joules_to_kwh(self.ledger.total_j)}
        if projection is not None:
            bar["proj_kWh"] = joules_to_kwh(projection.total_j)
        pre_kwh = self._pre_kwh()
        if pre_kwh is not None:
            bar["pre_kWh"] = pre_kwh
        return bar

    def _pre_kwh(self) -> float | None:
        if not self.pre or "total_j" not in self.pre:
            return None
        return joules_to_kwh(float(self.pre["total_j"]))

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(f"lightning_energy: {message}", stacklevel=2)

    # ------------------------------------------------------------------------------------------ reporting
    def _write_report(self, trainer: pl.Trainer, status: str) -> None:
        if not self.report or self._written or not trainer.is_global_zero or self._log_dir is None:
            return
        from lightning_energy.report import write_report
        from lightning_energy.run_report import build_report

        try:
            report = build_report(self, trainer, status)
            write_report(self._log_dir, report)
            self._written = True
        except Exception as exc:
            self._warn(f"could not write the energy report: {exc}")
