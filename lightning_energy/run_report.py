"""The typed report of an :class:`~lightning_energy.run.EnergyRun` as it stands, and writing it.

Pure Python (no torch, no Lightning): reads the run's public attributes and builds the
:class:`~lightning_energy.report_model.RunReport` that :mod:`lightning_energy.report` writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_energy.errors import EnergyError
from lightning_energy.hardware import Hardware
from lightning_energy.labels import UNKNOWN, ComponentLabel
from lightning_energy.report_model import CarbonSummary, RunReport, RunStatus, Totals, metered_only
from lightning_energy.units import joules_to_kwh

if TYPE_CHECKING:
    from lightning_energy.run import EnergyRun

__all__ = ["build_report", "write_run_report"]


def build_report(
    run: EnergyRun,
    status: RunStatus,
    *,
    world_size: int,
    num_nodes: int,
    components: Mapping[str, ComponentLabel],
    hardware: Hardware,
    versions: Mapping[str, str],
) -> RunReport:
    """The typed report of ``run`` as it stands."""
    ledger = run.ledger
    total_j = ledger.measured_total_j
    last = run.last_projection
    carbon = None
    if run.carbon is not None:
        c = run.carbon
        carbon = CarbonSummary(
            intensity=c,
            co2_kg=None if total_j is None else c.co2_kg(joules_to_kwh(total_j)),
            projected_co2_kg=None if last is None else c.co2_kg(joules_to_kwh(max(last.total_j, 0.0))),
        )
    labels = dict(components)
    for category in ledger.present_categories():
        labels.setdefault(category, UNKNOWN)
    budget = run.budget
    return RunReport(
        status=status,
        started_at=run.started_at,
        ended_at=datetime.now(timezone.utc).isoformat(),
        world_size=world_size,
        num_nodes=num_nodes,
        max_epochs=budget.total_epochs,
        max_steps=budget.max_steps,
        max_time_s=budget.total_seconds,
        upper_bound=budget.upper_bound,
        components=labels,
        epochs=tuple(metered_only(r, labels) for r in ledger.records),  # a CPU run names no GPU
        windows=tuple(run.windows),
        totals=Totals(
            energy_j=total_j,
            components_j={k: v for k, v in ledger.category_totals_j().items() if v},
            fit_energy_j=run.fit_energy_j,
            duration_s=ledger.duration_s,
            measured_epochs=len(ledger.measured),
            missing_epochs=ledger.missing_epochs,
        ),
        history=tuple(run.history),
        expected=tuple(run.expected),
        unmetered_ranks=run.unmetered_ranks,
        projection_note=budget.unknown_reason(),
        pre=run.pre,
        carbon=carbon,
        hardware=hardware,
        versions=dict(versions),
        warnings=tuple(run.warnings),
    )


def write_run_report(
    run: EnergyRun, directory: str | os.PathLike[str], status: RunStatus, **facts: Any
) -> str | None:
    """Write ``energy_report.json`` and ``energy_epochs.csv`` of ``run`` (``facts``:
    :func:`build_report`'s keywords); the warning to show when they were not written, else ``None``."""
    from lightning_energy.report import REPORT_FILENAME, write_report

    existing = Path(directory) / REPORT_FILENAME
    if not run.ledger.records and not run.windows and status != "failed" and existing.exists():
        # a fit that trained nothing (fit() again on a finished Trainer) must not replace a real report
        return f"this fit trained nothing: the energy report {existing} was left as it was"
    try:
        write_report(directory, run.report(status, **facts))
    except (OSError, EnergyError, ValueError, TypeError) as exc:
        note = "" if isinstance(exc, OSError) else "; no file was changed"  # an OSError says what changed
        return f"the energy report was not written ({exc}){note}"
    return None
