"""The typed run report: frozen dataclasses from the run model to the JSON file, the tables and the plot.

Pure Python (no torch, no Lightning). :class:`RunReport` is what the run model produces, what
:func:`lightning_energy.report.write_report` writes, what :func:`lightning_energy.report.load_report` returns
and what the tables, the plot and the CLI read. ``to_json``/``from_json`` are the only places that know the
file's field names (schema: ``docs/report.md``); reading is lenient about fields a newer or older writer
added or left out, and strict about their types.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from lightning_energy.accounting import EpochRecord
from lightning_energy.errors import ReportError
from lightning_energy.hardware import Hardware
from lightning_energy.labels import ComponentLabel, component_label
from lightning_energy.report_fields import (
    float_or,
    list_field,
    mapping_field,
    one_of,
    opt_float,
    opt_int,
)
from lightning_energy.report_projection import (
    ExpectedPoint,
    ProjectionPoint,
    WindowRecord,
    budget_segments,
    first_stable,
    upper_bound_note,
)
from lightning_energy.report_sections import CarbonSummary, PreSummary
from lightning_energy.units import joules_to_kwh, kwh_to_joules

REPORT_FORMAT = "lightning_energy.report"
REPORT_VERSION = 1

# how the run ended: every epoch measured, some missing (or none measured), or the fit raised
RunStatus = Literal["complete", "partial", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "RUN_STATUSES",
    "CarbonSummary",
    "ExpectedPoint",
    "PreSummary",
    "ProjectionPoint",
    "ReportError",
    "RunReport",
    "RunStatus",
    "Totals",
    "TrainerFacts",
    "WindowRecord",
    "budget_segments",
    "first_stable",
    "upper_bound_note",
]


@dataclass(frozen=True)
class Totals:
    """The run's measured totals. ``energy_j`` is ``None`` when no epoch could be measured: never a fake 0."""

    energy_j: float | None
    components_j: Mapping[str, float]
    fit_energy_j: float | None
    duration_s: float
    measured_epochs: int
    missing_epochs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "energy_j": self.energy_j,
            "energy_kwh": None if self.energy_j is None else joules_to_kwh(self.energy_j),
            "components_kwh": {k: joules_to_kwh(v) for k, v in self.components_j.items()},
            "fit_energy_j": self.fit_energy_j,
            "duration_s": self.duration_s,
            "measured_epochs": self.measured_epochs,
            "missing_epochs": self.missing_epochs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        components = mapping_field(data, "components_kwh")
        return cls(
            energy_j=opt_float(data, "energy_j"),
            components_j={str(k): kwh_to_joules(float_or(components, k)) for k in components},
            fit_energy_j=opt_float(data, "fit_energy_j"),
            duration_s=float_or(data, "duration_s"),
            measured_epochs=opt_int(data, "measured_epochs") or 0,
            missing_epochs=opt_int(data, "missing_epochs") or 0,
        )


def _epoch_from_json(data: Any) -> EpochRecord:
    if not isinstance(data, Mapping):
        raise ReportError(f"each entry of 'epochs' must be an object, got {type(data).__name__}")
    energy = opt_float(data, "energy_j")
    parts = mapping_field(data, "components_j")
    reason = data.get("reason")
    return EpochRecord(
        epoch=opt_int(data, "epoch") or 0,
        duration_s=float_or(data, "duration_s"),
        energy_j=energy,
        components_j={str(k): float_or(parts, k) for k in parts},
        reason=None if reason is None else str(reason),
        batches=opt_int(data, "batches"),
    )


def metered_only(record: EpochRecord, categories: Iterable[str]) -> EpochRecord:
    """``record`` without the categories that were not metered (not in ``categories``, and 0 J): a CPU-only
    run's epochs name no ``gpu`` (its energy is unknown, not 0)."""
    kept = set(categories)
    parts = {k: v for k, v in record.components_j.items() if k in kept or v}
    return record if parts == record.components_j else replace(record, components_j=parts)


def _epoch_to_json(record: EpochRecord, categories: Iterable[str]) -> dict[str, Any]:
    return {
        "epoch": record.epoch,
        "duration_s": record.duration_s,
        "energy_j": record.energy_j,
        "components_j": dict(metered_only(record, categories).components_j),
        "power_w": record.power_w,
        "missing": record.missing,
        "reason": record.reason,
        "batches": record.batches,
    }


