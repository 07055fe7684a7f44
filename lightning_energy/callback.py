"""``EnergyCallback``: measure, project and report the energy of a Lightning training run.

The callback is glue: it reads the meter at Lightning's boundaries, sums epoch energy over ranks once, and
hands everything to :class:`~lightning_energy.run.EnergyRun`, which owns the ledger, the STEP projections,
the PRE estimate and the report. Each hook is a few lines.

The epoch window: a training epoch's energy is the meter's reading at ``on_train_epoch_end`` minus its
reading at ``on_train_epoch_start``. It includes every training step and the validation loop that runs at
the end of the epoch (Lightning runs it before ``on_train_epoch_end``); it excludes the sanity check, which
runs before the first epoch, and what runs after the epoch (checkpoints saved by callbacks ordered after
this one). The whole fit, sanity check and gaps included, is reported separately as ``fit_energy_j``.

In-epoch windows every ``window_batches`` training batches (default: 1/20 of the epoch) and the live
progress bar are scheduled by :class:`~lightning_energy.metering.Metering`, the pure state machine this
callback feeds with timestamped readings. The logged metrics and their units are listed in the docs
(``docs/callback.md``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_energy import fit_estimate, trainer_info
from lightning_energy._validate import finite_number
from lightning_energy.carbon import resolve_carbon_intensity
from lightning_energy.errors import EnergyError
from lightning_energy.metering import Due, Metering, Reading, Window, take_reading
from lightning_energy.meters.base import EnergyMeter, NullMeter, as_meter
from lightning_energy.report_model import PreSummary
from lightning_energy.run import EnergyRun, RunStateError, component_labels
from lightning_energy.step import StepProjector


class EnergyCallback(pl.Callback):
    """Measure the energy of training, project the whole run's total and write a report.

    Args:
        meter: ``"auto"`` (default: the NVML meter for the GPU this process trains on plus, on local rank 0,
            the host CPU/RAM meter; the host meter alone on CPU) or a meter instance (an
            :class:`~lightning_energy.meters.EnergyMeter`, or any object with ``read()`` returning cumulative
            joules per component and ``close()``). Meters passed in are not closed by the callback.
        carbon_intensity: grams CO2e per kWh, or an ISO 3166 country code (``"FR"``/``"FRA"``) resolved
            offline from CodeCarbon's bundled data. ``None`` (default): CO2 is not reported.
        pue: power usage effectiveness of the data centre, applied to CO2 only (default 1.0).
        projector: the STEP projector; default ``StepProjector()`` with the trainer's validation period.
        estimate: run the pre-training (PRE) estimate when training starts (before any step) on CUDA runs.
        history_path: the run-history database used to calibrate PRE and appended to at the end of each
            run; ``None`` for the default in the user's cache directory, ``False`` to disable history.
        report: write ``energy_report.json`` and ``energy_epochs.csv`` into the run's log directory.
        refresh_s: the most often, in seconds, that the progress bar's energy is refreshed during an epoch.
        window_batches: training batches per in-epoch window; ``None`` (default) for 1/20 of the epoch,
            ``0`` to turn windows off.
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
        if isinstance(meter, str):
            if meter != "auto":
                raise ValueError(f"meter must be 'auto' or a meter instance, got {meter!r}")
            self._user_meter: EnergyMeter | None = None
        else:
            self._user_meter = as_meter(meter)  # TypeError naming `meter` for a class or a non-meter
        if projector is not None and not isinstance(projector, StepProjector):
            raise TypeError(f"projector must be a StepProjector or None, got {type(projector).__name__}")
        for name, flag in (("estimate", estimate), ("report", report)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        if history_path is not None and not isinstance(history_path, str | Path | bool):
            raise TypeError(
                f"history_path must be a path, None (default location) or False (no history), "
                f"got {history_path!r}"
            )
        if window_batches is not None and (
            isinstance(window_batches, bool) or not isinstance(window_batches, int) or window_batches < 0
        ):
            raise ValueError(
                f"window_batches must be a whole number of batches >= 0 or None, got {window_batches!r}"
            )
        self.meter_spec = meter
        self.carbon = resolve_carbon_intensity(carbon_intensity, pue=pue)
        self.estimate = estimate
        self.history_path: str | Path | bool | None = None if history_path is True else history_path
        self.report = report
        self.refresh_s = finite_number("refresh_s", refresh_s, minimum=0.0, what="a number of seconds")
        self.window_batches = window_batches
        self.projector = projector
        self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._meter: EnergyMeter = NullMeter("the callback has not been set up by a Trainer yet")
        self._pending_state: Mapping[str, Any] | None = None
        self._reset_fit_state()

    def _reset_fit_state(self, world_size: int = 1) -> None:
        self._log_dir: Path | None = None
        self._metering = Metering(
            window_batches=self.window_batches,
            refresh_s=self.refresh_s,
            world_size=world_size,
            now=time.monotonic(),
        )
        self._written = False
        self._warned: set[str] = set()

    # ----------------------------------------------------------------------------------------------- hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._reset_fit_state(
            trainer.world_size
        )  # a new fit is a new run; a resume loads the old one's state
        if self.projector is not None:  # the user's settings, without what an earlier fit fed it
            projector = self.projector.fresh()
        else:
            projector = StepProjector(
                val_every_n_epochs=trainer_info.val_every_n_epochs(trainer),
                known_changes=trainer_info.announced_changes(trainer),
            )
        self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # broadcasts: every rank calls it
        self._meter = self._open_meter(trainer)
        if self._pending_state is not None:
            self._load(self._pending_state)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)
        self._metering.start_fit(self._read())
        if trainer.is_global_zero:
            from lightning_energy.tensorboard import add_energy_layout

            try:
                add_energy_layout(trainer)
            except Exception as exc:  # TensorBoard's own errors vary by version; the chart is optional
                self._warn("tensorboard", f"could not add the TensorBoard energy chart: {exc}")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the training batches are known only now: a ``max_steps`` budget becomes a number of epochs here
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)
        self.run.stop = trainer_info.stop_tracker(trainer)  # EarlyStopping: forecast the stop
        reason = "not metered: resumed from a checkpoint without lightning_energy state"
        epochs = self.run.note_unmetered(trainer.current_epoch, reason)
        if epochs:
            self._warn("unmetered", f"epochs {epochs[0]}-{epochs[-1]} were {reason}; the report is partial")
        if self.estimate and self.run.pre is None:  # the data is set up (public loaders), no step has run
            self._estimate_before_training(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        stop = self.run.stop
        if stop is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(stop.settings.monitor)
        if value is not None:
            stop.evaluate(float(value))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._metering.start_epoch(trainer.current_epoch, self._boundary_read(trainer, "epoch_start"))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        due = self._metering.batch_end(now, self.run.window_batches)
        if due is Due.WINDOW:
            self._close_window(trainer, pl_module, now)
        elif due is Due.REFRESH:
            self._refresh_bar(pl_module, now)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch, metering = trainer.current_epoch, self._metering
        end = self._boundary_read(trainer, "epoch_end")
        summed = self._sum_over_ranks(trainer, metering.epoch_sums(epoch, end))  # a collective: all ranks
        record = metering.epoch_record(epoch, end, summed)
        last = metering.finish_epoch(record, end, self.run.window_batches)
        if last is not None:
            self._feed_window(trainer, last)
        outcome = self.run.finish_epoch(record)
        if record.missing:
            self._warn(
                "missing-epoch",
                f"epoch {record.epoch}: energy not measured ({record.reason}); it is marked missing, "
                "later ones are listed in the report",
            )
        # values are already summed over ranks and equal everywhere: "max" only tells Lightning so
        sync = trainer.world_size > 1
        to_logger = bool(trainer.loggers)
        metrics = self.run.epoch_metrics(outcome)
        pl_module.log_dict(metrics, prog_bar=False, logger=to_logger, sync_dist=sync, reduce_fx="max")
        # the bar is this rank's display: no collective (its keys are chosen per rank)
        pl_module.log_dict(self.run.bar_metrics(), prog_bar=True, logger=False)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fit_j = self._metering.fit_energy_j(self._read())
        # the whole fit on all ranks together: unknown when any rank could not measure it (a collective)
        summed = self._sum_over_ranks(trainer, {"fit_j": fit_j or 0.0, "unknown": float(fit_j is None)})
        self.run.fit_energy_j = None if summed["unknown"] else summed["fit_j"]
        self._write_report(trainer, self.run.status())
        if trainer.is_global_zero:
            self._append_history(trainer)
            rank_zero_info(f"lightning_energy: {self.run.stability_line()}")
        # ranks leave fit together: a rank that tears its process group down while rank 0 still writes the
        # report can make gloo abort it at exit (a teardown race that rank skew exposes)
        trainer.strategy.barrier("lightning_energy.on_fit_end")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        detail = f": {exception}" if str(exception) else ""
        self.run.warn(f"training stopped by {type(exception).__name__}{detail}")
        self._write_report(trainer, "failed")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._user_meter is None:
            try:
                self._meter.close()
            except Exception as exc:  # a meter's own failure on close must not hide the run's outcome
                self._warn("close", f"closing the energy meter failed: {exc}")
            self._meter = NullMeter("the meter was closed at the end of the fit")

    # ------------------------------------------------------------------------------------ checkpointing
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

    # ------------------------------------------------------------------------------------------ metering
    def _open_meter(self, trainer: pl.Trainer) -> EnergyMeter:
        if self._user_meter is not None:
            return self._user_meter
        from lightning_energy.meters import auto_meter

        try:
            return auto_meter(trainer_info.cuda_device_indices(trainer), meter_host=trainer.local_rank == 0)
        except Exception as exc:  # any failure to open hardware means "no meter", never a crashed fit
            reason = f"no energy meter available: {exc}"
            self._warn("no-meter", f"{reason}. Epoch energy will be reported as missing.")
            return NullMeter(reason)

    def _read(self) -> Reading:
        return take_reading(self._meter.read, time.monotonic())

    def _boundary_read(self, trainer: pl.Trainer, event: str) -> Reading:
        """Synchronise the training device and the meter, mark the boundary, read."""
        device = trainer.strategy.root_device
        if device.type == "cuda" and torch.cuda.is_initialized():
            torch.cuda.synchronize(device)
        self._mark(trainer, event, synchronize=True)
        return self._read()

    def _mark(self, trainer: pl.Trainer, event: str, *, synchronize: bool = False) -> None:
        try:
            if synchronize:
                self._meter.synchronize()
            self._meter.mark(event, trainer.current_epoch)
        except Exception as exc:  # optional hooks of a user's meter: warn once, keep metering
            what = f"synchronize()/mark({event!r})" if synchronize else f"mark({event!r})"
            self._warn(f"hook-{event}", f"the meter's {what} failed: {exc}")

    @staticmethod
    def _sum_over_ranks(trainer: pl.Trainer, values: dict[str, float]) -> dict[str, float]:
        """``values`` summed over all ranks, by name (one collective; every rank must call it)."""
        if trainer.world_size <= 1:
            return values
        names = sorted(values)
        tensor = torch.tensor(
            [values[n] for n in names], dtype=torch.float64, device=trainer.strategy.root_device
        )
        reduced = trainer.strategy.reduce(tensor, reduce_op="sum")
        return dict(zip(names, (float(v) for v in reduced.cpu().tolist()), strict=True))

    def _close_window(self, trainer: pl.Trainer, pl_module: pl.LightningModule, now: float) -> None:
        self._mark(trainer, "window_end")
        end = self._read()
        window = self._metering.close_window(trainer.current_epoch, end)
        record = self._feed_window(trainer, window)
        if record is not None and trainer.loggers:
            # straight to the loggers, as LearningRateMonitor does: self.log would wait for log_every_n_steps
            live_j = self._metering.live_total_j(self.run.ledger.measured_total_j, end)
            metrics = self.run.window_metrics(record, live_total_j=live_j)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        self._metering.add_window_cost(time.monotonic() - now)
        if self._metering.first_window_in_epoch(window) or self._metering.refresh_due(now):
            projected_j = None if record is None else record.total_j
            self._refresh_bar(pl_module, time.monotonic(), reading=end, projected_j=projected_j)

    def _feed_window(self, trainer: pl.Trainer, window: Window) -> Any:
        return self.run.close_window(
            epoch=window.epoch,
            step=trainer.global_step,
            time_s=window.time_s,
            batches=window.batches,
            energy_j=window.energy_j,
            duration_s=window.duration_s,
        )

    def _refresh_bar(
        self,
        pl_module: pl.LightningModule,
        now: float,
        *,
        reading: Reading | None = None,
        projected_j: float | None = None,
    ) -> None:
        """The live progress bar from this rank's meter (read here unless ``reading`` is given)."""
        metering, budget = self._metering, self.run.budget
        reading = reading or self._read()
        metering.schedule_refresh(time.monotonic(), time.monotonic() - now)
        live_j = metering.live_total_j(self.run.ledger.measured_total_j, reading)
        extrapolated_j = metering.extrapolated_j(
            live_j,
            epochs_done=len(self.run.ledger.records),
            batches_per_epoch=budget.batches_per_epoch,
            total_batches=budget.total_batches,
        )
        bar = self.run.bar_metrics(live_j, projected_j, extrapolated_j=extrapolated_j)
        if bar:
            pl_module.log_dict(bar, prog_bar=True, logger=False)

    # ------------------------------------------------------------------------------------------- PRE
    def _estimate_before_training(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer_info.cuda_device_indices(trainer):
            self.run.set_pre(PreSummary(skipped="CPU-only training: PRE models GPU energy"))
            rank_zero_info("lightning_energy: PRE estimate skipped (CPU-only training).")
            return
        try:
            pre = fit_estimate.estimate_fit(
                trainer,
                pl_module,
                hardware=self._meter_extra("hardware"),
                history_path=self.history_path,
                budget=self.run.budget,
            )
        except Exception as exc:  # an estimate never stops training: any failure is a warning
            self.run.set_pre(PreSummary(skipped=f"estimation failed: {type(exc).__name__}: {exc}"))
            self._warn("pre", f"PRE estimate failed, training continues without it: {exc}")
            return
        self.run.set_pre(pre)
        bound = " (an upper bound: early stopping may end the run sooner)" if pre.upper_bound else ""
        rank_zero_info(f"lightning_energy: {fit_estimate.summary(pre)}{bound}")

    def _append_history(self, trainer: pl.Trainer) -> None:
        try:
            fit_estimate.record_run(self.history_path, self.run.pre, self.run.ledger, trainer.world_size)
        except Exception as exc:  # the history is a convenience: a failure must not fail the fit
            self._warn("history", f"could not append this run to the run history: {exc}")

    # ------------------------------------------------------------------------------------------- helpers
    def _meter_extra(self, name: str) -> Mapping[str, Any]:
        """The meter's ``labels`` or ``hardware``, or ``{}`` when a user's meter raises reading it."""
        try:
            value = getattr(self._meter, name)
            return dict(value) if isinstance(value, Mapping) else {}
        except Exception as exc:  # a user's property may raise anything: the report must still be written
            self._warn(f"meter-{name}", f"the meter's {name} could not be read: {exc}")
            return {}

    def _warn(self, cause: str, message: str) -> None:
        """Warn once per cause, on global rank 0 only; keep the message for the report."""
        self.run.warn(message)
        if cause in self._warned:
            return
        self._warned.add(cause)
        rank_zero_warn(f"lightning_energy: {message}", stacklevel=2)

    # ------------------------------------------------------------------------------------------ reporting
    def _write_report(self, trainer: pl.Trainer, status: str) -> None:
        if not self.report or self._written or not trainer.is_global_zero or self._log_dir is None:
            return
        from lightning_energy.report import write_report

        try:
            report = self.run.report(
                status,
                world_size=trainer.world_size,
                num_nodes=trainer.num_nodes,
                components=component_labels(self._meter_extra("labels")),
                hardware=self._meter_extra("hardware"),
                versions=trainer_info.versions(),
            )
            write_report(self._log_dir, report)
            self._written = True
        except (OSError, EnergyError, ValueError, TypeError) as exc:
            note = "" if isinstance(exc, OSError) else "; no file was changed"  # an OSError says what changed
            self._warn("report", f"the energy report was not written ({exc}){note}")
