"""What the callback needs to know about a Lightning ``Trainer``: the plan, the devices, the ranks."""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BackboneFinetuning, EarlyStopping, StochasticWeightAveraging, Timer
from lightning.pytorch.trainer.states import TrainerFn

from lightning_energy.budget import Budget
from lightning_energy.hardware import Hardware
from lightning_energy.labels import MeterLabel
from lightning_energy.report_model import TrainerFacts
from lightning_energy.run_metrics import component_labels
from lightning_energy.stages import Stage, as_stage
from lightning_energy.step.hints import EvalSchedule, KnownChange, batches_for_steps, known_changes
from lightning_energy.step.params import StepParams
from lightning_energy.step.projector import StepProjector
from lightning_energy.step.stop_tracker import StopSettings, StopTracker

if TYPE_CHECKING:
    from lightning_energy.run import EnergyRun


def _finite_positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _callbacks(trainer: pl.Trainer) -> list[pl.Callback]:
    """The Trainer's callbacks (Lightning's callback connector sets ``trainer.callbacks``; it is not
    declared on the class, so it is read here once, typed)."""
    callbacks: list[pl.Callback] = getattr(trainer, "callbacks", None) or []
    return callbacks


def batches_per_epoch(trainer: pl.Trainer) -> int | None:
    """Training batches per epoch after ``limit_train_batches``; ``None`` when unknown (iterable data)."""
    batches = trainer.num_training_batches
    return int(batches) if _finite_positive(batches) else None


def time_budget_s(trainer: pl.Trainer) -> float | None:
    """The ``max_time`` budget of the training stage in seconds, or ``None`` without one."""
    for callback in _callbacks(trainer):
        if isinstance(callback, Timer):
            elapsed = callback.time_elapsed("train")
            remaining = callback.time_remaining("train")
            if remaining is not None:
                return float(elapsed + remaining)
    return None


def has_early_stopping(trainer: pl.Trainer) -> bool:
    return any(isinstance(c, EarlyStopping) for c in _callbacks(trainer))


def budget(trainer: pl.Trainer) -> Budget:
    """The run's plan: ``max_epochs``, ``max_steps``, batches per epoch, ``max_time``, early stopping."""
    max_epochs = trainer.max_epochs
    max_steps = trainer.max_steps
    return Budget(
        max_epochs=int(max_epochs) if max_epochs is not None and max_epochs >= 0 else None,
        max_steps=int(max_steps) if max_steps is not None and max_steps > 0 else None,
        batches_per_epoch=batches_per_epoch(trainer),
        accumulate_grad_batches=max(1, int(trainer.accumulate_grad_batches)),
        total_seconds=time_budget_s(trainer),
        upper_bound=has_early_stopping(trainer),
    )


def stage(trainer: pl.Trainer) -> Stage | None:
    """``"validate"``, ``"test"`` or ``"predict"`` while the Trainer runs that entry point on its own;
    ``None`` during ``fit`` (its validation loops belong to the training epochs)."""
    fn = trainer.state.fn
    return None if fn is None else as_stage(str(fn.value))


def cuda_device_indices(trainer: pl.Trainer) -> list[int]:
    """The CUDA device this process trains on (its own, not every GPU of the node); empty on CPU."""
    device = trainer.strategy.root_device
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else 0]


def val_every_n_epochs(trainer: pl.Trainer) -> int | None:
    """Epoch period of validation inside the training epoch, when validation runs at all."""
    n = trainer.check_val_every_n_epoch
    if n is None or trainer.limit_val_batches == 0:
        return None
    return int(n)


