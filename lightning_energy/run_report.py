"""Assemble the per-run report (the dict :func:`lightning_energy.report.write_report` writes)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lightning_energy import trainer_info
from lightning_energy.accounting import joules_to_kwh

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_energy.callback import EnergyCallback


def _component_labels(callback: EnergyCallback) -> dict[str, str]:
    """Label per category (``gpu``: ``measured``...), from the meter's per-component labels."""
    from lightning_energy.accounting import category_of

    labels: dict[str, str] = {}
    raw = getattr(callback._meter, "labels", None) or {}
    for component, label in dict(raw).items():
        category = category_of(component)
        previous = labels.get(category)
        labels[category] = label if previous in (None, label) else "mixed"
    for category in callback.ledger.present_categories():
        labels.setdefault(category, "unknown")
    return labels


def build_report(callback: EnergyCallback, trainer: pl.Trainer, status: str) -> dict[str, Any]:
    """The report of the run as plain JSON-able values (schema: docs/report.md)."""
    ledger = callback.ledger
    total_j = ledger.total_j
    last = callback.projections[-1] if callback.projections else None
    plan = callback._budget
    carbon = None
    if callback.carbon is not None:
        carbon = {
            **callback.carbon.to_dict(),
            "co2_kg": callback.carbon.co2_kg(joules_to_kwh(total_j)),
            "projected_co2_kg": callback.carbon.co2_kg(joules_to_kwh(last["total_j"])) if last else None,
        }
    hardware = dict(getattr(callback._meter, "hardware", None) or {})
    return {
        "format": "lightning_energy.report",
        "version": 1,
        "status": status,
        "started_at": callback._started_at,
        "ended_at": datetime.now(timezone.utc).isoformat(),
        "world_size": trainer.world_size,
        "num_nodes": trainer.num_nodes,
        "max_epochs": plan.total_epochs,
        "max_time_s": plan.total_seconds,
        "upper_bound": plan.upper_bound,
        "components": _component_labels(callback),
        "epochs": [r.to_dict() for r in ledger.records],
        "totals": {
            "energy_j": total_j,
            "energy_kwh": joules_to_kwh(total_j),
            "components_kwh": {k: joules_to_kwh(v) for k, v in ledger.category_totals_j().items()},
            "fit_energy_j": callback._fit_energy_j,
            "duration_s": ledger.duration_s,
            "measured_epochs": len(ledger.measured),
            "missing_epochs": ledger.missing_epochs,
        },
        "projection": {
            "method": "step",
            "upper_bound": plan.upper_bound,
            "history": list(callback.projections),
        },
        "pre": callback.pre,
        "carbon": carbon,
        "hardware": hardware,
        "versions": trainer_info.versions(),
        "warnings": list(callback.warnings),
    }
