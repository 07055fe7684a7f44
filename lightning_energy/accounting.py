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

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_energy.errors import MeterError

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
        energy = data.get("energy_j")
        return cls(
            epoch=int(data.get("epoch", 0)),
            duration_s=float(data.get("duration_s", 0.0)),
            energy_j=None if energy is None else float(energy),
            components_j={str(k): float(v) for k, v in dict(data.get("components_j") or {}).items()},
            reason=data.get("reason"),
            batches=None if data.get("batches") is None else int(data["batches"]),
        )


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
        raw: Sequence[Mapping[str, Any]] = state.get("records") or []
        self.records = [EpochRecord.from_dict(r) for r in raw]