def versions() -> dict[str, str]:
    import torch

    from lightning_energy._version import __version__

    return {
        "lightning_energy": __version__,
        "lightning": pl.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def report_facts(trainer: pl.Trainer, labels: Mapping[str, MeterLabel], hardware: Hardware) -> TrainerFacts:
    """What the report says about the run's setting: ranks, nodes and library versions from the Trainer,
    with the meter's ``labels`` (as the report's component labels) and ``hardware``."""
    components = component_labels(labels)
    return TrainerFacts(trainer.world_size, trainer.num_nodes, components, hardware, versions())


def early_stopping(trainer: pl.Trainer) -> EarlyStopping | None:
    """The Trainer's first ``EarlyStopping`` callback, if any."""
    for callback in _callbacks(trainer):
        if isinstance(callback, EarlyStopping):
            return callback
    return None


def checks_at_train_epoch_end(trainer: pl.Trainer, es: EarlyStopping) -> bool:
    """Whether ``es`` checks its metric at the end of each training epoch rather than after validation.

    Lightning keeps ``check_on_train_epoch_end`` in a private attribute, resolved in ``EarlyStopping.setup``
    (``None`` before: then the rule Lightning applies, validation once per epoch, is applied here).
    """
    flag = getattr(es, "_check_on_train_epoch_end", None)
    if isinstance(flag, bool):
        return flag
    return bool(trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1)


def stop_tracker(trainer: pl.Trainer) -> StopTracker | None:
    """The stop forecast of an ``EarlyStopping`` run (``None`` without one, or with settings it cannot use).

    Reads the callback's public settings (``check_finite`` too); ``min_delta`` is stored negated for
    ``mode="min"``. Evaluations are mapped to epochs with ``check_val_every_n_epoch`` /
    ``val_check_interval``, or one per epoch when the callback checks at the end of each training epoch.
    The Trainer's ``max_epochs`` bounds the run; its ``min_epochs`` (as the fit loop resolved it: 1 with
    ``min_steps`` alone) and ``min_steps`` hold a run whose rule fired earlier (``min_steps`` only with
    automatic optimization and a known number of batches per epoch: :func:`min_batches`).
    """
    es = early_stopping(trainer)
    if es is None:
        return None
    interval = trainer.val_check_interval
    every = trainer.check_val_every_n_epoch
    try:
        at_epoch_end = checks_at_train_epoch_end(trainer, es)
        settings = StopSettings(
            monitor=str(es.monitor),
            mode=str(es.mode),
            patience=int(es.patience),
            min_delta=abs(float(es.min_delta)),
            stopping_threshold=es.stopping_threshold,
            divergence_threshold=es.divergence_threshold,
            at_train_epoch_end=at_epoch_end,
            check_finite=bool(es.check_finite),
        )
        schedule = EvalSchedule(
            check_val_every_n_epoch=None if every is None else int(every),
            val_check_interval=float(interval) if isinstance(interval, float) else int(interval),
            batches_per_epoch=batches_per_epoch(trainer),
            check_on_train_epoch_end=at_epoch_end,
        )
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        min_epochs = trainer.min_epochs if trainer.min_epochs is not None and trainer.min_epochs > 0 else None
        return StopTracker(
            settings, schedule, max_epochs, min_epochs=min_epochs, min_batches=min_batches(trainer)
        )
    except (TypeError, ValueError):  # an unusual schedule: no forecast, nothing else changes
        return None


def min_batches(trainer: pl.Trainer) -> int | None:
    """The training batches after which ``global_step`` reaches the Trainer's ``min_steps`` (``None``:
    none, or not known: iterable data, or manual optimization, whose steps the module decides)."""
    steps, per_epoch = trainer.min_steps, batches_per_epoch(trainer)
    if not steps or steps < 1 or per_epoch is None or not trainer.lightning_module.automatic_optimization:
        return None
    return batches_for_steps(int(steps), per_epoch, max(1, int(trainer.accumulate_grad_batches)))


def swa_changes(trainer: pl.Trainer) -> tuple[KnownChange, ...]:
    """``StochasticWeightAveraging``'s start, from ``on_train_start`` on: its public ``swa_start`` (0-based),
    which it resolves in its ``on_fit_start`` (a fraction of ``max_epochs`` becomes an epoch there); a start
    it cannot give announces nothing."""
    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
    settings: list[Callable[[], tuple[KnownChange, ...]]] = []
    for callback in _callbacks(trainer):
        if isinstance(callback, StochasticWeightAveraging):
            try:
                start = callback.swa_start  # asserts the start is an epoch by now
            except (AssertionError, TypeError):
                continue
            # known_changes reads Lightning's 1-based setting: epoch swa_start + 1 starts at swa_start
            settings.append(partial(known_changes, max_epochs=max_epochs, swa_epoch_start=start + 1))
    return _changes(*settings)


def announced_changes(trainer: pl.Trainer, min_period: int | None = None) -> tuple[KnownChange, ...]:
    """Regime changes the Trainer announces at set-up: ``BackboneFinetuning`` and dataloader reloads (a
    setting that cannot be read announces nothing; the others still count). ``StochasticWeightAveraging``'s
    start and the LR schedule's steps are known from ``on_train_start``: :func:`swa_changes`,
    :func:`lr_schedule_changes`.

    A periodic change (``reload_dataloaders_every_n_epochs``) more often than every ``min_period`` epochs
    (default: the epochs STEP needs to declare a level, ``StepParams.min_units``) is the run's rhythm, not
    a change of regime: it announces nothing (else the projection could never be declared stable).
    """
    period = StepParams().min_units if min_period is None else min_period
    unfreeze = None
    for callback in _callbacks(trainer):
        if isinstance(callback, BackboneFinetuning):
            unfreeze = callback.unfreeze_backbone_at_epoch
    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
    reload_every = _periodic(getattr(trainer, "reload_dataloaders_every_n_epochs", 0), period)
    return _changes(
        partial(known_changes, max_epochs=max_epochs, unfreeze_backbone_at_epoch=unfreeze),
        partial(known_changes, max_epochs=max_epochs, reload_dataloaders_every_n_epochs=reload_every),
    )


def _changes(*settings: Callable[[], tuple[KnownChange, ...]]) -> tuple[KnownChange, ...]:
    """The changes each setting announces (``known_changes`` with that setting bound), together."""
    out: set[KnownChange] = set()
    for announce in settings:
        try:
            out.update(announce())
        except (TypeError, ValueError):  # an unusual setting announces nothing
            continue
    return tuple(sorted(out))


def _periodic(period: Any, min_period: int) -> Any:
    """A period shorter than ``min_period`` announces nothing (0); others pass on (validated later)."""
    return (
        0 if isinstance(period, int) and not isinstance(period, bool) and 0 < period < min_period else period
    )


def lr_schedule_changes(trainer: pl.Trainer, min_period: int) -> tuple[KnownChange, ...]:
    """The epochs at which an epoch-interval ``StepLR`` / ``MultiStepLR`` changes the learning rate.

    Read from ``trainer.lr_scheduler_configs`` (set up once the strategy is, i.e. from ``on_fit_start``):
    Lightning steps an ``interval="epoch"`` scheduler after every ``frequency``-th epoch, so scheduler step
    ``m`` starts at 0-based epoch ``m x frequency``. A ``StepLR`` stepping more often than every
    ``min_period`` epochs is a decay, not a change of regime, and announces nothing (see
    :func:`announced_changes`); so do other schedulers.
    """
    from torch.optim.lr_scheduler import MultiStepLR, StepLR

    max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
    settings: list[Callable[[], tuple[KnownChange, ...]]] = []
    for config in getattr(trainer, "lr_scheduler_configs", None) or ():
        frequency = getattr(config, "frequency", None)
        if getattr(config, "interval", None) != "epoch" or not isinstance(frequency, int) or frequency < 1:
            continue
        scheduler = getattr(config, "scheduler", None)
        if isinstance(scheduler, MultiStepLR):
            milestones = [int(m) * frequency for m in scheduler.milestones]
            settings.append(partial(known_changes, max_epochs=max_epochs, lr_milestones=milestones))
        elif isinstance(scheduler, StepLR) and int(scheduler.step_size) * frequency >= min_period:
            step_size = int(scheduler.step_size) * frequency
            settings.append(partial(known_changes, max_epochs=max_epochs, lr_step_size=step_size))
    return _changes(*settings)


def step_projector(trainer: pl.Trainer, template: StepProjector | None) -> StepProjector:
    """A user's projector keeps its settings, not its data; the default hears the Trainer's announcements."""
    if template is not None:
        return template.fresh()
    return StepProjector(
        val_every_n_epochs=val_every_n_epochs(trainer), known_changes=announced_changes(trainer)
    )


def start_forecasts(trainer: pl.Trainer, run: EnergyRun, template: StepProjector | None) -> None:
    """At ``on_train_start`` (the optimizers and the data are set up): the run's stop forecast when the
    Trainer has ``EarlyStopping`` (a resumed run's saved one replayed into it), and the LR schedule's change
    points and ``StochasticWeightAveraging``'s start for the default projector (a user's projector keeps its
    own settings)."""
    run.set_stop(stop_tracker(trainer))
    if template is None:
        run.projector.announce(
            lr_schedule_changes(trainer, run.projector.params.min_units) + swa_changes(trainer)
        )


def _monitored(trainer: pl.Trainer, stop: StopTracker) -> float | None:
    value = trainer.callback_metrics.get(stop.settings.monitor)
    return None if value is None else float(value)


def feed_stop_forecast(
    trainer: pl.Trainer, stop: StopTracker | None, *, train_epoch_end: bool = False
) -> None:
    """Give the monitored metric to the stop forecast where ``EarlyStopping`` checks it: after a validation
    (not the sanity check), or at the end of a training epoch (``train_epoch_end``) when it checks there
    (a metric the module logs in its own ``on_train_epoch_end``, after this hook, is read by
    :func:`feed_late_evaluation`)."""
    if stop is None or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
        return
    if stop.settings.at_train_epoch_end != train_epoch_end:
        return
    if train_epoch_end:
        stop.at_epoch_end(trainer.current_epoch, _monitored(trainer, stop))
    elif (value := _monitored(trainer, stop)) is not None:
        stop.evaluate(value)


def feed_late_evaluation(trainer: pl.Trainer, run: EnergyRun) -> None:
    """At the first hook after the module's ``on_train_epoch_end`` (the next ``on_train_epoch_start``, or
    ``on_fit_end`` after the last epoch): the metric the module logged there, attributed to its epoch."""
    stop = run.stop
    if stop is None or stop.pending_epoch is None:
        return
    epoch = stop.after_epoch_end(_monitored(trainer, stop))
    if epoch is not None:
        run.refresh_expected(epoch)
