"""Energy units and readable figures: the one place that knows how many joules a kWh holds.

Pure Python; every module converts through these functions instead of writing ``3.6e6``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

JOULES_PER_WH = 3600.0
JOULES_PER_KWH = 3.6e6
JOULES_PER_MWH = 3.6e9
MILLI = 1e-3


@dataclass(frozen=True)
class EnergyUnit:
    """An energy unit: its ``name`` (``kWh``; the progress bar's keys carry it: ``proj_kWh``) and ``joules``
    in one unit."""

    name: str
    joules: float

    def __iter__(self) -> Iterator[str | float]:
        """``name, joules = unit``: the ``(name, scale)`` tuple this was up to 0.3.0 (deprecated)."""
        return iter((self.name, self.joules))


# the progress bar's unit (its name up to 0.3.x): an energy unit like any other
BarUnit = EnergyUnit


@dataclass(frozen=True)
class MassUnit:
    """A mass unit (for CO2e): its ``name`` (``kg``, ``g``) and ``kilograms`` in one unit."""

    name: str
    kilograms: float

    def __iter__(self) -> Iterator[str | float]:
        """``name, kilograms = unit``: the ``(name, scale)`` tuple this was up to 0.3.0 (deprecated)."""
        return iter((self.name, self.kilograms))


# largest first: the readable unit is the largest one the value reaches
_ENERGY_UNITS = (
    EnergyUnit("MWh", JOULES_PER_MWH),
    EnergyUnit("kWh", JOULES_PER_KWH),
    EnergyUnit("Wh", JOULES_PER_WH),
    EnergyUnit("J", 1.0),
)
_MASS_UNITS = (MassUnit("t", 1e3), MassUnit("kg", 1.0), MassUnit("g", 1e-3), MassUnit("mg", 1e-6))


def joules_to_kwh(energy_j: float) -> float:
    """Joules to kilowatt-hours."""
    return energy_j / JOULES_PER_KWH


def kwh_to_joules(energy_kwh: float) -> float:
    """Kilowatt-hours to joules."""
    return energy_kwh * JOULES_PER_KWH


def millijoules_to_joules(energy_mj: float) -> float:
    """Millijoules (NVML's energy counter) to joules."""
    return energy_mj * MILLI


def milliwatts_to_watts(power_mw: float) -> float:
    """Milliwatts (NVML's power readings) to watts."""
    return power_mw * MILLI


_U = TypeVar("_U", EnergyUnit, MassUnit)


def _scale(unit: EnergyUnit | MassUnit) -> float:
    return unit.joules if isinstance(unit, EnergyUnit) else unit.kilograms


def _readable_unit(value: float, units: Sequence[_U]) -> _U:
    """The largest of ``units`` (largest first) that ``value`` reaches; else the smallest."""
    magnitude = abs(value) if math.isfinite(value) else 0.0
    for unit in units:
        if magnitude >= _scale(unit):
            return unit
    return units[-1]


def _format(value: float, units: Sequence[_U], name: str | None, digits: int) -> str:
    """``value`` in the unit called ``name`` (or the readable one) with ``digits`` significant figures and
    the unit."""
    if not math.isfinite(value):
        return "n/a"
    if name is None:
        unit = _readable_unit(value, units)
    else:
        named = [u for u in units if u.name == name]
        if not named:
            raise ValueError(f"unit must be one of {', '.join(u.name for u in units)}, got {name!r}")
        unit = named[0]
    return f"{sig(value / _scale(unit), digits)} {unit.name}"


def energy_unit(max_j: float) -> EnergyUnit:
    """A readable unit for energies up to ``max_j``: ``EnergyUnit("kWh", 3.6e6)``, ``"Wh"``, ``"J"``..."""
    return _readable_unit(max_j, _ENERGY_UNITS)


def sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant figures, without an exponent for everyday magnitudes."""
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if exponent >= 6 or exponent < -4:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - exponent)
    return f"{value:.{decimals}f}"


def format_energy(energy_j: float, unit: str | None = None, digits: int = 3) -> str:
    """``energy_j`` as a readable figure with its unit, e.g. ``"742 Wh"`` or ``"1.23 kWh"``."""
    return _format(energy_j, _ENERGY_UNITS, unit, digits)


def mass_unit(max_kg: float) -> MassUnit:
    """A readable unit for masses up to ``max_kg``: ``MassUnit("kg", 1.0)``, ``"g"``, ``"mg"``..."""
    return _readable_unit(max_kg, _MASS_UNITS)


def format_mass(mass_kg: float, unit: str | None = None, digits: int = 3) -> str:
    """``mass_kg`` (e.g. CO2e) as a readable figure with its unit: ``"81.3 mg"``, ``"1.25 kg"``."""
    return _format(mass_kg, _MASS_UNITS, unit, digits)
