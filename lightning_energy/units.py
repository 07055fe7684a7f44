"""Energy units and readable figures: the one place that knows how many joules a kWh holds.

Pure Python; every module converts through these functions instead of writing ``3.6e6``.
"""

from __future__ import annotations

import math

JOULES_PER_WH = 3600.0
JOULES_PER_KWH = 3.6e6
JOULES_PER_MWH = 3.6e9
MILLI = 1e-3

# (unit, joules per unit), largest first: the readable unit is the largest one the value reaches
_ENERGY_UNITS = (("MWh", JOULES_PER_MWH), ("kWh", JOULES_PER_KWH), ("Wh", JOULES_PER_WH), ("J", 1.0))
# (unit, kilograms per unit), largest first: for CO2e masses
_MASS_UNITS = (("t", 1e3), ("kg", 1.0), ("g", 1e-3), ("mg", 1e-6))


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


def energy_unit(max_j: float) -> tuple[str, float]:
    """A readable unit for energies up to ``max_j``: ``("kWh", 3.6e6)``, ``("Wh", 3600)``, ``("J", 1)``..."""
    magnitude = abs(max_j) if math.isfinite(max_j) else 0.0
    for unit, scale in _ENERGY_UNITS:
        if magnitude >= scale:
            return unit, scale
    return "J", 1.0


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
    if not math.isfinite(energy_j):
        return "n/a"
    if unit is None:
        unit, scale = energy_unit(energy_j)
    else:
        scale = dict(_ENERGY_UNITS).get(unit, 0.0)
        if scale == 0.0:
            raise ValueError(f"unit must be one of MWh, kWh, Wh, J, got {unit!r}")
    return f"{sig(energy_j / scale, digits)} {unit}"


def mass_unit(max_kg: float) -> tuple[str, float]:
    """A readable unit for masses up to ``max_kg``: ``("kg", 1)``, ``("g", 1e-3)``, ``("mg", 1e-6)``..."""
    magnitude = abs(max_kg) if math.isfinite(max_kg) else 0.0
    for unit, scale in _MASS_UNITS:
        if magnitude >= scale:
            return unit, scale
    return _MASS_UNITS[-1]


def format_mass(mass_kg: float, unit: str | None = None, digits: int = 3) -> str:
    """``mass_kg`` (e.g. CO2e) as a readable figure with its unit: ``"81.3 mg"``, ``"1.25 kg"``."""
    if not math.isfinite(mass_kg):
        return "n/a"
    if unit is None:
        unit, scale = mass_unit(mass_kg)
    else:
        scale = dict(_MASS_UNITS).get(unit, 0.0)
        if scale == 0.0:
            raise ValueError(f"unit must be one of t, kg, g, mg, got {unit!r}")
    return f"{sig(mass_kg / scale, digits)} {unit}"
