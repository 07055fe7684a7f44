"""What the Trainer announces in advance, as pure data: known change points and the evaluation schedule.

* :class:`KnownChange` — an epoch at which the energy per epoch is expected to change regime (a backbone
  unfrozen, stochastic weight averaging starting, an LR step, dataloaders reloaded). :func:`known_changes`
  builds the sorted list from the settings a Lightning adapter reads (plain numbers only).
  :class:`~lightning_energy.step.StepProjector` takes the list: it never declares stability across an
  announced change still to come, and re-levels from the change's first epoch once it has happened.
* :class:`EvalSchedule` — how often the monitored metric is evaluated (``check_val_every_n_epoch``,
  ``val_check_interval``, ``check_on_train_epoch_end``), and :meth:`EvalSchedule.epochs_per_evaluation`
  to map the stop forecaster's evaluations to epochs; :meth:`EvalSchedule.evaluations_at_stop` and
  :func:`batches_for_steps` map the Trainer's ``min_steps`` to evaluations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lightning_energy._validate import finite_number

CHANGE_KINDS = (
    "unfreeze",  # BackboneFinetuning(unfreeze_backbone_at_epoch=...)
    "swa",  # StochasticWeightAveraging(swa_epoch_start=...)
    "lr_step",  # StepLR / MultiStepLR milestones (epoch-interval schedules)
    "reload_dataloaders",  # Trainer(reload_dataloaders_every_n_epochs=...)
    "validation",  # a change of the validation schedule or of limit_val_batches
    "other",
)


def _epoch(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


@dataclass(frozen=True, order=True)
class KnownChange:
    """The energy per epoch may change from epoch ``epoch`` (0-based, the first epoch of the new regime)."""

    epoch: int
    kind: str = "other"

    def __post_init__(self) -> None:
        _epoch("epoch", self.epoch)
        if self.kind not in CHANGE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(CHANGE_KINDS)}, got {self.kind!r}")


def known_changes(
    *,
    unfreeze_backbone_at_epoch: int | None = None,
    swa_epoch_start: int | float | None = None,
    max_epochs: int | None = None,
    lr_milestones: Iterable[int] = (),
    lr_step_size: int | None = None,
    reload_dataloaders_every_n_epochs: int = 0,
) -> tuple[KnownChange, ...]:
    """The sorted, de-duplicated changes announced by these settings, within ``max_epochs`` when given.

    ``swa_epoch_start`` is a 1-based epoch (int) or a fraction of ``max_epochs`` (float), as Lightning reads
    it (SWA then starts at 0-based epoch ``max(start - 1, 0)``);
    ``lr_step_size`` (``StepLR``) repeats every that many epochs up to ``max_epochs`` (and needs it);
    ``reload_dataloaders_every_n_epochs`` > 0 announces a change at every multiple (only the first 100).
    """
    out: set[KnownChange] = set()
    if unfreeze_backbone_at_epoch is not None:
        out.add(KnownChange(_epoch("unfreeze_backbone_at_epoch", unfreeze_backbone_at_epoch), "unfreeze"))
    if swa_epoch_start is not None:  # Lightning: 1-based, a float is int(max_epochs x fraction)
        if isinstance(swa_epoch_start, float):
            if not 0.0 < swa_epoch_start <= 1.0 or max_epochs is None:
                raise ValueError(
                    f"a float swa_epoch_start must be in (0, 1] with max_epochs, got {swa_epoch_start!r}"
                )
            start = int(max_epochs * swa_epoch_start)
        else:
            start = _epoch("swa_epoch_start", swa_epoch_start)
        out.add(KnownChange(max(start - 1, 0), "swa"))
    for milestone in lr_milestones:
        out.add(KnownChange(_epoch("lr_milestones", milestone), "lr_step"))
    if lr_step_size is not None:
        step = _epoch("lr_step_size", lr_step_size)
        if step < 1 or max_epochs is None:
            raise ValueError(f"lr_step_size needs to be >= 1 with max_epochs, got {lr_step_size!r}")
        out.update(KnownChange(e, "lr_step") for e in range(step, max_epochs, step))
    every = _epoch("reload_dataloaders_every_n_epochs", reload_dataloaders_every_n_epochs)
    if every:
        last = 100 * every if max_epochs is None else max_epochs
        out.update(KnownChange(e, "reload_dataloaders") for e in range(every, last, every))
    if max_epochs is not None:
        out = {c for c in out if c.epoch < max_epochs}
    return tuple(sorted(out))


@dataclass(frozen=True)
class EvalSchedule:
    """When the monitored metric is evaluated, from the Trainer's and the ``EarlyStopping``'s settings.

    ``val_check_interval`` is a fraction of an epoch (float) or a number of training batches (int);
    ``batches_per_epoch`` is needed with an int interval. ``check_on_train_epoch_end``: the callback checks
    at the end of every training epoch instead of after validation.
    """

    check_val_every_n_epoch: int | None = 1
    val_check_interval: float | int = 1.0
    batches_per_epoch: int | None = None
    check_on_train_epoch_end: bool = False

    def __post_init__(self) -> None:
        every = self.check_val_every_n_epoch
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"check_val_every_n_epoch must be an int >= 1 or None, got {every!r}")
        interval = self.val_check_interval
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"val_check_interval must be an int or a float, got {interval!r}")
        if isinstance(interval, float):
            if not 0.0 < interval <= 1.0:
                raise ValueError(f"val_check_interval must be in (0, 1] as a float, got {interval!r}")
        else:
            if interval < 1:
                raise ValueError(f"val_check_interval must be >= 1 as an int, got {interval!r}")
            if self.batches_per_epoch is None:
                raise ValueError("an int val_check_interval needs batches_per_epoch")
        if self.batches_per_epoch is not None:
            if isinstance(self.batches_per_epoch, bool) or not isinstance(self.batches_per_epoch, int):
                raise TypeError(f"batches_per_epoch must be an int or None, got {self.batches_per_epoch!r}")
            if self.batches_per_epoch < 1:
                raise ValueError(f"batches_per_epoch must be >= 1, got {self.batches_per_epoch!r}")
        if every is None and isinstance(interval, float) and not self.check_on_train_epoch_end:
            raise ValueError("check_val_every_n_epoch=None needs an int val_check_interval (in batches)")

    def epochs_per_evaluation(self) -> float:
        """Epochs between two evaluations of the monitored metric (a fraction with several per epoch)."""
        if self.check_on_train_epoch_end:
            return 1.0
        every = self.check_val_every_n_epoch
        interval = self.val_check_interval
        if isinstance(interval, float):
            if self.batches_per_epoch is not None:  # Lightning's val_check_batch: every int(n x interval)
                per_epoch = self.batches_per_epoch // max(1, int(self.batches_per_epoch * interval))
            else:
                per_epoch = max(int(1.0 / interval + 1e-9), 1)
            return float(every or 1) / per_epoch
        assert self.batches_per_epoch is not None
        if every is None:  # every ``interval`` batches across epoch boundaries
            return interval / self.batches_per_epoch
        per_epoch = max(self.batches_per_epoch // interval, 1)
        return float(every) / per_epoch

    def evaluations_in(self, epochs: float) -> int:
        """Evaluations made in ``epochs`` epochs (the ``max_epochs`` bound in evaluations)."""
        epochs = finite_number("epochs", epochs, minimum=0.0)
        return int(epochs / self.epochs_per_evaluation() + 1e-9)

    def epochs_at(self, evaluations: float) -> float:
        """Epochs trained when the run has made ``evaluations`` evaluations."""
        evaluations = finite_number("evaluations", evaluations, minimum=0.0)
        return evaluations * self.epochs_per_evaluation()

    def evaluations_at_stop(self, batches: int) -> int | None:
        """Evaluations made when a fit whose ``should_stop`` is set ends after ``batches`` training batches
        (the Trainer's ``min_steps`` met there); ``None`` without ``batches_per_epoch`` where it is needed.

        Those scheduled up to that batch, plus the one Lightning adds there when the batch is not a
        scheduled one: the training epoch loop validates at the stopping batch of a validation epoch
        (``_should_check_val_fx``), and a check at the training epoch end runs when the cut epoch ends.
        Within an epoch, validations fall every ``int(batches_per_epoch x val_check_interval)`` batches
        (a float interval) or every ``val_check_interval`` batches (an int), as Lightning's fit loop sets
        ``val_check_batch``.
        """
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise ValueError(f"batches must be an int >= 1, got {batches!r}")
        per_epoch = self.batches_per_epoch
        every, interval = self.check_val_every_n_epoch, self.val_check_interval
        if self.check_on_train_epoch_end:
            return None if per_epoch is None else -(-batches // per_epoch)
        if every is None:  # every ``interval`` batches across epoch boundaries (an int, validated)
            return -(-batches // int(interval))
        if per_epoch is None:
            return None
        step = max(1, int(per_epoch * interval)) if isinstance(interval, float) else interval
        epoch, local = divmod(batches - 1, per_epoch)
        local += 1
        made = (epoch // every) * (per_epoch // step)
        if (epoch + 1) % every == 0:  # the stopping batch lies in a validation epoch
            made += local // step + (1 if local % step else 0)
        return made


def batches_for_steps(steps: int, batches_per_epoch: int, accumulate_grad_batches: int = 1) -> int:
    """Training batches after which Lightning's ``global_step`` reaches ``steps`` (automatic optimization
    with one optimizer: a step every ``accumulate_grad_batches`` batches and at each epoch's last batch)."""
    for name, value in (
        ("steps", steps),
        ("batches_per_epoch", batches_per_epoch),
        ("accumulate_grad_batches", accumulate_grad_batches),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    per_epoch = -(-batches_per_epoch // accumulate_grad_batches)
    epoch, step = divmod(steps - 1, per_epoch)
    return epoch * batches_per_epoch + min((step + 1) * accumulate_grad_batches, batches_per_epoch)
