"""A STEP projection of the run's total energy: the result type and how it is made from the units seen.

:class:`Projection` is what :class:`~lightning_energy.step.projector.StepProjector` returns; :func:`project`
makes it from the projector's buffer of units (:class:`~lightning_energy.step.buffer.UnitBuffer`) and
settings: the level of the stable regime (:func:`~lightning_energy.step.analysis.analyse`), the remaining
units of the budget (epochs or seconds), the interval of the run's interval group, and a PRE prior combined
with the data before the run is stable; :func:`unmeasured` before any unit was measured. Pure functions:
the projector holds the state. See ``docs/step.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import numpy as np

from lightning_energy.step.analysis import (
    analyse,
    interval_group,
    is_stable,
    log_half_widths,
    noise_rel_sd,
    pattern_units,
)
from lightning_energy.step.buffer import UnitBuffer, future_val_work, main_series, val_ratio
from lightning_energy.step.hints import KnownChange
from lightning_energy.step.params import IntervalGroup, StepParams

# how a projection was made (see Projection)
ProjectionMethod = Literal["level", "unstable", "power", "power-unstable", "prior", "none"]
PROJECTION_METHODS: tuple[ProjectionMethod, ...] = get_args(ProjectionMethod)


@dataclass(frozen=True)
class Projection:
    """One projection of the run's total energy, made after ``epochs_seen`` units (epochs).

    ``total_j`` is the best estimate and ``[low_j, high_j]`` an interval meant to contain the final total
    with probability ``confidence``, the risk of a later regime change included. ``epoch_energy_j`` is the
    per-unit level used (training-only units when a validation schedule is known), ``power_w`` the mean
    power, ``method`` one of ``"level"`` (stable), ``"unstable"``, ``"prior"`` (PRE prior combined with the
    data), ``"power"`` / ``"power-unstable"`` (time budget) and ``"none"`` (nothing measured, no prior).
    ``reason`` says in one line why the projection is or is not stable. ``interval_group`` is the run's
    condition that set the interval's width (``"steady"``, ``"stable"``, ``"unstable"``, ``"ahead"``: a
    change announced by the Trainer still to come; empty when nothing was measured).
    """

    total_j: float
    low_j: float
    high_j: float
    stable: bool
    stable_since: int | None
    epoch_energy_j: float
    epochs_seen: int
    measured_j: float
    power_w: float
    regime_start: int
    remaining_epochs: float | None
    remaining_s: float | None
    method: ProjectionMethod
    confidence: float
    reason: str = ""
    interval_group: IntervalGroup | Literal[""] = ""

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able dict."""
        return asdict(self)


def project(
    buffer: UnitBuffer,
    total_epochs: float | None,
    total_seconds: float | None,
    *,
    params: StepParams,
    confidence: float,
    z: float,
    val_every_n_epochs: int | None,
    known_changes: tuple[KnownChange, ...],
    was_stable: bool,
    prior_j: float | None,
    prior_rel_sigma: float | None,
    unit_name: str,
) -> Projection:
    """The projection from the units in ``buffer`` for a budget of ``total_epochs`` or ``total_seconds``.

    ``z`` is the normal quantile of ``confidence``; ``was_stable``: the previous projection was stable
    (hysteresis); ``prior_j`` and ``prior_rel_sigma``: a PRE estimate of the energy per unit and its
    relative standard deviation (``None``: none); the others as :class:`StepProjector`'s.
    """
    power_mode = total_seconds is not None
    values, train_s, indices = main_series(buffer, val_every_n_epochs, params.warmup_units, power_mode)
    seen = buffer.units_seen
    if values.size == 0:
        return unmeasured(
            buffer,
            total_epochs,
            total_seconds,
            confidence=confidence,
            z=z,
            prior_j=prior_j,
            prior_rel_sigma=prior_rel_sigma,
            unit_name=unit_name,
        )
    past = [c for c in known_changes if c.epoch <= int(indices[-1])]
    if past:  # re-level: only the units since the latest announced change make the level
        keep = indices >= past[-1].epoch
        values, train_s, indices = values[keep], train_s[keep], indices[keep]
    info = analyse(values, params)
    since = int(indices[min(info.start, values.size - 1)])
    mean_unit_s = buffer.elapsed_s / max(buffer.work_seen, 1e-12)
    if power_mode:
        assert total_seconds is not None
        left_s = max(float(total_seconds) - buffer.elapsed_s, 0.0)
        remaining_s: float | None = left_s
        remaining_epochs: float | None = None
        remaining_units = left_s / mean_unit_s if mean_unit_s > 0 else 0.0
        remaining_fraction = left_s / float(total_seconds)
        total_units = None
    else:
        assert total_epochs is not None
        remaining_s = None
        remaining_epochs = max(float(total_epochs) - buffer.work_seen, 0.0)
        remaining_units = remaining_epochs
        remaining_fraction = remaining_epochs / float(total_epochs)
        total_units = float(total_epochs)
    stable, reason = is_stable(
        info,
        seen=seen,
        remaining_units=remaining_units,
        total_units=total_units,
        was_stable=was_stable,
        regime_first_unit=since,
        params=params,
        unit=unit_name,
    )
    ahead = [c for c in known_changes if seen <= c.epoch < seen + remaining_units]
    if stable and ahead and total_units is not None:
        stable, reason = (
            False,
            f"not stable: {ahead[0].kind} announced at {unit_name} {ahead[0].epoch}",
        )
    group = interval_group(
        info, stable, change_ahead=bool(ahead) and total_units is not None, regime_first_unit=since,
        params=params,
    )  # fmt: skip
    level = info.level if stable else info.recent
    if power_mode:
        assert remaining_s is not None
        power_w = level
        remaining_j = level * remaining_s
        skipped_j = level * buffer.skipped_s
        epoch_energy_j = level * mean_unit_s
    else:
        ratio_or_none = val_ratio(buffer, val_every_n_epochs, params.warmup_units)
        ratio = 1.0 if ratio_or_none is None else ratio_or_none
        future_val = future_val_work(seen, remaining_units, val_every_n_epochs)
        future_units = pattern_units(info.pattern, remaining_units) if stable else remaining_units
        remaining_j = level * (future_units + (ratio - 1.0) * future_val)
        skipped_j = level * (buffer.skipped_work + ratio * buffer.skipped_val_work)
        epoch_energy_j = level
        mean_train_s = float(np.mean(train_s)) if train_s.size else 0.0
        power_w = level / mean_train_s if mean_train_s > 0 else 0.0
    total_j = buffer.measured_j + skipped_j + remaining_j
    noise_sd_j = noise_rel_sd(info, remaining_units, stable) * remaining_j
    method: ProjectionMethod = (
        ("power" if stable else "power-unstable") if power_mode else ("level" if stable else "unstable")
    )
    if not stable and prior_j is not None and prior_rel_sigma is not None:
        # the data's side: the standard deviation of a normal whose interval is as wide as the data's own
        data_low_j, data_high_j = interval_bounds_j(
            total_j, noise_sd_j, remaining_fraction, group, confidence, params
        )
        data_sd_j = (data_high_j - data_low_j) / (2.0 * z)
        prior_remaining_j = prior_j * remaining_units
        prior_sd_j = prior_rel_sigma * prior_remaining_j
        if data_sd_j > 0 and prior_sd_j > 0:
            w_data, w_prior = 1.0 / data_sd_j**2, 1.0 / prior_sd_j**2
            remaining_j = (w_data * remaining_j + w_prior * prior_remaining_j) / (w_data + w_prior)
            total_j = buffer.measured_j + skipped_j + remaining_j
            half = z * math.sqrt(1.0 / (w_data + w_prior))
            low_j, high_j = total_j - half, total_j + half
            method = "prior"
    if method != "prior":
        low_j, high_j = interval_bounds_j(total_j, noise_sd_j, remaining_fraction, group, confidence, params)
    skip_half = z * params.skipped_rel_sigma * skipped_j
    low_j, high_j = low_j - skip_half, high_j + skip_half
    if info.pending and level > 0:  # a possible new regime not yet confirmed: cover its projection too
        alt_j = total_j + (float(values[-1]) / level - 1.0) * (remaining_j + skipped_j)
        low_j, high_j = min(low_j, alt_j), max(high_j, alt_j)
    return Projection(
        total_j=total_j,
        low_j=max(low_j, buffer.measured_j),
        high_j=max(high_j, total_j),
        stable=stable,
        stable_since=since if stable else None,
        epoch_energy_j=epoch_energy_j,
        epochs_seen=seen,
        measured_j=buffer.measured_j,
        power_w=power_w,
        regime_start=since,
        remaining_epochs=remaining_epochs,
        remaining_s=remaining_s,
        method=method,
        confidence=confidence,
        reason=reason,
        interval_group=group,
    )


