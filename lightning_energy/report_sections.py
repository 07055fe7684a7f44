"""The report's PRE and CO₂ sections: the pre-training estimate
(:class:`~lightning_energy.pre.fit.PreSummary`, PRE's one type for a fit's estimate, re-exported here) and
the CO₂e figures with the intensity that gave them. Pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lightning_energy.carbon import CarbonIntensity
from lightning_energy.errors import ReportError
from lightning_energy.pre.fit import PreSummary
from lightning_energy.report_fields import float_or, opt_float, opt_int

__all__ = ["CarbonSummary", "PreSummary"]


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
