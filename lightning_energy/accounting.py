"""Turning meter readings into per-epoch energy records (pure: no torch, no Lightning).

A meter returns *cumulative* joules per component. An epoch's energy is the difference of the reading at
its end and the reading at its start. Readings are checked here, once:

* a component missing from one of the two readings, a NaN or infinite value, or a counter that went
  backwards (a driver reload resets the GPU counter) makes the epoch *missing* -- never 0, never negative;
* components are grouped into categories (``gpu0``, ``gpu1`` -> ``gpu``; ``cpu``; ``ram``; anything else
  -> ``other``) so that ranks with different devices can be summed component-wise.

:class:`EnergyLedger` keeps the per-epoch records of a run (also across resumes, through
``state_dict``/``load_state_dict``) and derives the totals.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_energy.errors import MeterError, StateError

CATEGORIES: tuple[str, ...] = ("gpu", "cpu", "ram", "other")

_CATEGORY_RE = re.compile(r"^(gpu|cpu|ram)\d*$")


def category_of(component: str) -> str:
    """The category of a component name: ``gpu3`` -> ``gpu``, ``cpu`` -> ``cpu``, ``fan`` -> ``other``."""
    match = _CATEGORY_RE.match(component)
    return match.group(1) if match else "other"


def check_reading(reading: Mapping[str, float]) -> dict[str, float]:
    """Return ``reading`` as a plain dict of floats, or raise :class:`MeterError` saying what is wrong."""
    if not isinstance(reading, Mapping):
        raise MeterError(f"meter.read() must return a mapping of joules per component, got {type(reading)!r}")
    if not reading:
        raise MeterError("meter.read() returned no components")
    checked: dict[str, float] = {}
    for name, value in reading.items():
        if isinstance(value, bool) or type(value).__name__ in {"bool", "bool_"}:  # Python or numpy bool
            raise MeterError(f"component {name!r} is a bool, not a number of joules: {value!r}")
        try:
            value_j = float(value)
        except (TypeError, ValueError):
            raise MeterError(f"component {name!r} is not a number: {value!r}") from None
        if not math.isfinite(value_j):
            raise MeterError(f"component {name!r} read {value_j}")
        checked[str(name)] = value_j
    return checked


def reading_delta(start: Mapping[str, float], end: Mapping[str, float]) -> dict[str, float]:
    """Joules per component between two checked readings.

    Raises :class:`MeterError` when the two readings have different components or a counter went backwards
    (a reset): the window's energy is then unknown.
    """
    if set(start) != set(end):
        raise MeterError(f"components changed within the epoch: {sorted(start)} -> {sorted(end)}")
    delta = {name: end[name] - start[name] for name in start}
    backwards = sorted(name for name, value_j in delta.items() if value_j < 0)
    if backwards:
        raise MeterError(f"energy counter went backwards (reset?) for {', '.join(backwards)}")
    return delta


def by_category(components_j: Mapping[str, float]) -> dict[str, float]:
    """Sum joules per category (``gpu``, ``cpu``, ``ram``, ``other``); every category is present."""
    sums = dict.fromkeys(CATEGORIES, 0.0)
    for name, value_j in components_j.items():
        sums[category_of(name)] += value_j
    return sums


@dataclass(frozen=True)
class EpochRecord:
    """The energy of one training epoch, summed over all ranks.

    ``energy_j`` is ``None`` when the epoch is missing (a meter failed on some rank); ``reason`` says why.
    """

    epoch: int
    duration_s: float
    energy_j: float | None
    components_j: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    batches: int | None = None  # training batches run in the epoch, when counted

    @property
    def missing(self) -> bool:
        return self.energy_j is None

    @property
    def power_w(self) -> float | None:
        """Mean power over the epoch (all ranks together), or ``None`` when missing or instantaneous."""
        if self.energy_j is None or self.duration_s <= 0:
            return None
        return self.energy_j / self.duration_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "components_j": dict(self.components_j),
            "power_w": self.power_w,
            "missing": self.missing,
            "reason": self.reason,
            "batches": self.batches,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochRecord:
        """Read :meth:`to_dict` output, checked like a reading: :class:`StateError` names a bad field.

        Joules and seconds must be finite and ``>= 0`` (``energy_j`` may be ``None``: missing), counts
        whole numbers ``>= 0``, and a measured epoch's energy the sum of its components.
        """
        if not isinstance(data, Mapping):
            raise StateError(f"an epoch record must be a mapping, got {type(data).__name__}")
        epoch = _state_count(data, "epoch", 0)
        where = f"epoch {epoch}"
        energy = data.get("energy_j")
        energy_j = None if energy is None else _state_joules(energy, f"{where}: energy_j")
        raw_components = data.get("components_j") or {}
        if not isinstance(raw_components, Mapping):
            raise StateError(f"{where}: components_j must be a mapping, got {type(raw_components).__name__}")
        components = {
            str(k): _state_joules(v, f"{where}: components_j[{str(k)!r}]") for k, v in raw_components.items()
        }
        if energy_j is not None and components:
            parts_j = sum(components.values())
            if not math.isclose(parts_j, energy_j, rel_tol=1e-6, abs_tol=1e-6):
                raise StateError(
                    f"{where}: energy_j {energy_j!r} is not the sum of its components_j ({parts_j!r})"
                )
        reason = data.get("reason")
        return cls(
            epoch=epoch,
            duration_s=_state_joules(data.get("duration_s", 0.0), f"{where}: duration_s"),
            energy_j=energy_j,
            components_j=components,
            reason=None if reason is None else str(reason),
            batches=None if data.get("batches") is None else _state_count(data, "batches", 0),
        )


def _state_joules(value: Any, name: str) -> float:
    """A saved amount (joules or seconds): a finite number ``>= 0``, else :class:`StateError`."""
    if isinstance(value, bool | str | bytes) or type(value).__name__ == "bool_":
        raise StateError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise StateError(f"{name} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number) or number < 0:
        raise StateError(f"{name} must be a finite number >= 0, got {number!r}")
    return number


def _state_count(data: Mapping[str, Any], key: str, default: int) -> int:
    """A saved count (an epoch index, batches): a whole number ``>= 0``, else :class:`StateError`."""
    value = data.get(key, default)
    number = _state_joules(value, key)
    if not number.is_integer():
        raise StateError(f"{key} must be a whole number >= 0, got {number!r}")
    return int(number)


@dataclass
class EnergyLedger:
    """All epoch records of a run, in order, with derived totals."""

    records: list[EpochRecord] = field(default_factory=list)

    def add(self, record: EpochRecord) -> None:
        self.records.append(record)

    @property
    def measured(self) -> list[EpochRecord]:
        return [r for r in self.records if not r.missing]

    @property
    def missing_epochs(self) -> int:
        return sum(r.missing for r in self.records)

    @property
    def total_j(self) -> float:
        """Energy of the measured epochs (missing epochs are not guessed into this number)."""
        return sum(r.energy_j for r in self.records if r.energy_j is not None)

    @property
    def measured_total_j(self) -> float | None:
        """:attr:`total_j`, or ``None`` when no epoch was measured (never a fake 0)."""
        return self.total_j if self.measured else None

    @property
    def duration_s(self) -> float:
        return sum(r.duration_s for r in self.records)

    def category_totals_j(self) -> dict[str, float]:
        totals = dict.fromkeys(CATEGORIES, 0.0)
        for record in self.measured:
            for name, value_j in record.components_j.items():
                totals[name] = totals.get(name, 0.0) + value_j
        return totals

    def present_categories(self) -> list[str]:
        """Categories that some epoch reported with non-zero energy, in ``CATEGORIES`` order."""
        totals = self.category_totals_j()
        seen = {name for r in self.measured for name, value in r.components_j.items() if value > 0}
        return [name for name in totals if name in seen]

    def state_dict(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.records]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; a damaged state raises :class:`StateError` and changes nothing.

        Every record is checked (:meth:`EpochRecord.from_dict`) and epochs must be in increasing order.
        """
        if not isinstance(state, Mapping):
            raise StateError(f"the ledger state must be a mapping, got {type(state).__name__}")
        raw: Sequence[Mapping[str, Any]] = state.get("records") or []
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise StateError(f"the ledger's records must be a list, got {type(raw).__name__}")
        records = [EpochRecord.from_dict(r) for r in raw]
        for before, after in itertools.pairwise(records):
            if after.epoch <= before.epoch:
                raise StateError(f"the ledger's epochs are out of order: {before.epoch} then {after.epoch}")
        self.records = records
