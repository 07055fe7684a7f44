"""Saving an :class:`~lightning_energy.run.EnergyRun`'s state and reading it back: the version check and
the checks that the saved ledger, projections and projector belong together.

Pure Python (no torch, no Lightning). A state that fails a check raises
:class:`~lightning_energy.errors.RunStateError` before anything is changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightning_energy.accounting import EnergyLedger
from lightning_energy.errors import RunStateError
from lightning_energy.report_model import PreSummary, ProjectionPoint
from lightning_energy.step import StepProjector
from lightning_energy.units import BarUnit
from lightning_energy.windows import WindowSeries

if TYPE_CHECKING:
    from lightning_energy.run import EnergyRun

__all__ = ["STATE_VERSION", "SavedRun", "check_agreement", "load_state", "save_state"]

STATE_VERSION = 2


def save_state(run: EnergyRun) -> dict[str, Any]:
    """``run``'s state, as a checkpoint keeps it (:func:`load_state` reads it back)."""
    return {
        "version": STATE_VERSION,
        "ledger": run.ledger.state_dict(),
        "history": [h.to_json() for h in run.projections],
        "projector": run.projector.state_dict(),
        "windows": run.window_series.state_dict(),
        "pre": None if run.pre is None else run.pre.to_json(),
        "warnings": list(run.warnings),
        "started_at": run.started_at,
        "unit": None if run.unit is None else [run.unit.name, run.unit.joules],
        "stop": None if run.stop is None else run.stop.state_dict(),
        "expected": [e.to_json() for e in run.expected],
        # the energy a fit resumed from this state starts with: the earlier fits', up to this point
        "fit_energy_j": _sum_or_none(run.earlier_fits_j, run.fit_through_epoch_j),
    }


def _sum_or_none(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def check_agreement(
    ledger: EnergyLedger, projections: Sequence[ProjectionPoint], projector: StepProjector
) -> None:
    """A saved projector fed more epochs, or more measured energy, than the saved ledger holds is damaged
    (or mixed up with another run's): every later projection would fail or be wrong."""
    epochs = len(ledger.records)
    if projector.epochs_seen > epochs:
        raise RunStateError(
            f"the saved STEP projector has seen {projector.epochs_seen} epochs but the saved ledger holds "
            f"{epochs}: the state is damaged"
        )
    measured_j = projector.state_dict()["measured_j"]
    if isinstance(measured_j, float) and measured_j > ledger.total_j * (1 + 1e-9) + 1e-6:
        raise RunStateError(
            f"the saved STEP projector has measured {measured_j:g} J but the saved ledger only "
            f"{ledger.total_j:g} J: the state is damaged"
        )
    last_epoch = ledger.records[-1].epoch if ledger.records else -1
    if len(projections) > epochs or any(h.epoch > last_epoch for h in projections):
        raise RunStateError(
            f"the saved projections go beyond the {epochs} epochs of the saved ledger: the state is damaged"
        )


@dataclass(frozen=True)
class SavedRun:
    """The parts of a saved state, checked (:func:`load_state`). ``fit_energy_j`` (the earlier fits' energy
    up to the saved point) is ``None`` when unknown: in states saved before 0.3.0, or when a fit could not
    measure it; ``started_at`` is ``None`` when the state does not say."""

    ledger: EnergyLedger
    projections: list[ProjectionPoint]
    window_state: Mapping[str, Any]
    pre: PreSummary | None
    warnings: list[str]
    started_at: str | None
    unit: BarUnit | None
    projector_state: Mapping[str, Any]
    fit_energy_j: float | None


def load_state(state: Mapping[str, Any]) -> SavedRun:
    """The parts of a saved state, checked; raises :class:`~lightning_energy.errors.RunStateError` on a
    state from a newer version or one whose parts do not belong together."""
    if not isinstance(state, Mapping):
        raise RunStateError(f"the saved state is a {type(state).__name__}, not a mapping")
    version = state.get("version", 1)
    if not isinstance(version, int) or version > STATE_VERSION:
        raise RunStateError(
            f"the saved state has version {version!r}; this lightning_energy reads versions up to "
            f"{STATE_VERSION} (saved by a newer version?)"
        )
    ledger = EnergyLedger()
    ledger.load_state_dict(state.get("ledger") or {})
    raw_history: Sequence[Mapping[str, Any]] = state.get("history" if version >= 2 else "projections") or []
    projections = [ProjectionPoint.from_json(h) for h in raw_history]
    window_state = state.get("windows") or {}
    if not isinstance(window_state, Mapping):
        raise RunStateError(f"the saved windows are a {type(window_state).__name__}, not a mapping")
    raw_pre = state.get("pre")
    pre = PreSummary.from_json(raw_pre) if isinstance(raw_pre, Mapping) else None
    warnings = [str(w) for w in state.get("warnings") or []]
    raw_unit = state.get("unit")
    unit = BarUnit(str(raw_unit[0]), float(raw_unit[1])) if raw_unit else None
    projector_state = state.get("projector") or {}
    # check the projectors' states on copies first: a failure must leave the run unchanged
    check = StepProjector()
    check.load_state_dict(projector_state)
    check_agreement(ledger, projections, check)
    WindowSeries.check_state(window_state)
    raw_fit = state.get("fit_energy_j")
    fit_j = None if raw_fit is None else float(raw_fit)
    if fit_j is not None and not (math.isfinite(fit_j) and fit_j >= 0):
        raise RunStateError(f"the saved fit_energy_j is {raw_fit!r}, not a finite number of joules >= 0")
    started = state.get("started_at")
    return SavedRun(
        ledger=ledger,
        projections=projections,
        window_state=window_state,
        pre=pre,
        warnings=warnings,
        started_at=None if started is None else str(started),
        unit=unit,
        projector_state=projector_state,
        fit_energy_j=fit_j,
    )
