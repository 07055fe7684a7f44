"""The report's PRE and CO₂ sections: the pre-training estimate (PRE's ``Estimate`` kept whole) and the CO₂e
figures with the intensity that gave them. Pure Python."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lightning_energy.carbon import CarbonIntensity
from lightning_energy.errors import ReportError
from lightning_energy.report_fields import (
    float_or,
    list_field,
    mapping_field,
    opt_float,
    opt_int,
)

if TYPE_CHECKING:
    from lightning_energy.pre.model import Estimate

__all__ = ["CarbonSummary", "PreSummary"]


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
        notes = tuple(str(w) for w in list_field(data, "warnings"))
        if data.get("skipped") is not None:
            return cls(skipped=str(data["skipped"]), warnings=notes)
        total = opt_float(data, "total_j")
        return cls(
            total_j=total,
            low_j=opt_float(data, "low_j") if data.get("low_j") is not None else total,
            high_j=opt_float(data, "high_j") if data.get("high_j") is not None else total,
            total_epochs=opt_float(data, "total_epochs"),
            devices=opt_int(data, "devices") or 1,
            upper_bound=bool(data.get("upper_bound")),
            estimate=_estimate_from_json(mapping_field(data, "estimate")),
            descriptor=dict(mapping_field(data, "descriptor")),
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

    figures = [opt_float(data, key) for key in ("epoch_energy_j", "power_w", "epoch_seconds")]
    log_sigma, rel_sigma = opt_float(data, "log_sigma"), opt_float(data, "rel_sigma")
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
        calibration_runs=opt_int(data, "calibration_runs") or 0,
        speed_source="measured" if source is None else str(source),
        gpu_busy_share=opt_float(data, "gpu_busy_share"),
        regime=None if regime is None else str(regime),
        bandwidth_share=opt_float(data, "bandwidth_share"),
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
                g_per_kwh=float_or(data, "g_per_kwh"),
                pue=float_or(data, "pue", 1.0),
                source=str(data.get("source") or "user"),
                year=opt_int(data, "year"),
                country_iso3=None if iso3 is None else str(iso3),
                country_name=None if name is None else str(name),
            )
        except ValueError as exc:  # a negative intensity or a PUE below 1
            raise ReportError(f"field 'carbon': {exc}") from exc
        return cls(intensity, opt_float(data, "co2_kg"), opt_float(data, "projected_co2_kg"))