def interval_bounds_j(
    total_j: float,
    noise_sd_j: float,
    remaining_fraction: float,
    group: IntervalGroup,
    confidence: float,
    params: StepParams,
) -> tuple[float, float]:
    """The interval ``[low_j, high_j]`` around ``total_j`` (``noise_sd_j``: the noise's standard deviation
    on the remaining energy; ``remaining_fraction``: the share of the budget left; ``group``: the run's
    interval group); ``(0, 0)`` for a total of 0 or less."""
    if total_j <= 0:
        return 0.0, 0.0
    low, high = log_half_widths(noise_sd_j / total_j, remaining_fraction, group, confidence, params)
    return total_j * math.exp(-low), total_j * math.exp(high)


def unmeasured(
    buffer: UnitBuffer,
    total_epochs: float | None,
    total_seconds: float | None,
    *,
    confidence: float,
    z: float,
    prior_j: float | None,
    prior_rel_sigma: float | None,
    unit_name: str,
) -> Projection:
    """Nothing measured yet (only skipped units): the prior if any, else an unbounded interval."""
    seen = buffer.units_seen
    if total_epochs is not None:
        units = float(total_epochs)
        remaining_epochs: float | None = max(units - buffer.work_seen, 0.0)
        remaining_s = None
    else:
        assert total_seconds is not None
        remaining_s = max(float(total_seconds) - buffer.elapsed_s, 0.0)
        units = float(total_seconds) / max(buffer.elapsed_s / max(buffer.work_seen, 1e-12), 1e-9)
        remaining_epochs = None
    reason = f"not stable: no {unit_name} measured yet"
    if prior_j is None or prior_rel_sigma is None:
        return Projection(
            total_j=math.nan, low_j=0.0, high_j=math.inf, stable=False, stable_since=None,
            epoch_energy_j=math.nan, epochs_seen=seen, measured_j=0.0, power_w=math.nan, regime_start=0,
            remaining_epochs=remaining_epochs, remaining_s=remaining_s, method="none",
            confidence=confidence, reason=reason,
        )  # fmt: skip
    total = prior_j * units
    half = z * prior_rel_sigma * total
    unit_s = buffer.elapsed_s / max(buffer.work_seen, 1e-12)
    return Projection(
        total_j=total, low_j=max(total - half, 0.0), high_j=total + half, stable=False, stable_since=None,
        epoch_energy_j=prior_j, epochs_seen=seen, measured_j=0.0,
        power_w=prior_j / max(unit_s, 1e-9), regime_start=0,
        remaining_epochs=remaining_epochs, remaining_s=remaining_s, method="prior",
        confidence=confidence, reason=reason,
    )  # fmt: skip
