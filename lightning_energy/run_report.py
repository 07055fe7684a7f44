"""The typed report of an :class:`~lightning_energy.run.EnergyRun` as it stands, and writing it.

Pure Python (no torch, no Lightning): reads the run's public attributes and builds the
:class:`~lightning_energy.report_model.RunReport` that :mod:`lightning_energy.report` writes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_energy.errors import EnergyError
from lightning_energy.labels import UNKNOWN
from lightning_energy.report import REPORT_FILENAME, write_report
from lightning_energy.report_model import (
    CarbonSummary,
    RunReport,
    RunStatus,
    Totals,
    TrainerFacts,
    metered_only,
)
from lightning_energy.units import joules_to_kwh

if TYPE_CHECKING:
    from lightning_energy.run import EnergyRun

__all__ = ["build_report", "facts_from_keywords", "write_run_report"]

_FACT_KEYWORDS = ("world_size", "num_nodes", "components", "hardware", "versions")


def facts_from_keywords(facts: TrainerFacts | None, keywords: Mapping[str, Any]) -> TrainerFacts:
    """``facts``, or (deprecated since 0.3.0: pass a :class:`TrainerFacts`) the same figures as keywords."""
    unknown = sorted(set(keywords) - set(_FACT_KEYWORDS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    if facts is not None and not isinstance(facts, TrainerFacts):
        raise TypeError(f"facts must be a TrainerFacts, got {type(facts).__name__}")
    if not keywords:
        return facts if facts is not None else TrainerFacts()
    if facts is not None:
        raise TypeError("pass either facts or its keywords (world_size, num_nodes, ...), not both")
    warnings.warn(
        "report(..., world_size=, num_nodes=, components=, hardware=, versions=) is deprecated: "
        "pass facts=TrainerFacts(...)",
        DeprecationWarning,
        stacklevel=3,
    )
    return TrainerFacts(**keywords)


def build_report(run: EnergyRun, status: RunStatus, facts: TrainerFacts) -> RunReport:
    """The typed report of ``run`` as it stands, in the setting ``facts`` describes."""
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
    labels = dict(facts.components)
    for category in ledger.present_categories():
        labels.setdefault(category, UNKNOWN)
    budget = run.budget
    return RunReport(
        status=status,
        started_at=run.started_at,
        ended_at=datetime.now(timezone.utc).isoformat(),
        world_size=facts.world_size,
        num_nodes=facts.num_nodes,
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
        projections=tuple(run.projections),
        expected=tuple(run.expected),
        unmetered_ranks=run.unmetered_ranks,
        projection_note=budget.unknown_reason(),
        pre=run.pre,
        carbon=carbon,
        hardware=facts.hardware,
        versions=dict(facts.versions),
        warnings=tuple(run.warnings),
    )


def write_run_report(
    run: EnergyRun,
    directory: str | os.PathLike[str],
    status: RunStatus,
    facts: TrainerFacts,
    built: RunReport | None = None,
) -> str | None:
    """Write ``energy_report.json`` and ``energy_epochs.csv`` of ``run`` (see :func:`build_report`; ``built``:
    that report, already built for ``status`` and ``facts``, written as it is); the warning to show when
    they were not written, else ``None``."""
    existing = Path(directory) / REPORT_FILENAME
    if not run.ledger.records and not run.windows and status != "failed" and existing.exists():
        # a fit that trained nothing (fit() again on a finished Trainer) must not replace a real report
        return f"this fit trained nothing: the energy report {existing} was left as it was"
    try:
        write_report(directory, built if built is not None else build_report(run, status, facts))
    except (OSError, EnergyError, ValueError, TypeError) as exc:
        note = "" if isinstance(exc, OSError) else "; no file was changed"  # an OSError says what changed
        return f"the energy report was not written ({exc}){note}"
    return None
