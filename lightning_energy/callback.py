"""``EnergyCallback``: measure, project and report the energy of a Lightning run (``validate``/``test``/
``predict`` too). Glue only: the hooks read the meter (device synchronised first), sum over ranks once and
feed the pure :class:`~lightning_energy.metering.Metering` and :class:`~lightning_energy.run.EnergyRun`;
metrics: docs/callback.md. An epoch: ``on_train_epoch_start`` to ``on_train_epoch_end``, validation in."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn

from lightning_energy import fit_estimate, tensorboard, trainer_info, trainer_ops
from lightning_energy._validate import check_callback_flags, finite_number
from lightning_energy.carbon import resolve_carbon_intensity
from lightning_energy.meter_session import MeterSession
from lightning_energy.metering import Due, Metering, Reading, Window, missing_epoch_message
from lightning_energy.meters.base import EnergyMeter
from lightning_energy.report_model import RunReport, WindowRecord
from lightning_energy.run import EnergyRun, RunStatus
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

    In code: ``total_j`` (the fit's measured joules), ``fit_report`` (its ``RunReport`` once it ended) and
    ``stages`` (``"validate"``/``"test"``/``"predict"`` → ``StageEnergy``); see docs/callback.md.
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
        self.estimate, self.report = estimate, report
        self.history_path: str | Path | bool | None = None if history_path is True else history_path
        self.refresh_s = finite_number("refresh_s", refresh_s, minimum=0.0, what="a number of seconds")
        self.window_batches = None if window_batches is None else int(window_batches)  # numpy ints too
        self.projector = projector
        self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._meter = MeterSession.closed("the callback has not been set up by a Trainer yet", self._warn)
        self._pending_state: Mapping[str, Any] | None = None
        self._stage = trainer_ops.StageMeter()
        self.stages = self._stage.results  # the last validate/test/predict call's StageEnergy, by stage
        self.fit_report: RunReport | None = None  # the fit's report, once it ended (also with report=False)
        self._reset_fit_state()

    def _reset_fit_state(self, world_size: int = 1) -> None:
        self._log_dir: Path | None = None
        self._metering = Metering(self.window_batches, self.refresh_s, world_size, time.monotonic())
        self._written = False
        self._warned: set[str] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._reset_fit_state(trainer.world_size)  # a new run; a resume then loads the old one's state
            projector = trainer_info.step_projector(trainer, self.projector)  # a user's: settings, not data
            self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # broadcasts: every rank calls it
        cuda, host = trainer_info.cuda_device_indices(trainer), trainer.local_rank == 0
        self._meter = MeterSession.open(self._user_meter, cuda, meter_host=host, warn=self._warn)
        if stage == "fit" and self._pending_state is not None:
            self._load(self._pending_state)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)
        nothing = self.run.unmetered_ranks = trainer_ops.count_ranks(trainer, self._meter.nothing_to_meter)
        self._metering.start_fit(self._meter.read(), metered_ranks=trainer.world_size - nothing)
        if trainer.is_global_zero and (problem := tensorboard.try_add_energy_layout(trainer)):
            self._warn("tensorboard", problem)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if problem := self.run.set_budget(trainer_info.budget(trainer), self.window_batches):  # batches now
            self._warn("windows", problem)
        trainer_info.start_forecasts(trainer, self.run, self.projector)  # EarlyStopping; the LR schedule
        if problem := self.run.note_unmetered(trainer.current_epoch):
            self._warn("unmetered", problem)
        if self.estimate and self.run.pre is None:  # the data is set up (public loaders), no step has run
            cuda, hardware = bool(trainer_info.cuda_device_indices(trainer)), self._meter.hardware
            pre, line, failed = fit_estimate.estimate_before_training(
                trainer, pl_module, cuda, hardware, self.history_path, self.run.budget
            )
            self.run.set_pre(pre)
            self._warn("pre", line) if failed else trainer_ops.print_line(trainer, line)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer_info.feed_stop_forecast(trainer, self.run.stop)
        self._stage_end(trainer, pl_module)

    def _stage_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stage.start(trainer, self._meter)  # only validate/test/predict called on their own

    def _stage_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stage.end(trainer, self._meter, self._log_dir if self.report else None, self._warn)

    on_validation_start = on_test_start = on_predict_start = _stage_start
    on_test_end = on_predict_end = _stage_end

    @property
    def total_j(self) -> float | None:
        """The fit's measured energy so far in joules, all ranks and epochs (``None``: none measured)."""
        return self.run.ledger.measured_total_j

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer_info.feed_late_evaluation(trainer, self.run)  # logged in the module's on_train_epoch_end
        reading = trainer_ops.boundary_read(trainer, self._meter, "epoch_start")
        self._metering.start_epoch(trainer.current_epoch, reading, trainer.global_step, self.run.budget)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        metering = self._metering  # the hot path: attribute tests, unless the core scheduled work here
        if metering.window_due or metering.batches >= metering.quiet_below:  # Metering.watching(), inlined
            if metering.window_due:  # the last batch filled a window: validation after it included
                self._close_window(trainer, time.monotonic())
            metering.batch_start(trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        metering = self._metering
        if metering.batches < metering.quiet_below:  # nothing can be due: only count the batch
            metering.batches += 1
        elif metering.batch_end(now := time.monotonic(), self.run.window_batches) is Due.REFRESH:
            self._refresh_bar(trainer, now)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch, metering = trainer.current_epoch, self._metering
        end = trainer_ops.boundary_read(trainer, self._meter, "epoch_end")
        trainer_info.feed_stop_forecast(trainer, self.run.stop, train_epoch_end=True)
        summed = trainer_ops.sum_over_ranks(trainer, metering.epoch_sums(epoch, end))  # a collective
        record = metering.epoch_record(epoch, end, summed)
        self.run.set_fit_energy(metering.summed_fit_j(summed), at_epoch_end=True)  # for a checkpoint
        self._add_window(metering.finish_epoch(record, end, self.run.window_batches, trainer.global_step))
        outcome = self.run.finish_epoch(record)
        if record.missing:
            self._warn("missing-epoch", missing_epoch_message(record))
        # where self.log would put them, at a fraction of its cost (epoch figures: summed, equal on all ranks)
        trainer_ops.publish(trainer, self.run.bar_metrics(), self.run.epoch_metrics(outcome))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer_info.feed_late_evaluation(trainer, self.run)  # the last epoch's
        # the whole fit on all ranks together: unknown when any rank could not measure it (a collective)
        summed = trainer_ops.sum_over_ranks(trainer, self._metering.fit_sums(self._meter.read()))
        self.run.set_fit_energy(self._metering.summed_fit_j(summed))
        self._write_report(trainer, self.run.status())
        if trainer.is_global_zero:
            if problem := fit_estimate.append_history(self.history_path, self.run, trainer.world_size):
                self._warn("history", problem)
            trainer_ops.print_line(trainer, self.run.stability_line())
        # ranks leave together: one tearing its process group down while rank 0 writes can make gloo abort it
        trainer.strategy.barrier("lightning_energy.on_fit_end")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if trainer_info.stage(trainer) is None:  # a failed validate/test/predict leaves the report alone
            detail = f": {exception}" if str(exception) else ""
            self.run.warn(f"training stopped by {type(exception).__name__}{detail}")
            self._write_report(trainer, "failed")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._meter.close()

    def state_dict(self) -> dict[str, Any]:
        return self.run.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_state = state_dict
        self._load(state_dict)

    def _load(self, state: Mapping[str, Any]) -> None:
        self._pending_state = None
        if problem := self.run.load_or_start_afresh(state):
            self._warn("state", problem)

    def _close_window(self, trainer: pl.Trainer, now: float) -> None:
        self._meter.mark("window_end", trainer.current_epoch)
        end = self._meter.read()
        window = self._metering.close_window(trainer.current_epoch, end)
        record = self._add_window(window)
        if record is not None and trainer.loggers:
            # straight to the loggers, as LearningRateMonitor does: self.log would wait for log_every_n_steps
            live_j = self._metering.live_total_j(self.run.ledger.measured_total_j, end)
            metrics = self.run.window_metrics(record, live_total_j=live_j)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=window.step)  # Lightning's step for the window's last batch
        self._metering.add_window_cost(time.monotonic() - now)
        if self._metering.first_window_in_epoch(window) or self._metering.refresh_due(now):
            self._refresh_bar(trainer, time.monotonic(), end)

    def _add_window(self, window: Window | None) -> WindowRecord | None:
        return self.run.add_window(window)

    def _refresh_bar(self, trainer: pl.Trainer, now: float, reading: Reading | None = None) -> None:
        """The live progress bar from this rank's meter (read here unless ``reading`` is given)."""
        reading, ledger = reading or self._meter.read(), self.run.ledger  # the read is timed below
        self._metering.schedule_refresh(time.monotonic(), time.monotonic() - now)
        live_j, extrapolated_j = self._metering.live_figures(reading, ledger, self.run.budget)
        trainer_ops.publish(trainer, self.run.bar_metrics(live_j, extrapolated_j=extrapolated_j))

    def _warn(self, cause: str, message: str) -> None:
        """Warn once per cause, on global rank 0 only; keep the message for the report."""
        self.run.warn(message)
        if cause not in self._warned:
            self._warned.add(cause)
            rank_zero_warn(f"lightning_energy: {message}", stacklevel=2)

    def _write_report(self, trainer: pl.Trainer, status: RunStatus) -> None:
        facts = trainer_info.report_facts(trainer, self._meter.labels(), self._meter.hardware())
        self.fit_report = self.run.report(status, facts)
        if not self.report or self._written or not trainer.is_global_zero or self._log_dir is None:
            return
        problem = self.run.write_report(self._log_dir, status, facts, built=self.fit_report)
        self._written = problem is None
        if problem is not None:
            self._warn("report", problem)
