"""``EnergyCallback``: measure, project and report the energy of a Lightning training run.

Glue only: the hooks read the meter (after synchronising the device), sum each epoch over ranks once and
feed the pure :class:`~lightning_energy.metering.Metering` (boundaries, windows, rank scaling, the bar's
schedule) and :class:`~lightning_energy.run.EnergyRun` (ledger, STEP, PRE, report); metrics: docs/callback.md.
An epoch spans ``on_train_epoch_start`` to ``on_train_epoch_end`` (its validation, not the sanity check).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_energy import fit_estimate, tensorboard, trainer_info
from lightning_energy._validate import check_callback_flags, finite_number
from lightning_energy.carbon import resolve_carbon_intensity
from lightning_energy.meter_session import MeterSession
from lightning_energy.metering import Due, Metering, Reading, Window, missing_epoch_message
from lightning_energy.meters.base import EnergyMeter
from lightning_energy.report_model import WindowRecord
from lightning_energy.run import EnergyRun, RunStateError, RunStatus, component_labels
from lightning_energy.step import StepProjector


class EnergyCallback(pl.Callback):
    """Measure the energy of training, project the whole run's total and write a report.

    Args:
        meter: ``"auto"`` (default: NVML for this process's GPU plus, on local rank 0, the host CPU/RAM meter;
            the host meter alone on CPU) or a meter (an :class:`~lightning_energy.meters.EnergyMeter`, or any
            object with ``read()`` returning cumulative joules per component and ``close()``; kept open).
        carbon_intensity: grams CO2e per kWh, or an ISO 3166 country code (``"FR"``/``"FRA"``) resolved
            offline from CodeCarbon's bundled data. ``None`` (default): CO2 is not reported.
        pue: power usage effectiveness of the data centre, applied to CO2 only (default 1.0).
        projector: the STEP projector; default ``StepProjector()`` with the trainer's validation period.
        estimate: run the pre-training (PRE) estimate when training starts (before any step) on CUDA runs.
        history_path: the run history that calibrates PRE, appended to after each run; ``None``: the default
            in the user's cache directory, ``False``: no history.
        report: write ``energy_report.json`` and ``energy_epochs.csv`` into the run's log directory.
        refresh_s: the most often, in seconds, that the progress bar's energy is refreshed during an epoch.
        window_batches: training batches per in-epoch window; ``None``: 1/20 of the epoch, ``0``: no windows.
    """

    def __init__(
        self,
        meter: str | EnergyMeter | Any = "auto",
        *,
        carbon_intensity: float | str | None = None,
        pue: float = 1.0,
        projector: StepProjector | None = None,
        estimate: bool = True,
        history_path: str | Path | bool | None = None,
        report: bool = True,
        refresh_s: float = 2.0,
        window_batches: int | None = None,
    ) -> None:
        self._user_meter = MeterSession.user_meter(meter)
        if projector is not None and not isinstance(projector, StepProjector):
            raise TypeError(f"projector must be a StepProjector or None, got {type(projector).__name__}")
        check_callback_flags(estimate, report, history_path, window_batches)
        self.carbon = resolve_carbon_intensity(carbon_intensity, pue=pue)
        self.estimate = estimate
        self.history_path: str | Path | bool | None = None if history_path is True else history_path
        self.report = report
        self.refresh_s = finite_number("refresh_s", refresh_s, minimum=0.0, what="a number of seconds")
        self.window_batches = None if window_batches is None else int(window_batches)  # numpy ints too
        self.projector = projector
        self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._meter = MeterSession.closed("the callback has not been set up by a Trainer yet", self._warn)
        self._pending_state: Mapping[str, Any] | None = None
        self._reset_fit_state()

    def _reset_fit_state(self, world_size: int = 1) -> None:
        self._log_dir: Path | None = None
        self._metering = Metering(self.window_batches, self.refresh_s, world_size, time.monotonic())
        self._written = False
        self._warned: set[str] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._reset_fit_state(trainer.world_size)  # a new run; a resume then loads the old one's state
        projector = trainer_info.step_projector(trainer, self.projector)  # a user's: settings, not data
        self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # broadcasts: every rank calls it
        cuda, host = trainer_info.cuda_device_indices(trainer), trainer.local_rank == 0
        self._meter = MeterSession.open(self._user_meter, cuda, meter_host=host, warn=self._warn)
        if self._pending_state is not None:
            self._load(self._pending_state)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)
        self._metering.start_fit(self._meter.read())
        if trainer.is_global_zero and (problem := tensorboard.try_add_energy_layout(trainer)):
            self._warn("tensorboard", problem)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)  # batches known only now
        self.run.stop = trainer_info.stop_tracker(trainer)  # EarlyStopping: forecast the stop
        if problem := self.run.note_unmetered(trainer.current_epoch):
            self._warn("unmetered", problem)
        if self.estimate and self.run.pre is None:  # the data is set up (public loaders), no step has run
            cuda, hardware = bool(trainer_info.cuda_device_indices(trainer)), self._meter.hardware
            pre, line, failed = fit_estimate.estimate_before_training(
                trainer, pl_module, cuda, hardware, self.history_path, self.run.budget
            )
            self.run.set_pre(pre)
            self._warn("pre", line) if failed else rank_zero_info(f"lightning_energy: {line}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer_info.feed_stop_forecast(trainer, self.run.stop)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._metering.start_epoch(trainer.current_epoch, self._boundary_read(trainer, "epoch_start"))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        due = self._metering.batch_end(now, self.run.window_batches, self.run.budget.batches_per_epoch)
        if due is Due.WINDOW:
            self._close_window(trainer, pl_module, now)
        elif due is Due.REFRESH:
            self._refresh_bar(pl_module, now)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch, metering = trainer.current_epoch, self._metering
        end = self._boundary_read(trainer, "epoch_end")
        summed = self._sum_over_ranks(trainer, metering.epoch_sums(epoch, end))  # a collective: all ranks
        record = metering.epoch_record(epoch, end, summed)
        self._add_window(trainer, metering.finish_epoch(record, end, self.run.window_batches))
        outcome = self.run.finish_epoch(record)
        if record.missing:
            self._warn("missing-epoch", missing_epoch_message(record))
        # already summed over ranks and equal everywhere: "max" only tells Lightning so
        metrics, sync = self.run.epoch_metrics(outcome), trainer.world_size > 1
        pl_module.log_dict(metrics, logger=bool(trainer.loggers), sync_dist=sync, reduce_fx="max")
        pl_module.log_dict(self.run.bar_metrics(), prog_bar=True, logger=False)  # this rank's: no collective

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fit_j = self._metering.fit_energy_j(self._meter.read())
        # the whole fit on all ranks together: unknown when any rank could not measure it (a collective)
        summed = self._sum_over_ranks(trainer, {"fit_j": fit_j or 0.0, "unknown": float(fit_j is None)})
        self.run.fit_energy_j = None if summed["unknown"] else summed["fit_j"]
        self._write_report(trainer, self.run.status())
        if trainer.is_global_zero:
            if problem := fit_estimate.append_history(self.history_path, self.run, trainer.world_size):
                self._warn("history", problem)
            rank_zero_info(f"lightning_energy: {self.run.stability_line()}")
        # ranks leave together: one tearing its process group down while rank 0 writes can make gloo abort it
        trainer.strategy.barrier("lightning_energy.on_fit_end")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        detail = f": {exception}" if str(exception) else ""
        self.run.warn(f"training stopped by {type(exception).__name__}{detail}")
        self._write_report(trainer, "failed")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._meter.close()

    def state_dict(self) -> dict[str, Any]:
        return self.run.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_state = state_dict
        self._load(state_dict)

    def _load(self, state: Mapping[str, Any]) -> None:
        self._pending_state = None
        try:
            self.run.load_state_dict(state)
        except RunStateError as exc:
            self._warn("state", f"{exc}; energy metering starts afresh from this epoch")
            self.run.warn(f"checkpoint state not loaded: {exc}")

    def _boundary_read(self, trainer: pl.Trainer, event: str) -> Reading:
        """Synchronise the training device and the meter, mark the boundary, read."""
        device = trainer.strategy.root_device
        if device.type == "cuda" and torch.cuda.is_initialized():
            torch.cuda.synchronize(device)
        self._meter.mark(event, trainer.current_epoch, synchronize=True)
        return self._meter.read()

    @staticmethod
    def _sum_over_ranks(trainer: pl.Trainer, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over all ranks, by name (one collective; every rank must call it)."""
        if trainer.world_size <= 1:
            return values
        names = sorted(values)
        device = trainer.strategy.root_device
        tensor = torch.tensor([values[n] for n in names], dtype=torch.float64, device=device)
        reduced = trainer.strategy.reduce(tensor, reduce_op="sum")
        return dict(zip(names, (float(v) for v in reduced.cpu().tolist()), strict=True))

    def _close_window(self, trainer: pl.Trainer, pl_module: pl.LightningModule, now: float) -> None:
        self._meter.mark("window_end", trainer.current_epoch)
        end = self._meter.read()
        window = self._metering.close_window(trainer.current_epoch, end)
        record = self._add_window(trainer, window)
        if record is not None and trainer.loggers:
            # straight to the loggers, as LearningRateMonitor does: self.log would wait for log_every_n_steps
            live_j = self._metering.live_total_j(self.run.ledger.measured_total_j, end)
            metrics = self.run.window_metrics(record, live_total_j=live_j)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        self._metering.add_window_cost(time.monotonic() - now)
        if self._metering.first_window_in_epoch(window) or self._metering.refresh_due(now):
            projected_j = None if record is None else record.total_j
            self._refresh_bar(pl_module, time.monotonic(), end, projected_j)

    def _add_window(self, trainer: pl.Trainer, window: Window | None) -> WindowRecord | None:
        return None if window is None else self.run.close_window(step=trainer.global_step, **asdict(window))

    def _refresh_bar(
        self, pl_module: Any, now: float, reading: Reading | None = None, projected_j: Any = None
    ) -> None:
        """The live progress bar from this rank's meter (read here unless ``reading`` is given)."""
        reading, ledger = reading or self._meter.read(), self.run.ledger  # the read is timed below
        self._metering.schedule_refresh(time.monotonic(), time.monotonic() - now)
        live_j, extrapolated_j = self._metering.live_figures(reading, ledger, self.run.budget)
        bar = self.run.bar_metrics(live_j, projected_j, extrapolated_j=extrapolated_j)
        if bar:
            pl_module.log_dict(bar, prog_bar=True, logger=False)

    def _warn(self, cause: str, message: str) -> None:
        """Warn once per cause, on global rank 0 only; keep the message for the report."""
        self.run.warn(message)
        if cause not in self._warned:
            self._warned.add(cause)
            rank_zero_warn(f"lightning_energy: {message}", stacklevel=2)

    def _write_report(self, trainer: pl.Trainer, status: RunStatus) -> None:
        if not self.report or self._written or not trainer.is_global_zero or self._log_dir is None:
            return
        labels, hardware = component_labels(self._meter.extra("labels")), self._meter.hardware()
        facts = trainer_info.report_facts(trainer)
        problem = self.run.write_report(self._log_dir, status, components=labels, hardware=hardware, **facts)
        self._written = problem is None
        if problem is not None:
            self._warn("report", problem)
