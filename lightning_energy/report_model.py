"""The typed run report: frozen dataclasses from the run model to the JSON file, the tables and the plot.

Pure Python (no torch, no Lightning). :class:`RunReport` is what the run model produces, what
:func:`lightning_energy.report.write_report` writes, what :func:`lightning_energy.report.load_report` returns
and what the tables, the plot and the CLI read. ``to_json``/``from_json`` are the only places that know the
file's field names (schema: ``docs/report.md``); reading is lenient about fields a newer or older writer
added or left out, and strict about their types.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from lightning_energy.accounting import EpochRecord
from lightning_energy.carbon import CarbonIntensity
from lightning_energy.errors import ReportError
from lightning_energy.hardware import Hardware
from lightning_energy.step.expected import ExpectedTotal
from lightning_energy.step.projector import PROJECTION_METHODS, Projection, ProjectionMethod
from lightning_energy.units import joules_to_kwh, kwh_to_joules

if TYPE_CHECKING:
    from lightning_energy.pre.model import Estimate

_T = TypeVar("_T", bound=str)

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
    "PreSummary",
    "ProjectionPoint",
    "ReportError",
    "RunReport",
    "RunStatus",
    "Totals",
    "WindowRecord",
]


def _shown(value: Any) -> str:
    """``value`` for an error message, cut short (a damaged file may hold a huge number or string)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    """A finite number or ``None``: a report never holds NaN or an infinity (they are written as null)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"field {key!r} must be a number or null, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ReportError(f"field {key!r} must be a finite number or null, got {_shown(value)}")
    return number


def _float(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = _opt_float(data, key)
    return default if value is None else value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = _opt_float(data, key)
    return None if value is None else int(value)


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ReportError(f"field {key!r} must be an object, got {type(value).__name__}")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"field {key!r} must be a list, got {type(value).__name__}")
    return value


def _one_of(data: Mapping[str, Any], key: str, allowed: tuple[_T, ...], default: _T | None) -> _T:
    """A value of a closed vocabulary (``default`` when absent and one is given)."""
    value = data.get(key)
    if value is None and default is not None:
        return default
    for name in allowed:
        if value == name:
            return name
    raise ReportError(f"field {key!r} must be one of {', '.join(map(repr, allowed))}, got {_shown(value)}")


@dataclass(frozen=True)
class ProjectionPoint:
    """STEP's projection of the run's total energy (:class:`~lightning_energy.step.Projection`, kept whole)
    made after ``epoch`` (and, inside an epoch, ``step``). Its figures read through to the projection."""

    epoch: int
    projection: Projection
    step: int | None = None
    planned_epochs: float | None = None  # the run's planned epochs when it was made (a resume may change it)

    @property
    def total_j(self) -> float:
        return self.projection.total_j

    @property
    def low_j(self) -> float:
        return self.projection.low_j

    @property
    def high_j(self) -> float:
        return self.projection.high_j

    @property
    def stable(self) -> bool:
        return self.projection.stable

    @property
    def stable_since(self) -> int | None:
        return self.projection.stable_since

    @property
    def epoch_energy_j(self) -> float:
        return self.projection.epoch_energy_j

    @property
    def method(self) -> ProjectionMethod:
        return self.projection.method

    @property
    def reason(self) -> str:
        return self.projection.reason

    def to_json(self) -> dict[str, Any]:
        """The ten fields of 0.3.0 in their order, then the rest of the projection (added after 0.3.0)."""
        p = self.projection
        return {
            "epoch": self.epoch,
            "step": self.step,
            "total_j": p.total_j,
            "low_j": p.low_j,
            "high_j": p.high_j,
            "stable": p.stable,
            "stable_since": p.stable_since,
            "epoch_energy_j": p.epoch_energy_j,
            "method": p.method,
            "reason": p.reason,
            "epochs_seen": p.epochs_seen,
            "measured_j": p.measured_j,
            "power_w": p.power_w,
            "regime_start": p.regime_start,
            "remaining_epochs": p.remaining_epochs,
            "remaining_s": p.remaining_s,
            "confidence": p.confidence,
            "interval_group": p.interval_group,
            "planned_epochs": self.planned_epochs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProjectionPoint:
        """A point of the report's history; the fields a 0.3.0 report lacks read as unknown (NaN), except
        ``epochs_seen`` (``epoch + 1``) and ``regime_start`` (``stable_since``, else 0)."""
        epoch = _opt_int(data, "epoch") or 0
        total = _float(data, "total_j", math.nan)
        stable_since = _opt_int(data, "stable_since")
        group = data.get("interval_group")
        seen, regime = _opt_int(data, "epochs_seen"), _opt_int(data, "regime_start")
        projection = Projection(
            total_j=total,
            low_j=_float(data, "low_j", total),
            high_j=_float(data, "high_j", total),
            stable=bool(data.get("stable")),
            stable_since=stable_since,
            epoch_energy_j=_float(data, "epoch_energy_j", math.nan),
            epochs_seen=epoch + 1 if seen is None else seen,
            measured_j=_float(data, "measured_j", math.nan),
            power_w=_float(data, "power_w", math.nan),
            regime_start=regime if regime is not None else stable_since or 0,
            remaining_epochs=_opt_float(data, "remaining_epochs"),
            remaining_s=_opt_float(data, "remaining_s"),
            method=_one_of(data, "method", PROJECTION_METHODS, "level"),
            confidence=_float(data, "confidence", math.nan),
            reason=str(data.get("reason") or ""),
            interval_group="" if group is None else str(group),
        )
        return cls(
            epoch=epoch,
            projection=projection,
            step=_opt_int(data, "step"),
            planned_epochs=_opt_float(data, "planned_epochs"),
        )


def budget_segments(
    history: Sequence[ProjectionPoint],
) -> tuple[Sequence[ProjectionPoint], Sequence[ProjectionPoint]]:
    """``history`` split where the planned epochs last changed (a resume with a new ``max_epochs``):
    the projections made to earlier budgets, and those made to the run's final budget."""
    start = len(history)
    while start > 0 and history[start - 1].planned_epochs == history[-1].planned_epochs:
        start -= 1
    return history[:start], history[start:]