@dataclass(frozen=True)
class TrainerFacts:
    """What the report says about the run's setting, gathered by the Lightning adapter at the fit's end:
    ranks and nodes, how each energy component was obtained, the hardware and the library versions."""

    world_size: int = 1
    num_nodes: int = 1
    components: Mapping[str, ComponentLabel] = field(default_factory=dict)
    hardware: Hardware = field(default_factory=Hardware)
    versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    """Everything the run report holds (``energy_report.json``; schema in ``docs/report.md``)."""

    status: RunStatus
    started_at: str
    ended_at: str
    world_size: int
    num_nodes: int
    max_epochs: float | None
    max_time_s: float | None
    upper_bound: bool
    components: Mapping[str, ComponentLabel]
    epochs: Sequence[EpochRecord]
    totals: Totals
    projections: Sequence[ProjectionPoint] = ()  # STEP's, over time (JSON: projection.history)
    windows: Sequence[WindowRecord] = ()
    projection_note: str | None = None
    pre: PreSummary | None = None
    carbon: CarbonSummary | None = None
    hardware: Hardware = field(default_factory=Hardware)
    versions: Mapping[str, str] = field(default_factory=dict)
    warnings: Sequence[str] = ()
    max_steps: int | None = None
    expected: Sequence[ExpectedPoint] = ()  # EarlyStopping: the expected total and stop over time
    unmetered_ranks: int = 0  # ranks with nothing to meter by design (CPU DDP): counted as 0 J

    # -------------------------------------------------------------------------------------------- queries
    @property
    def history(self) -> Sequence[ProjectionPoint]:
        """Deprecated name of :attr:`projections` (the JSON key stays ``projection.history``)."""
        warnings.warn("RunReport.history is deprecated: use RunReport.projections", DeprecationWarning, 2)
        return self.projections

    @property
    def final_projection(self) -> ProjectionPoint | None:
        return self.projections[-1] if self.projections else None

    @property
    def first_stable(self) -> ProjectionPoint | None:
        """The projection at which STEP first declared the per-epoch energy stable for the run's final
        budget (projections to an earlier budget, before a resume changed it, are left out), or ``None``."""
        return first_stable(budget_segments(self.projections)[1])

    @property
    def earlier_budget_stable(self) -> ProjectionPoint | None:
        """The first stable projection made to an earlier budget (before a resume changed it), or ``None``."""
        return first_stable(budget_segments(self.projections)[0])

    def upper_bound_note(self) -> str:
        """Says the final projection is an upper bound (the run stopped early, or EarlyStopping may)."""
        trained = self.epochs[-1].epoch + 1 if self.epochs else 0
        return upper_bound_note(self.max_epochs, trained, self.upper_bound)

    @property
    def pre_available(self) -> PreSummary | None:
        return self.pre if self.pre is not None and self.pre.available else None

    def max_j(self) -> float:
        """The largest energy the report shows (for choosing a readable unit)."""
        values = [self.totals.energy_j or 0.0]
        values += [h.high_j for h in self.projections if math.isfinite(h.high_j)]
        pre = self.pre_available
        if pre is not None:
            values += [v for v in (pre.total_j, pre.high_j) if v is not None]
        return max(values)

    # --------------------------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "world_size": self.world_size,
            "num_nodes": self.num_nodes,
            "unmetered_ranks": self.unmetered_ranks,
            "max_epochs": self.max_epochs,
            "max_steps": self.max_steps,
            "max_time_s": self.max_time_s,
            "upper_bound": self.upper_bound,
            "components": dict(self.components),
            "epochs": [_epoch_to_json(r, self.components) for r in self.epochs],
            "windows": [w.to_json() for w in self.windows],
            "totals": self.totals.to_json(),
            "projection": {
                "method": "step",
                "upper_bound": self.upper_bound,
                "note": self.projection_note,
                "history": [h.to_json() for h in self.projections],
                "expected": [e.to_json() for e in self.expected],
            },
            "pre": None if self.pre is None else self.pre.to_json(),
            "carbon": None if self.carbon is None else self.carbon.to_json(),
            "hardware": self.hardware.to_json(),
            "versions": dict(self.versions),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunReport:
        """Read a report dict (format and version: :func:`lightning_energy.report.load_report`)."""
        for key, kind in (("epochs", list), ("totals", dict)):
            if not isinstance(data.get(key), kind):
                raise ReportError(f"field {key!r} is missing or not a {kind.__name__}")
        projection = mapping_field(data, "projection")
        pre, carbon = data.get("pre"), data.get("carbon")
        note = projection.get("note")
        return cls(
            started_at=str(data.get("started_at") or ""),
            ended_at=str(data.get("ended_at") or ""),
            world_size=opt_int(data, "world_size") or 1,
            num_nodes=opt_int(data, "num_nodes") or 1,
            unmetered_ranks=opt_int(data, "unmetered_ranks") or 0,
            max_epochs=opt_float(data, "max_epochs"),
            max_steps=opt_int(data, "max_steps"),
            max_time_s=opt_float(data, "max_time_s"),
            upper_bound=bool(data.get("upper_bound")),
            components={str(k): component_label(v) for k, v in mapping_field(data, "components").items()},
            epochs=tuple(_epoch_from_json(e) for e in list_field(data, "epochs")),
            windows=tuple(
                WindowRecord.from_json(w) for w in list_field(data, "windows") if isinstance(w, Mapping)
            ),
            totals=Totals.from_json(mapping_field(data, "totals")),
            projections=tuple(
                ProjectionPoint.from_json(h)
                for h in list_field(projection, "history")
                if isinstance(h, Mapping)
            ),
            projection_note=None if note is None else str(note),
            expected=tuple(
                ExpectedPoint.from_json(e)
                for e in list_field(projection, "expected")
                if isinstance(e, Mapping)
            ),
            pre=PreSummary.from_json(pre) if isinstance(pre, Mapping) else None,
            carbon=CarbonSummary.from_json(carbon) if isinstance(carbon, Mapping) else None,
            hardware=Hardware.from_json(mapping_field(data, "hardware")),
            versions={str(k): str(v) for k, v in mapping_field(data, "versions").items()},
            warnings=tuple(str(w) for w in list_field(data, "warnings")),
            status=one_of(data, "status", RUN_STATUSES, None),  # last: the structure's errors first
        )
