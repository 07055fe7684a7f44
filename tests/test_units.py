"""Units: the readable energy and mass units are typed, and still unpack as the tuples they were."""

from __future__ import annotations

import pytest

from lightning_energy.run_metrics import BAR_UNITS, bar_unit
from lightning_energy.units import (
    BarUnit,
    EnergyUnit,
    MassUnit,
    energy_unit,
    format_energy,
    format_mass,
    mass_unit,
)


@pytest.mark.parametrize(
    ("max_j", "name", "joules"),
    [(5e9, "MWh", 3.6e9), (4e6, "kWh", 3.6e6), (3.6e6, "kWh", 3.6e6), (3599.0, "J", 1.0), (0.0, "J", 1.0)],
)
def test_energy_unit_is_the_largest_unit_reached(max_j: float, name: str, joules: float) -> None:
    unit = energy_unit(max_j)
    assert unit == EnergyUnit(name, joules)
    assert (unit.name, unit.joules) == (name, joules)


def test_mass_unit_is_typed() -> None:
    assert mass_unit(0.5) == MassUnit("g", 1e-3)
    assert mass_unit(2e3) == MassUnit("t", 1e3)
    assert mass_unit(float("nan")) == MassUnit("mg", 1e-6)  # no magnitude: the smallest unit


def test_units_still_unpack_as_name_and_scale() -> None:
    name, scale = energy_unit(7200.0)
    assert (name, scale) == ("Wh", 3600.0)
    name, scale = mass_unit(1.0)
    assert (name, scale) == ("kg", 1.0)


def test_the_progress_bar_unit_is_an_energy_unit() -> None:
    assert BarUnit is EnergyUnit
    assert all(isinstance(u, EnergyUnit) for u in BAR_UNITS)
    assert isinstance(bar_unit(5e6), EnergyUnit)


def test_formatting_by_unit_name() -> None:
    assert format_energy(5400.0) == "1.50 Wh"
    assert format_energy(5400.0, "J") == "5400 J"
    assert format_mass(0.0813e-3) == "81.3 mg"
    with pytest.raises(ValueError, match="unit must be one of MWh, kWh, Wh, J, got 'cal'"):
        format_energy(1.0, "cal")
