"""PRE's estimate of a whole fit (:class:`PreSummary`): the per-epoch estimate on one GPU times the planned
epochs and the GPUs, or why there is none; the one type from the estimate to the report's ``pre`` section.

Pure Python (no torch, no Lightning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lightning_energy._validate import is_number
from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import BOARD_CLASSES, RunDescriptor
from lightning_energy.pre.model import Estimate
from lightning_energy.pre.roofline import read_regime
from lightning_energy.pre.throughput import read_speed_source
from lightning_energy.report_fields import list_field, mapping_field, opt_float, opt_int

__all__ = ["PreSummary", "check_total_epochs"]


def check_total_epochs(total_epochs: object) -> None:
    """Raise :class:`~lightning_energy.errors.EstimationError` unless ``total_epochs`` is a number > 0."""
    if not is_number(total_epochs) or not math.isfinite(float(total_epochs)) or float(total_epochs) <= 0:
        raise EstimationError(f"total_epochs must be a finite number > 0, got {total_epochs!r}")


@dataclass(frozen=True)
class PreSummary:
    """The pre-training (PRE) estimate of the whole fit, all GPUs together, or why there is none: PRE's one
    type for it, from :func:`~lightning_energy.pre.estimate_for_fit` to the report's ``pre`` section.

    ``estimate`` is PRE's own per-epoch estimate on one GPU (:class:`~lightning_energy.pre.model.Estimate`,
    kept as PRE made it); ``total_j``, ``low_j`` and ``high_j`` are the whole run's (``total_epochs`` epochs
    on ``devices`` GPUs, :meth:`of_fit`), rescaled when the planned epochs become known (:meth:`scaled_to`).
    ``descriptor`` is the :class:`~lightning_energy.pre.descriptors.RunDescriptor` it was made from (``None``
    when unknown: a report that does not hold a readable one).
    """

    total_j: float | None = None
    low_j: float | None = None
    high_j: float | None = None
    total_epochs: float | None = None
    devices: int = 1
    upper_bound: bool = False
    estimate: Estimate | None = None
    descriptor: RunDescriptor | None = None
    skipped: str | None = None
    warnings: tuple[str, ...] = ()  # what the estimate had to leave out (an unusable run history, ...)

    @classmethod
    def of_fit(
        cls,
        descriptor: RunDescriptor,
        estimate: Estimate,
        total_epochs: float,
        devices: int = 1,
        *,
        upper_bound: bool = False,
        warnings: tuple[str, ...] = (),
    ) -> PreSummary:
        """``estimate`` (per epoch, one GPU) of the fit ``descriptor`` describes, for ``total_epochs`` epochs
        (may be fractional: a step budget that ends mid-epoch) on ``devices`` GPUs."""
        check_total_epochs(total_epochs)
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise EstimationError(f"devices must be an integer >= 1, got {devices!r}")
        low_j, high_j = estimate.total_interval_j(total_epochs)
        return cls(
            total_j=estimate.total_j(total_epochs) * devices,
            low_j=low_j * devices,
            high_j=high_j * devices,
            total_epochs=float(total_epochs),
            devices=devices,
            upper_bound=upper_bound,
            estimate=estimate,
            descriptor=descriptor,
            warnings=warnings,
        )

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
            "descriptor": {} if self.descriptor is None else self.descriptor.to_dict(),
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
            descriptor=_descriptor_from_json(mapping_field(data, "descriptor")),
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
    "board_class",
)


def _estimate_to_json(estimate: Estimate | None) -> dict[str, Any]:
    """The report's ``pre.estimate`` section: PRE's per-epoch estimate (all ``null`` when unknown)."""
    if estimate is None:
        return dict.fromkeys(_ESTIMATE_FIELDS)
    return {name: getattr(estimate, name) for name in _ESTIMATE_FIELDS}


def _estimate_from_json(data: Mapping[str, Any]) -> Estimate | None:
    """PRE's per-epoch estimate from the report; ``None`` when the section lacks one of its figures (a
    report written before ``log_sigma``/``rel_sigma`` were, or a damaged one)."""
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
        speed_source=read_speed_source(source),
        gpu_busy_share=opt_float(data, "gpu_busy_share"),
        regime=read_regime(regime),
        bandwidth_share=opt_float(data, "bandwidth_share"),
        traffic_inferred=None if traffic is None else bool(traffic),
        board_class=board if (board := data.get("board_class")) in BOARD_CLASSES else None,
    )


def _descriptor_from_json(data: Mapping[str, Any]) -> RunDescriptor | None:
    """The descriptor of the report's ``pre`` section; ``None`` when it is empty or not a readable one (a
    report written by another version, or a damaged one: the estimate's figures are kept)."""
    if not data:
        return None
    try:
        return RunDescriptor.from_dict(data)
    except (EstimationError, TypeError, ValueError, AttributeError):
        return None
