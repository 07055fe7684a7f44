"""The figures a run shows while it trains: the progress-bar unit and the logged metric groups (names and
units: ``docs/callback.md``), plus the conversions from STEP's results to the report's points.

Pure Python (no torch, no Lightning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lightning_energy import metric_names as M
from lightning_energy.accounting import EnergyLedger, EpochRecord, category_of
from lightning_energy.carbon import CarbonIntensity
from lightning_energy.labels import MIXED, ComponentLabel, MeterLabel
from lightning_energy.report_model import ExpectedPoint, ProjectionPoint
from lightning_energy.step import Projection
from lightning_energy.step.expected import ExpectedTotal
from lightning_energy.units import BarUnit, joules_to_kwh

__all__ = [
    "BAR_UNITS",
    "BarUnit",
    "bar_unit",
    "carbon_metrics",
    "component_labels",
    "epoch_metrics",
    "expected_metrics",
    "expected_point",
    "finite",
    "projection_metrics",
    "projection_point",
]

# progress-bar units, largest first: the bar shows the run in the largest unit its projected total reaches,
# so both TQDM (3 significant figures) and Rich (3 decimals) show at least 3 significant figures
BAR_UNITS: tuple[BarUnit, ...] = (
    BarUnit("MWh", 3.6e9),
    BarUnit("kWh", 3.6e6),
    BarUnit("Wh", 3600.0),
    BarUnit("mWh", 3.6),
)


def bar_unit(expected_total_j: float) -> BarUnit:
    """The progress-bar unit for a run expected to use ``expected_total_j`` in all."""
    for unit in BAR_UNITS:
        if expected_total_j >= unit.joules:
            return unit
    return BAR_UNITS[-1]


def finite(value: float | None) -> float | None:
    """``value`` when it is a finite number, else ``None``."""
    return value if value is not None and math.isfinite(value) else None


def projection_point(
    epoch: int, projection: Projection, step: int | None = None, planned_epochs: float | None = None
) -> ProjectionPoint:
    """The report's point for STEP's projection made after ``epoch`` (and ``step``) to ``planned_epochs``."""
    return ProjectionPoint(epoch, projection, step, planned_epochs)


def projection_metrics(point: ProjectionPoint) -> dict[str, float]:
    """``energy/projected_kwh``, ``_low_kwh``, ``_high_kwh`` and ``energy/stable``."""
    return {
        M.PROJECTED_KWH: joules_to_kwh(point.total_j),
        M.PROJECTED_LOW_KWH: joules_to_kwh(point.low_j),
        M.PROJECTED_HIGH_KWH: joules_to_kwh(point.high_j),
        M.STABLE: float(point.stable),
    }


def expected_point(epoch: int, e: ExpectedTotal) -> ExpectedPoint:
    """The report's point for the expected total (EarlyStopping) after ``epoch``."""
    return ExpectedPoint(epoch, e)


def expected_metrics(point: ExpectedPoint) -> dict[str, float]:
    """``energy/expected_kwh``, ``_low_kwh``, ``_high_kwh`` and ``energy/expected_stop_epoch``."""
    return {
        M.EXPECTED_KWH: joules_to_kwh(point.total_j),
        M.EXPECTED_LOW_KWH: joules_to_kwh(point.low_j),
        M.EXPECTED_HIGH_KWH: joules_to_kwh(point.high_j),
        M.EXPECTED_STOP_EPOCH: point.stop_epoch,
    }


def carbon_metrics(
    carbon: CarbonIntensity | None, total_j: float | None, point: ProjectionPoint | None
) -> dict[str, float]:
    """``energy/co2_kg`` and ``energy/projected_co2_kg`` (empty without a grid intensity)."""
    if carbon is None:
        return {}
    metrics: dict[str, float] = {}
    if total_j is not None:
        metrics[M.CO2_KG] = carbon.co2_kg(joules_to_kwh(total_j))
    if point is not None and finite(point.total_j) is not None and point.total_j >= 0:
        metrics[M.PROJECTED_CO2_KG] = carbon.co2_kg(joules_to_kwh(point.total_j))
    return metrics


def epoch_metrics(
    ledger: EnergyLedger,
    record: EpochRecord,
    point: ProjectionPoint | None,
    *,
    expected: ExpectedPoint | None,
    pre_j: float | None,
    carbon: CarbonIntensity | None,
) -> dict[str, float]:
    """The metrics logged at an epoch's end: the measured totals (all, per category), ``record``'s energy
    and power, the projection ``point`` made from it, the ``expected`` total made with it, PRE's estimate
    ``pre_j`` and the CO₂e figures."""
    metrics: dict[str, float] = {}
    total_j = ledger.measured_total_j
    if total_j is not None:
        metrics[M.TOTAL_KWH] = joules_to_kwh(total_j)
        totals_j = ledger.category_totals_j()
        for category in ledger.present_categories():
            metrics[M.CATEGORY_KWH[category]] = joules_to_kwh(totals_j[category])
    if record.energy_j is not None:
        metrics[M.EPOCH_KWH] = joules_to_kwh(record.energy_j)
        if record.power_w is not None:
            metrics[M.EPOCH_POWER_W] = record.power_w
    if point is not None:
        metrics.update(projection_metrics(point))
        if expected is not None:
            metrics.update(expected_metrics(expected))
    if pre_j is not None:
        metrics[M.PRE_KWH] = joules_to_kwh(pre_j)
    metrics.update(carbon_metrics(carbon, total_j, point))
    return metrics


def component_labels(labels: Mapping[str, MeterLabel]) -> dict[str, ComponentLabel]:
    """Per-category label (``gpu``: ``measured``...) from a meter's per-component labels."""
    out: dict[str, ComponentLabel] = {}
    for component, label in labels.items():
        category = category_of(component)
        previous = out.get(category)
        out[category] = label if previous in (None, label) else MIXED
    return out
