"""``EnergyCallback``: measure, project and report the energy of a Lightning training run.

The callback is glue: it reads the meter at Lightning's boundaries, sums epoch energy over ranks once, and
hands everything to :class:`~lightning_energy.run.EnergyRun`, which owns the ledger, the STEP projections,
the PRE estimate and the report. Each hook is a few lines.

The epoch window: a training epoch's energy is the meter's reading at ``on_train_epoch_end`` minus its
reading at ``on_train_epoch_start``. It includes every training step and the validation loop that runs at
the end of the epoch (Lightning runs it before ``on_train_epoch_end``); it excludes the sanity check, which
runs before the first epoch, and what runs after the epoch (checkpoints saved by callbacks ordered after
this one). The whole fit, sanity check and gaps included, is reported separately as ``fit_energy_j``.

In-epoch windows: every ``window_batches`` training batches (default: 1/20 of the epoch) the callback reads
this rank's meter (a counter read, no synchronisation, no collective), scales it to all ranks with the last
epoch's all-rank ratio, and updates a projection of the total from the windows, logged at the global step.

Logged metrics (every Lightning logger; epoch metrics once per training epoch, the same value on every rank;
``*`` also at each window's end, at the global step):

=============================== ====== =====================================================================
name                            unit   meaning
=============================== ====== =====================================================================
``energy/epoch_kwh``            kWh    energy of this epoch, all ranks and components (not logged if missing)
``energy/epoch_power_w``        W      mean power over this epoch, all ranks (not logged if missing)
``energy/total_kwh`` *          kWh    measured energy since the first epoch, across resumes (not logged
                                       before anything was measured)
``energy/<category>_kwh``       kWh    the same for one category: ``gpu``, ``cpu``, ``ram`` (``other``)
``energy/projected_kwh`` *      kWh    projected energy of the whole run (STEP)
``energy/projected_low_kwh`` *  kWh    lower end of the projection's 90 % interval
``energy/projected_high_kwh`` * kWh    upper end of the projection's 90 % interval
``energy/stable`` *             0/1    1 once STEP has detected stable per-epoch (per-window) energy
``energy/pre_kwh``              kWh    the pre-training (PRE) estimate of the whole run, when there is one
``energy/co2_kg``               kg     CO2e of the measured energy (only with ``carbon_intensity``)
``energy/projected_co2_kg``     kg     CO2e of the projected energy (only with ``carbon_intensity``)
=============================== ====== =====================================================================

Progress bar: the energy so far, the projected total (``proj_``) and PRE (``pre_``), in the unit the run's
expected total reaches (``mWh``, ``Wh``, ``kWh`` or ``MWh``, chosen once per run), so the bar shows at least
three significant figures in both TQDM and Rich.
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
from lightning_energy.accounting import CATEGORIES, EpochRecord, by_category, check_reading, reading_delta
from lightning_energy.carbon import resolve_carbon_intensity
from lightning_energy.errors import EnergyError, MeterError
from lightning_energy.meters.base import EnergyMeter, NullMeter, as_meter
from lightning_energy.report_model import PreSummary, WindowRecord
from lightning_energy.run import EnergyRun, RunStateError, component_labels
from lightning_energy.step import StepProjector

# windows may cost at most this share of the fit's time so far, plus a small allowance for the first ones
# (the progress bar's refresh is not counted here: refresh_s bounds it)
WINDOW_TIME_SHARE = 0.0005
WINDOW_ALLOWANCE_S = 0.01
# after the first epoch, windows only when epochs are this long: shorter ones project often enough
LONG_EPOCH_S = 30.0
# a slow meter is read for the live bar no more often than this many times its read time
SLOW_READ_FACTOR = 20.0


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

    def _reset_fit_state(self) -> None:
        self._log_dir: Path | None = None
        self._fit_start: tuple[dict[str, float] | None, float] = (None, time.monotonic())
        self._epoch_start: tuple[dict[str, float] | None, float, str | None] = (None, time.monotonic(), None)
        self._epoch_open: int | None = None  # the epoch whose start was metered
        self._batches = 0  # training batches run in the current epoch
        self._window: tuple[dict[str, float] | None, float, int] = (None, time.monotonic(), 0)
        self._window_cost_s = 0.0  # time spent closing windows in this fit
        self._windows_on = True  # the first epoch always; later ones when they are long
        self._next_refresh_at = 0.0
        self._rank_ratio = 1.0  # all-rank energy / this rank's energy, from the last measured epoch
        self._written = False
        self._warned: set[str] = set()

    # ----------------------------------------------------------------------------------------------- hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._reset_fit_state()  # a new fit is a new run; a resume then loads the old one's state
        self._windows_on = self.window_batches != 0
        if self.projector is not None:  # the user's settings, without what an earlier fit fed it
            projector = self.projector.fresh()
        else:
            projector = StepProjector(val_every_n_epochs=trainer_info.val_every_n_epochs(trainer))
        self.run = EnergyRun(projector=projector, carbon=self.carbon)
        self._rank_ratio = float(trainer.world_size)
        self._log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # broadcasts: every rank calls it
        self._meter = self._open_meter(trainer)
        if self._pending_state is not None:
            self._load(self._pending_state)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)
        self._fit_start = (self._read_or_problem()[0], time.monotonic())
        if trainer.is_global_zero:
            from lightning_energy.tensorboard import add_energy_layout

            try:
                add_energy_layout(trainer)
            except Exception as exc:  # TensorBoard's own errors vary by version; the chart is optional
                self._warn("tensorboard", f"could not add the TensorBoard energy chart: {exc}")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the training batches are known only now: a ``max_steps`` budget becomes a number of epochs here
        self.run.set_budget(trainer_info.budget(trainer), self.window_batches)
        self._note_unmetered_epochs(trainer.current_epoch)
        if self.estimate and self.run.pre is None:  # the data is set up (public loaders), no step has run
            self._estimate_before_training(trainer, pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        reading, problem = self._boundary_read(trainer, "epoch_start")
        now = time.monotonic()
        self._epoch_start = (reading, now, problem)
        self._epoch_open = trainer.current_epoch
        self._batches = 0
        self._window = (reading, now, 0)
        self._next_refresh_at = now + self.refresh_s

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._batches += 1
        now = time.monotonic()
        unit = self.run.window_batches
        start, _, batches = self._window
        budget_s = WINDOW_TIME_SHARE * (now - self._fit_start[1]) + WINDOW_ALLOWANCE_S
        affordable = self._window_cost_s <= budget_s
        if unit and self._windows_on and batches + 1 >= unit and affordable:
            self._close_window(trainer, pl_module, now)
        else:
            self._window = (start, self._window[1], batches + 1)
            if now >= self._next_refresh_at:
                self._refresh_bar(pl_module, now)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        record, local_j = self._finish_epoch(trainer)  # a collective: every rank joins
        if record.energy_j is not None and local_j:
            self._rank_ratio = record.energy_j / local_j
        self._windows_on = self.window_batches != 0 and record.duration_s >= LONG_EPOCH_S
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
        self._window = (None, time.monotonic(), 0)  # the next epoch's start reading opens the next window

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        end, start = self._read_or_problem()[0], self._fit_start[0]
        fit_j: float | None = None
        if start is not None and end is not None:
            try:
                fit_j = sum(reading_delta(start, end).values())
            except MeterError:
                fit_j = None
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

    def _note_unmetered_epochs(self, first_epoch: int) -> None:
        """A resume from a checkpoint without our state (or mid-run): earlier epochs were never metered."""
        known = len(self.run.ledger.records)
        if first_epoch <= known:
            return
        reason = "not metered: resumed from a checkpoint without lightning_energy state"
        for epoch in range(known, first_epoch):
            self.run.finish_epoch(EpochRecord(epoch, 0.0, None, {}, reason))
        self._warn("unmetered", f"epochs {known}-{first_epoch - 1} were {reason}; the report is partial")

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

    def _boundary_read(self, trainer: pl.Trainer, event: str) -> tuple[dict[str, float] | None, str | None]:
        """Synchronise the training device and the meter, mark the boundary, read."""
        device = trainer.strategy.root_device
        if device.type == "cuda" and torch.cuda.is_initialized():
            torch.cuda.synchronize(device)
        try:
            self._meter.synchronize()
            self._meter.mark(event, trainer.current_epoch)
        except Exception as exc:  # optional hooks of a user's meter: warn once, keep metering
            self._warn(f"hook-{event}", f"the meter's synchronize()/mark({event!r}) failed: {exc}")
        return self._read_or_problem()

    def _read_or_problem(self) -> tuple[dict[str, float] | None, str | None]:
        try:
            return check_reading(self._meter.read()), None
        except Exception as exc:  # any meter failure makes this reading missing, never training
            if isinstance(exc, MeterError):
                return None, str(exc)
            return None, f"meter raised {type(exc).__name__}: {exc}"

    def _finish_epoch(self, trainer: pl.Trainer) -> tuple[EpochRecord, float | None]:
        """This epoch's record summed over all ranks, and this rank's energy (every rank must call this)."""
        start, started, problem = self._epoch_start
        if self._epoch_open != trainer.current_epoch:
            start, problem = None, "the epoch's start was not metered (resumed from a mid-epoch checkpoint)"
        end, end_problem = self._boundary_read(trainer, "epoch_end")
        duration_s = time.monotonic() - started
        categories = dict.fromkeys(CATEGORIES, 0.0)
        problem = problem or end_problem
        if problem is None and start is not None and end is not None:
            try:
                categories = by_category(reading_delta(start, end))
            except MeterError as exc:
                problem = str(exc)
        local = {**categories, "missing": float(problem is not None), "duration_s": duration_s, "ranks": 1.0}
        summed = self._sum_over_ranks(trainer, local)
        ranks = max(summed["ranks"], 1.0)
        epoch = trainer.current_epoch
        if summed["missing"] > 0:
            reason = problem or f"the meter failed on {int(summed['missing'])} of {int(ranks)} ranks"
            return EpochRecord(epoch, summed["duration_s"] / ranks, None, {}, reason, self._batches), None
        components = {c: summed[c] for c in CATEGORIES}
        record = EpochRecord(
            epoch, summed["duration_s"] / ranks, sum(components.values()), components, None, self._batches
        )
        self._window_remainder(trainer, end)
        return record, sum(categories.values())

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

    # ------------------------------------------------------------------------------------------ windows
    def _window_energy_j(self, start: dict[str, float] | None, end: dict[str, float] | None) -> float | None:
        if start is None or end is None:
            return None
        try:
            return sum(reading_delta(start, end).values()) * self._rank_ratio
        except MeterError:
            return None

    def _close_window(self, trainer: pl.Trainer, pl_module: pl.LightningModule, now: float) -> None:
        start, opened, batches = self._window
        try:
            self._meter.mark("window_end", trainer.current_epoch)
        except Exception as exc:  # an optional hook of a user's meter: warn once, keep metering
            self._warn("hook-window_end", f"the meter's mark('window_end') failed: {exc}")
        end, _ = self._read_or_problem()
        window = self._feed_window(trainer, start, end, opened, batches + 1, now)
        self._window = (end, now, 0)
        if window is not None and trainer.loggers:
            # straight to the loggers, as LearningRateMonitor does: self.log would wait for log_every_n_steps
            metrics = self.run.window_metrics(window, live_total_j=self._live_total_j(end))
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        self._window_cost_s += time.monotonic() - now
        first_in_epoch = self._batches <= batches + 1
        if first_in_epoch or now >= self._next_refresh_at:
            projected_j = None if window is None else window.total_j
            self._refresh_bar(pl_module, time.monotonic(), reading=end, projected_j=projected_j)

    def _window_remainder(self, trainer: pl.Trainer, end: dict[str, float] | None) -> None:
        """Close the epoch's last window at the epoch-end reading (validation at epoch end included)."""
        start, opened, batches = self._window
        if not self.run.window_batches or self.window_batches == 0 or batches <= 0 or start is None:
            return
        self._feed_window(trainer, start, end, opened, batches, time.monotonic())

    def _feed_window(
        self,
        trainer: pl.Trainer,
        start: dict[str, float] | None,
        end: dict[str, float] | None,
        opened: float,
        batches: int,
        now: float,
    ) -> WindowRecord | None:
        """One window from ``start`` to ``end`` (this rank's readings) into the run model."""
        return self.run.close_window(
            epoch=trainer.current_epoch,
            step=trainer.global_step,
            time_s=now - self._fit_start[1],
            batches=batches,
            energy_j=self._window_energy_j(start, end),
            duration_s=now - opened,
        )

    def _live_total_j(self, reading: dict[str, float] | None) -> float | None:
        """Energy of the run so far: measured epochs plus this rank's in-epoch energy scaled to all ranks."""
        start = self._epoch_start[0]
        in_epoch_j = self._window_energy_j(start, reading)
        if in_epoch_j is None:
            return None
        return (self.run.ledger.measured_total_j or 0.0) + in_epoch_j

    def _extrapolated_j(self, live_j: float | None) -> float | None:
        """Energy so far scaled to the planned batches: only to pick the bar's unit before any projection."""
        total = self.run.budget.total_batches
        done = len(self.run.ledger.records) * (self.run.budget.batches_per_epoch or 0) + self._batches
        if live_j is None or not total or done <= 0:
            return live_j
        return live_j * total / done

    def _refresh_bar(
        self,
        pl_module: pl.LightningModule,
        now: float,
        *,
        reading: dict[str, float] | None = None,
        projected_j: float | None = None,
    ) -> None:
        """The live progress bar from this rank's meter (read here unless ``reading`` is given)."""
        if reading is None:
            reading = self._read_or_problem()[0]
        read_s = time.monotonic() - now
        # respect refresh_s after the read returns, and read a slow meter less often
        self._next_refresh_at = time.monotonic() + max(self.refresh_s, SLOW_READ_FACTOR * read_s)
        live_j = self._live_total_j(reading)
        bar = self.run.bar_metrics(live_j, projected_j, extrapolated_j=self._extrapolated_j(live_j))
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