def first_stable(history: Sequence[ProjectionPoint]) -> ProjectionPoint | None:
    """The projection at which STEP first declared the per-epoch energy stable, or ``None``."""
    return next((h for h in history if h.stable), None)


def upper_bound_note(planned_epochs: float | None, trained_epochs: int, may_stop_early: bool) -> str:
    """`` (an upper bound: ...)`` when the projection is to more epochs than the run trained or may train."""
    if planned_epochs is None:
        return ""
    if trained_epochs < planned_epochs:
        return f" (an upper bound: the run stopped after {trained_epochs} of {planned_epochs:g} epochs)"
    if may_stop_early:
        return f" (an upper bound for max_epochs={planned_epochs:g}: EarlyStopping may stop earlier)"
    return ""


@dataclass(frozen=True)
class WindowRecord:
    """One window of training steps inside an epoch: its energy (this rank's meter scaled to all ranks)."""

    epoch: int
    step: int  # the global step read at the start of its last batch (where Lightning logs that batch)
    time_s: float  # seconds since the fit started
    steps: int  # batches in the window
    energy_j: float | None
    total_j: float | None = None  # projection made at the window's end
    low_j: float | None = None
    high_j: float | None = None
    stable: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "time_s": self.time_s,
            "steps": self.steps,
            "energy_j": self.energy_j,
            "projected_total_j": self.total_j,
            "projected_low_j": self.low_j,
            "projected_high_j": self.high_j,
            "stable": self.stable,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowRecord:
        return cls(
            epoch=_opt_int(data, "epoch") or 0,
            step=_opt_int(data, "step") or 0,
            time_s=_float(data, "time_s"),
            steps=_opt_int(data, "steps") or 0,
            energy_j=_opt_float(data, "energy_j"),
            total_j=_opt_float(data, "projected_total_j"),
            low_j=_opt_float(data, "projected_low_j"),
            high_j=_opt_float(data, "projected_high_j"),
            stable=bool(data.get("stable")),
        )


