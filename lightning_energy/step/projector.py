"""The online STEP projector: keeps a bounded buffer of units and projects the run's total energy.

See ``docs/step.md`` for the method; the analysis is :mod:`lightning_energy.step.analysis`, the projection
itself (the :class:`~lightning_energy.step.projection.Projection` it returns and how it is made from the
buffer) :mod:`lightning_energy.step.projection`, and every tuning constant lives in
:class:`~lightning_energy.step.params.StepParams`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from lightning_energy._validate import finite_number
from lightning_energy.budget import ProjectionBudget
from lightning_energy.errors import ProjectionError
from lightning_energy.step.analysis import normal_quantile
from lightning_energy.step.buffer import UnitBuffer, check_number, is_val_unit
from lightning_energy.step.hints import KnownChange
from lightning_energy.step.params import StepParams
from lightning_energy.step.projection import PROJECTION_METHODS, Projection, ProjectionMethod, project

# Projection, ProjectionMethod, PROJECTION_METHODS: re-exported (their import path before
# lightning_energy.step.projection)
__all__ = ["PROJECTION_METHODS", "Projection", "ProjectionMethod", "StepProjector"]

STATE_VERSION = 2
MAX_WORK = 1e6


def _units(
    total_epochs: float | None, total_seconds: float | None, budget: ProjectionBudget | None
) -> tuple[float | None, float | None]:
    """The planned epochs or seconds: from ``budget`` when given (then neither of the others)."""
    if budget is None:
        return total_epochs, total_seconds
    if not isinstance(budget, ProjectionBudget):
        raise TypeError(f"budget must be a ProjectionBudget or None, got {type(budget).__name__}")
    if total_epochs is not None or total_seconds is not None:
        raise ProjectionError(
            "give the budget either as budget= or as total_epochs/total_seconds, not both: got "
            f"budget={budget!r}, total_epochs={total_epochs!r}, total_seconds={total_seconds!r}"
        )
    epochs = budget.total_epochs
    if isinstance(epochs, float) and epochs.is_integer():
        epochs = int(epochs)  # whole epoch counts read as ints (in messages too)
    return epochs, budget.total_seconds


class StepProjector:
    """Online projector of a training run's total energy (STEP).

    Args:
        confidence: coverage probability of ``[low_j, high_j]``, in (0, 1).
        val_every_n_epochs: Lightning's ``check_val_every_n_epoch``; unit ``e`` (0-based) validates iff
            ``(e + 1) % n == 0``. ``None``: no schedule known (periodic spikes are then averaged in).
        params: the tuning constants (default: the values chosen on the tuning data).
        prior_epoch_energy_j: a PRE estimate of the mean energy per unit, used before stability (give
            ``prior_rel_sigma`` with it, or neither).
        prior_rel_sigma: the relative standard deviation of ``prior_epoch_energy_j``.
        unit_name: what a unit is called in :attr:`Projection.reason` (``"epoch"``, ``"window"``).
        known_changes: epochs at which the Trainer announces a regime change (:class:`KnownChange`, e.g.
            from :func:`~lightning_energy.step.hints.known_changes`): the projection is never declared
            stable while one is still to come, and the level is read from the latest one's first epoch on.
    """

    def __init__(
        self,
        *,
        confidence: float = 0.9,
        val_every_n_epochs: int | None = None,
        params: StepParams | None = None,
        prior_epoch_energy_j: float | None = None,
        prior_rel_sigma: float | None = None,
        unit_name: str = "epoch",
        known_changes: Iterable[KnownChange] = (),
    ) -> None:
        confidence = finite_number("confidence", confidence)
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        if val_every_n_epochs is not None:
            if isinstance(val_every_n_epochs, bool) or not isinstance(val_every_n_epochs, int):
                raise TypeError(f"val_every_n_epochs must be an int or None, got {val_every_n_epochs!r}")
            if val_every_n_epochs < 1:
                raise ValueError(f"val_every_n_epochs must be >= 1, got {val_every_n_epochs!r}")
        if params is not None and not isinstance(params, StepParams):
            raise TypeError(f"params must be a StepParams or None, got {type(params).__name__}")
        if not isinstance(unit_name, str) or not unit_name:
            raise TypeError(f"unit_name must be a non-empty str, got {unit_name!r}")
        if (prior_epoch_energy_j is None) != (prior_rel_sigma is None):
            raise ValueError(
                "prior_epoch_energy_j and prior_rel_sigma must be given together, got "
                f"prior_epoch_energy_j={prior_epoch_energy_j!r}, prior_rel_sigma={prior_rel_sigma!r}"
            )
        changes = tuple(known_changes)
        for change in changes:
            if not isinstance(change, KnownChange):
                raise TypeError(f"known_changes must hold KnownChange items, got {change!r}")
        self.known_changes = tuple(sorted(set(changes)))
        self.confidence = confidence
        self.val_every_n_epochs = val_every_n_epochs
        self.params = StepParams() if params is None else params
        self.unit_name = unit_name
        self._z = normal_quantile(0.5 + confidence / 2.0)
        self._prior_j: float | None = None
        self._prior_rel_sigma: float | None = None
        if prior_epoch_energy_j is not None and prior_rel_sigma is not None:
            try:
                self.set_prior(prior_epoch_energy_j, prior_rel_sigma)
            except ProjectionError as err:
                raise ValueError(str(err).replace("epoch_energy_j", "prior_epoch_energy_j")) from err
        self._reset()

    def fresh(self, *, keep_prior: bool = True) -> StepProjector:
        """A projector with the same settings (and prior, unless ``keep_prior`` is false) that has seen
        nothing: for a new run."""
        twin = StepProjector(
            confidence=self.confidence,
            val_every_n_epochs=self.val_every_n_epochs,
            params=self.params,
            unit_name=self.unit_name,
            known_changes=self.known_changes,
        )
        if keep_prior and self._prior_j is not None and self._prior_rel_sigma is not None:
            twin.set_prior(self._prior_j, self._prior_rel_sigma)
        return twin

    def announce(self, known_changes: Iterable[KnownChange]) -> None:
        """Add change points the Trainer announces later (e.g. the LR schedule, known once the optimizers
        are set up); they count from the next projection on."""
        changes = tuple(known_changes)
        for change in changes:
            if not isinstance(change, KnownChange):
                raise TypeError(f"known_changes must hold KnownChange items, got {change!r}")
        self.known_changes = tuple(sorted(set(self.known_changes) | set(changes)))

    def _reset(self) -> None:
        self._buffer = UnitBuffer(self.params.history)
        self._was_stable = False  # hysteresis: once stable, one departing unit does not end stability

    # ----------------------------------------------------------------------------------------- inputs

    def set_prior(self, epoch_energy_j: float, rel_sigma: float) -> None:
        """Use a PRE estimate of the mean energy per unit (J), relative std ``rel_sigma``, until stable."""
        self._prior_j = check_number("epoch_energy_j", epoch_energy_j, positive=True)
        self._prior_rel_sigma = check_number("rel_sigma", rel_sigma, positive=True)

    @property
    def epochs_seen(self) -> int:
        """Units seen so far (measured or skipped)."""
        return self._buffer.units_seen

    @property
    def work_seen(self) -> float:
        """Work seen so far in units (a partial unit counts as its share), measured or skipped."""
        return self._buffer.work_seen

    @property
    def seconds_seen(self) -> float:
        """Seconds of all the units seen so far, measured or skipped."""
        return self._buffer.elapsed_s

    def update(
        self,
        energy_j: float,
        duration_s: float,
        total_epochs: float | None = None,
        *,
        total_seconds: float | None = None,
        work: float = 1.0,
        budget: ProjectionBudget | None = None,
    ) -> Projection:
        """Add one measured unit and project. Give exactly one of ``total_epochs`` / ``total_seconds``, or
        the run's ``budget`` (a :class:`~lightning_energy.budget.ProjectionBudget`) instead of both.

        ``work`` is the share of a full unit this update covers (a partial last epoch: 0.5); the level uses
        ``energy_j / work`` and the remaining units are ``total_epochs`` minus the work seen.
        """
        total_epochs, total_seconds = _units(total_epochs, total_seconds, budget)
        energy = check_number("energy_j", energy_j)
        duration = check_number("duration_s", duration_s)
        share = self._check_work(work)
        self._check_budget(total_epochs, total_seconds, self._buffer.work_seen + share)
        self._buffer.push(energy, duration, share, is_val_unit(self.epochs_seen, self.val_every_n_epochs))
        return self._settle(total_epochs, total_seconds)

    def skip(
        self,
        duration_s: float,
        total_epochs: float | None = None,
        *,
        total_seconds: float | None = None,
        work: float = 1.0,
        budget: ProjectionBudget | None = None,
    ) -> Projection:
        """Count a unit whose energy could not be measured; its energy is taken at the current level
        (the budget as in :meth:`update`)."""
        total_epochs, total_seconds = _units(total_epochs, total_seconds, budget)
        duration = check_number("duration_s", duration_s)
        share = self._check_work(work)
        self._check_budget(total_epochs, total_seconds, self._buffer.work_seen + share)
        self._buffer.push(math.nan, duration, share, is_val_unit(self.epochs_seen, self.val_every_n_epochs))
        return self._settle(total_epochs, total_seconds)

    def project(
        self,
        total_epochs: float | None = None,
        *,
        total_seconds: float | None = None,
        budget: ProjectionBudget | None = None,
    ) -> Projection:
        """Projection from the units seen so far, without adding one or changing any state (the budget as
        in :meth:`update`)."""
        total_epochs, total_seconds = _units(total_epochs, total_seconds, budget)
        if self.epochs_seen == 0:
            raise ProjectionError("project() needs at least one epoch; call update() first")
        self._check_budget(total_epochs, total_seconds, self._buffer.work_seen)
        return self._project(total_epochs, total_seconds)

    def _settle(self, total_epochs: float | None, total_seconds: float | None) -> Projection:
        projection = self._project(total_epochs, total_seconds)
        self._was_stable = projection.stable
        return projection

    @staticmethod
    def _check_work(work: object) -> float:
        share = check_number("work", work, positive=True)
        if share > MAX_WORK:
            raise ProjectionError(f"work must be <= {MAX_WORK:g}, got {work!r}")
        return share

    def _check_budget(self, total_epochs: object, total_seconds: object, work_seen: float) -> None:
        if (total_epochs is None) == (total_seconds is None):
            raise ProjectionError(
                "give exactly one of total_epochs (epoch budget) or total_seconds (time budget), got "
                f"total_epochs={total_epochs!r}, total_seconds={total_seconds!r}"
            )
        if total_epochs is not None:
            budget = check_number("total_epochs", total_epochs, positive=True)
            if budget < work_seen - 1e-9:
                raise ProjectionError(
                    f"total_epochs must be >= the epochs seen including this one ({work_seen:g}), "
                    f"got {total_epochs}"
                )
        if total_seconds is not None:
            check_number("total_seconds", total_seconds, positive=True)

    # ----------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, object]:
        """Plain JSON-able state (NaN marks a skipped unit and is stored as ``None``)."""
        return {
            "version": STATE_VERSION,
            **self._buffer.to_state(),
            "prior_epoch_energy_j": self._prior_j,
            "prior_rel_sigma": self._prior_rel_sigma,
            "val_every_n_epochs": self.val_every_n_epochs,
            "was_stable": self._was_stable,
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore :meth:`state_dict` output (version 2, or version 1 of earlier releases).

        Raises:
            ProjectionError: an unknown version or a corrupt state (the projector is then left unchanged).
        """
        if not isinstance(state, Mapping):
            raise ProjectionError(f"state must be a mapping, got {type(state).__name__}")
        version = state.get("version", 1)
        if isinstance(version, bool) or version not in (1, 2):
            raise ProjectionError(f"unknown STEP state version {version!r} (this release reads 1 and 2)")
        backup = self.state_dict()
        try:
            self._reset()
            self._load(state, int(version))  # type: ignore[call-overload]
        except (ProjectionError, TypeError, ValueError, KeyError) as err:
            self._reset()
            self._load(backup, STATE_VERSION)
            if isinstance(err, ProjectionError):
                raise
            raise ProjectionError(f"corrupt STEP state: {err}") from err

    def _load(self, state: Mapping[str, object], version: int) -> None:
        val_every = state.get("val_every_n_epochs", self.val_every_n_epochs)
        if val_every is not None and (isinstance(val_every, bool) or not isinstance(val_every, int)):
            raise ProjectionError(f"state val_every_n_epochs must be an int or None, got {val_every!r}")
        if val_every is not None and val_every < 1:
            raise ProjectionError(f"state val_every_n_epochs must be >= 1, got {val_every!r}")
        self.val_every_n_epochs = val_every
        self._buffer = UnitBuffer.from_state(
            state, version, self.params.history, lambda i: is_val_unit(i, val_every)
        )
        prior = state.get("prior_epoch_energy_j")
        rel = state.get("prior_rel_sigma")
        self._prior_j = None
        self._prior_rel_sigma = None
        if prior is not None or rel is not None:
            self.set_prior(prior, rel)  # type: ignore[arg-type]
        self._was_stable = bool(state.get("was_stable", False))

    # ----------------------------------------------------------------------------------------- projection

    def _project(self, total_epochs: float | None, total_seconds: float | None) -> Projection:
        return project(
            self._buffer,
            total_epochs,
            total_seconds,
            params=self.params,
            confidence=self.confidence,
            z=self._z,
            val_every_n_epochs=self.val_every_n_epochs,
            known_changes=self.known_changes,
            was_stable=self._was_stable,
            prior_j=self._prior_j,
            prior_rel_sigma=self._prior_rel_sigma,
            unit_name=self.unit_name,
        )