@dataclass(frozen=True)
class PreSummary:
    """The pre-training (PRE) estimate of the whole run, all GPUs together, or why there is none.

    ``estimate`` is PRE's own per-epoch estimate on one GPU (:class:`~lightning_energy.pre.model.Estimate`,
    kept as PRE made it); ``total_j``, ``low_j`` and ``high_j`` are the whole run's (``total_epochs`` epochs
    on ``devices`` GPUs), rescaled when the planned epochs become known.
    """

    total_j: float | None = None
    low_j: float | None = None
    high_j: float | None = None
    total_epochs: float | None = None
    devices: int = 1
    upper_bound: bool = False
    estimate: Estimate | None = None
    descriptor: Mapping[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    warnings: tuple[str, ...] = ()  # what the estimate had to leave out (an unusable run history, ...)

    @property
    def available(self) -> bool:
        return self.skipped is None and self.total_j is not None

    def scaled_to(self, total_epochs: float) -> PreSummary:
        """The same estimate for another planned number of epochs (known once the data is set up)."""
        if not self.available or not self.total_epochs or total_epochs == self.total_epochs:
            return self
        scale = total_epochs / self.total_epochs

        def times(value: float | None) -> float | None:
            return None if value is None else value * scale

        return replace(
            self,
            total_j=times(self.total_j),
            low_j=times(self.low_j),
            high_j=times(self.high_j),
            total_epochs=total_epochs,
        )

    def to_json(self) -> dict[str, Any]:
        notes = {"warnings": list(self.warnings)} if self.warnings else {}
        if self.skipped is not None:
            return {"skipped": self.skipped, **notes}
        return {
            **notes,
            "descriptor": dict(self.descriptor),
            "estimate": _estimate_to_json(self.estimate),
            "total_epochs": self.total_epochs,
            "devices": self.devices,
            "total_j": self.total_j,
            "low_j": self.low_j,
            "high_j": self.high_j,
            "upper_bound": self.upper_bound,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PreSummary:
        notes = tuple(str(w) for w in _list(data, "warnings"))
        if data.get("skipped") is not None:
            return cls(skipped=str(data["skipped"]), warnings=notes)
        total = _opt_float(data, "total_j")
        return cls(
            total_j=total,
            low_j=_opt_float(data, "low_j") if data.get("low_j") is not None else total,
            high_j=_opt_float(data, "high_j") if data.get("high_j") is not None else total,
            total_epochs=_opt_float(data, "total_epochs"),
            devices=_opt_int(data, "devices") or 1,
            upper_bound=bool(data.get("upper_bound")),
            estimate=_estimate_from_json(_mapping(data, "estimate")),
            descriptor=dict(_mapping(data, "descriptor")),
            warnings=notes,
        )


# the per-epoch estimate's fields in the report, in the order written (the first eight since 0.3.0)
_ESTIMATE_FIELDS = (
    "epoch_energy_j",
    "epoch_seconds",
    "power_w",
    "gpu_name",
    "rel_sigma",
    "speed_source",
    "gpu_busy_share",
    "calibration_runs",
    "log_sigma",
    "regime",
    "bandwidth_share",
    "traffic_inferred",
)


def _estimate_to_json(estimate: Estimate | None) -> dict[str, Any]:
    """The report's ``pre.estimate`` section: PRE's per-epoch estimate (all ``null`` when unknown)."""
    if estimate is None:
        return dict.fromkeys(_ESTIMATE_FIELDS)
    return {name: getattr(estimate, name) for name in _ESTIMATE_FIELDS}


def _estimate_from_json(data: Mapping[str, Any]) -> Estimate | None:
    """PRE's per-epoch estimate from the report; ``None`` when the section lacks one of its figures (a
    report written before ``log_sigma``/``rel_sigma`` were, or a damaged one)."""
    from lightning_energy.pre.model import Estimate

    figures = [_opt_float(data, key) for key in ("epoch_energy_j", "power_w", "epoch_seconds")]
    log_sigma, rel_sigma = _opt_float(data, "log_sigma"), _opt_float(data, "rel_sigma")
    if log_sigma is None and rel_sigma is not None:
        log_sigma = math.sqrt(math.log1p(rel_sigma**2))
    name = data.get("gpu_name")
    energy_j, power_w, seconds = figures
    if energy_j is None or power_w is None or seconds is None or log_sigma is None or name is None:
        return None
    source, regime, traffic = data.get("speed_source"), data.get("regime"), data.get("traffic_inferred")
    return Estimate(
        epoch_energy_j=energy_j,
        power_w=power_w,
        epoch_seconds=seconds,
        log_sigma=log_sigma,
        gpu_name=str(name),
        calibration_runs=_opt_int(data, "calibration_runs") or 0,
        speed_source="measured" if source is None else str(source),
        gpu_busy_share=_opt_float(data, "gpu_busy_share"),
        regime=None if regime is None else str(regime),
        bandwidth_share=_opt_float(data, "bandwidth_share"),
        traffic_inferred=None if traffic is None else bool(traffic),
    )


@dataclass(frozen=True)
class CarbonSummary:
    """CO₂e of the measured and projected energy, with the intensity (and its source) that gave them.

    The report's ``carbon`` section is the intensity's fields (:meth:`CarbonIntensity.to_dict`) followed by
    ``co2_kg`` and ``projected_co2_kg``.
    """

    intensity: CarbonIntensity
    co2_kg: float | None
    projected_co2_kg: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.intensity.to_dict(),
            "co2_kg": self.co2_kg,
            "projected_co2_kg": self.projected_co2_kg,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CarbonSummary:
        iso3, name = data.get("country_iso3"), data.get("country_name")
        try:
            intensity = CarbonIntensity(
                g_per_kwh=_float(data, "g_per_kwh"),
                pue=_float(data, "pue", 1.0),
                source=str(data.get("source") or "user"),
                year=_opt_int(data, "year"),
                country_iso3=None if iso3 is None else str(iso3),
                country_name=None if name is None else str(name),
            )
        except ValueError as exc:  # a negative intensity or a PUE below 1
            raise ReportError(f"field 'carbon': {exc}") from exc
        return cls(intensity, _opt_float(data, "co2_kg"), _opt_float(data, "projected_co2_kg"))


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
        components = _mapping(data, "components_kwh")
        return cls(
            energy_j=_opt_float(data, "energy_j"),
            components_j={str(k): kwh_to_joules(_float(components, k)) for k in components},
            fit_energy_j=_opt_float(data, "fit_energy_j"),
            duration_s=_float(data, "duration_s"),
            measured_epochs=_opt_int(data, "measured_epochs") or 0,
            missing_epochs=_opt_int(data, "missing_epochs") or 0,
        )


def _epoch_from_json(data: Any) -> EpochRecord:
    if not isinstance(data, Mapping):
        raise ReportError(f"each entry of 'epochs' must be an object, got {type(data).__name__}")
    energy = _opt_float(data, "energy_j")
    parts = _mapping(data, "components_j")
    reason = data.get("reason")
    return EpochRecord(
        epoch=_opt_int(data, "epoch") or 0,
        duration_s=_float(data, "duration_s"),
        energy_j=energy,
        components_j={str(k): _float(parts, k) for k in parts},
        reason=None if reason is None else str(reason),
        batches=_opt_int(data, "batches"),
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
class ExpectedPoint:
    """The expected total of an ``EarlyStopping`` run after epoch ``epoch`` (0-based): STEP's
    :class:`~lightning_energy.step.ExpectedTotal` kept whole (the projection times the predicted stop, with a
    90 % interval, and the predicted stop epoch; ``stop_epoch_high`` ``None``: open top)."""

    epoch: int
    expected: ExpectedTotal

    @property
    def total_j(self) -> float:
        return self.expected.total_j

    @property
    def low_j(self) -> float:
        return self.expected.low_j

    @property
    def high_j(self) -> float:
        return self.expected.high_j

    @property
    def stop_epoch(self) -> float:
        return self.expected.stop_epoch

    @property
    def stop_epoch_low(self) -> float:
        return self.expected.stop_epoch_low

    @property
    def stop_epoch_high(self) -> float | None:
        return self.expected.stop_epoch_high

    def to_json(self) -> dict[str, Any]:
        """The seven fields of 0.3.0 in their order, then ``bound_j`` (added after 0.3.0)."""
        e = self.expected
        return {
            "epoch": self.epoch,
            "total_j": e.total_j,
            "low_j": e.low_j,
            "high_j": e.high_j,
            "stop_epoch": e.stop_epoch,
            "stop_epoch_low": e.stop_epoch_low,
            "stop_epoch_high": e.stop_epoch_high,
            "bound_j": e.bound_j,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExpectedPoint:
        """A point of the report's expected totals; ``bound_j`` of a 0.3.0 report reads as unknown (NaN)."""
        expected = ExpectedTotal(
            total_j=_float(data, "total_j"),
            low_j=_float(data, "low_j"),
            high_j=_float(data, "high_j"),
            stop_epoch=_float(data, "stop_epoch"),
            stop_epoch_low=_float(data, "stop_epoch_low"),
            stop_epoch_high=_opt_float(data, "stop_epoch_high"),
            bound_j=_float(data, "bound_j", math.nan),
        )
        return cls(epoch=_opt_int(data, "epoch") or 0, expected=expected)


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
    components: Mapping[str, str]
    epochs: Sequence[EpochRecord]
    totals: Totals
    history: Sequence[ProjectionPoint] = ()
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
    def final_projection(self) -> ProjectionPoint | None:
        return self.history[-1] if self.history else None

    @property
    def first_stable(self) -> ProjectionPoint | None:
        """The projection at which STEP first declared the per-epoch energy stable for the run's final
        budget (projections to an earlier budget, before a resume changed it, are left out), or ``None``."""
        return first_stable(budget_segments(self.history)[1])

    @property
    def earlier_budget_stable(self) -> ProjectionPoint | None:
        """The first stable projection made to an earlier budget (before a resume changed it), or ``None``."""
        return first_stable(budget_segments(self.history)[0])

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
        values += [h.high_j for h in self.history if math.isfinite(h.high_j)]
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
                "history": [h.to_json() for h in self.history],
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
        projection = _mapping(data, "projection")
        pre, carbon = data.get("pre"), data.get("carbon")
        note = projection.get("note")
        return cls(
            started_at=str(data.get("started_at") or ""),
            ended_at=str(data.get("ended_at") or ""),
            world_size=_opt_int(data, "world_size") or 1,
            num_nodes=_opt_int(data, "num_nodes") or 1,
            unmetered_ranks=_opt_int(data, "unmetered_ranks") or 0,
            max_epochs=_opt_float(data, "max_epochs"),
            max_steps=_opt_int(data, "max_steps"),
            max_time_s=_opt_float(data, "max_time_s"),
            upper_bound=bool(data.get("upper_bound")),
            components={str(k): str(v) for k, v in _mapping(data, "components").items()},
            epochs=tuple(_epoch_from_json(e) for e in _list(data, "epochs")),
            windows=tuple(
                WindowRecord.from_json(w) for w in _list(data, "windows") if isinstance(w, Mapping)
            ),
            totals=Totals.from_json(_mapping(data, "totals")),
            history=tuple(
                ProjectionPoint.from_json(h) for h in _list(projection, "history") if isinstance(h, Mapping)
            ),
            projection_note=None if note is None else str(note),
            expected=tuple(
                ExpectedPoint.from_json(e) for e in _list(projection, "expected") if isinstance(e, Mapping)
            ),
            pre=PreSummary.from_json(pre) if isinstance(pre, Mapping) else None,
            carbon=CarbonSummary.from_json(carbon) if isinstance(carbon, Mapping) else None,
            hardware=Hardware.from_json(_mapping(data, "hardware")),
            versions={str(k): str(v) for k, v in _mapping(data, "versions").items()},
            warnings=tuple(str(w) for w in _list(data, "warnings")),
            status=_one_of(data, "status", RUN_STATUSES, None),  # last: the structure's errors first
        )
