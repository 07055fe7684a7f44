"""The unit buffer of a STEP projector: the last units, running totals, and what is read from them.

:class:`UnitBuffer` is the only mutable part (``push``); the functions below are pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from lightning_energy.errors import ProjectionError

_VAL_RATIO_UNITS = 3  # validation units (and training units before each) behind the validation ratio


def check_number(name: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a finite float ``>= 0`` (``> 0`` if ``positive``), else ``ProjectionError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ProjectionError(f"{name} must be a finite number >= 0, got {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an int beyond any float
        result = math.inf
    if not math.isfinite(result) or result < 0 or (positive and result == 0):
        allowed = "> 0" if positive else ">= 0"
        raise ProjectionError(f"{name} must be a finite number {allowed}, got {value!r}")
    return result


def is_val_unit(index: int, every: int | None) -> bool:
    """Whether unit ``index`` (0-based) validates under ``check_val_every_n_epoch = every``."""
    return every is not None and every > 1 and (index + 1) % every == 0


@dataclass
class UnitBuffer:
    """The last ``keep`` units (NaN energy: skipped) and running totals of everything seen."""

    keep: int
    energy_j: list[float] = field(default_factory=list)
    duration_s: list[float] = field(default_factory=list)
    work: list[float] = field(default_factory=list)
    first_index: int = 0  # unit index of ``energy_j[0]``
    work_seen: float = 0.0
    measured_j: float = 0.0
    elapsed_s: float = 0.0
    skipped_work: float = 0.0  # skipped training units
    skipped_val_work: float = 0.0  # skipped validation units
    skipped_s: float = 0.0

    @property
    def units_seen(self) -> int:
        return self.first_index + len(self.energy_j)

    def push(self, energy_j: float, duration_s: float, work: float, is_val: bool) -> None:
        """Add one unit (``energy_j`` NaN: skipped), forgetting the oldest beyond ``keep``."""
        self.energy_j.append(energy_j)
        self.duration_s.append(duration_s)
        self.work.append(work)
        self.work_seen += work
        self.elapsed_s += duration_s
        if math.isnan(energy_j):
            self.skipped_s += duration_s
            if is_val:
                self.skipped_val_work += work
            else:
                self.skipped_work += work
        else:
            self.measured_j += energy_j
        extra = len(self.energy_j) - self.keep
        if extra > 0:
            del self.energy_j[:extra], self.duration_s[:extra], self.work[:extra]
            self.first_index += extra

    def to_state(self) -> dict[str, object]:
        return {
            "energy_j": [None if math.isnan(e) else e for e in self.energy_j],
            "duration_s": list(self.duration_s),
            "work": list(self.work),
            "first_index": self.first_index,
            "work_seen": self.work_seen,
            "measured_j": self.measured_j,
            "elapsed_s": self.elapsed_s,
            "skipped_work": self.skipped_work,
            "skipped_val_work": self.skipped_val_work,
            "skipped_s": self.skipped_s,
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, object], version: int, keep: int, is_val: Callable[[int], bool]
    ) -> UnitBuffer:
        """Read :meth:`to_state` output (version 2) or a version-1 series (replayed); ``ProjectionError``."""
        energy = _number_list(state, "energy_j", allow_none=True)
        duration = _number_list(state, "duration_s")
        work = _number_list(state, "work") if version == 2 else [1.0] * len(energy)
        if not len(energy) == len(duration) == len(work):
            raise ProjectionError(
                "state energy_j, duration_s and work must have the same length, got "
                f"{len(energy)}, {len(duration)} and {len(work)}"
            )
        buffer = cls(keep)
        if version == 1:  # the whole series: replay it through the bounded buffer
            for i, (e, d) in enumerate(zip(energy, duration, strict=True)):
                buffer.push(e, d, 1.0, is_val(i))
            return buffer
        buffer.energy_j, buffer.duration_s, buffer.work = energy[-keep:], duration[-keep:], work[-keep:]
        buffer.first_index = _count(state, "first_index") + max(len(energy) - keep, 0)
        buffer.work_seen = _number(state, "work_seen")
        buffer.measured_j = _number(state, "measured_j")
        buffer.elapsed_s = _number(state, "elapsed_s")
        buffer.skipped_work = _number(state, "skipped_work")
        buffer.skipped_val_work = _number(state, "skipped_val_work")
        buffer.skipped_s = _number(state, "skipped_s")
        return buffer


def main_series(
    buffer: UnitBuffer, every: int | None, warmup_units: int, power_mode: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-unit values the level is read from (J per unit of work, or W with a time budget), their
    durations per unit of work and their unit indices: measured units, without validation units when the
    schedule is known and without the warm-up units (each only when something is left)."""
    energy = np.asarray(buffer.energy_j, dtype=np.float64)
    duration = np.asarray(buffer.duration_s, dtype=np.float64)
    work = np.asarray(buffer.work, dtype=np.float64)
    index = np.arange(buffer.first_index, buffer.first_index + energy.size)
    usable = ~np.isnan(energy)
    if power_mode:
        usable &= duration > 0
    else:
        is_val = np.array([is_val_unit(int(i), every) for i in index], dtype=bool)
        if (usable & ~is_val).any():
            usable &= ~is_val
    warm = index >= warmup_units
    if (usable & warm).any():
        usable &= warm
    values = energy[usable] / (duration[usable] if power_mode else work[usable])
    return values, duration[usable] / work[usable], index[usable]


def val_ratio(buffer: UnitBuffer, every: int | None, warmup_units: int) -> float | None:
    """Median ratio of the last validation units to the mean of the (up to 3) training units before each."""
    first = buffer.first_index
    energy = [e / w for e, w in zip(buffer.energy_j, buffer.work, strict=True)]
    ratios: list[float] = []
    for pos in range(len(energy) - 1, -1, -1):
        if not is_val_unit(first + pos, every) or math.isnan(energy[pos]):
            continue
        before = [
            energy[q]
            for q in range(pos - 1, -1, -1)
            if not is_val_unit(first + q, every) and not math.isnan(energy[q]) and first + q >= warmup_units
        ][:3]
        if before and np.mean(before) > 0:
            ratios.append(float(energy[pos] / np.mean(before)))
        if len(ratios) == _VAL_RATIO_UNITS:
            break
    return float(np.median(ratios)) if ratios else None


def future_val_work(start_index: int, remaining: float, every: int | None) -> float:
    """Work of the validation units among the next ``remaining`` units of work from ``start_index``."""
    if every is None or every <= 1 or remaining <= 0:
        return 0.0
    whole = math.floor(remaining)
    count = float((start_index + whole) // every - start_index // every)
    if (start_index + whole + 1) % every == 0:
        count += remaining - whole
    return count


def _number_list(state: Mapping[str, object], key: str, *, allow_none: bool = False) -> list[float]:
    raw = state.get(key, [])
    if not isinstance(raw, (list, tuple)):
        raise ProjectionError(f"state {key} must be a list, got {type(raw).__name__}")
    return [math.nan if v is None and allow_none else check_number(f"state {key}", v) for v in raw]


def _number(state: Mapping[str, object], key: str) -> float:
    if key not in state:
        raise ProjectionError(f"state misses {key}")
    return check_number(f"state {key}", state[key])


def _count(state: Mapping[str, object], key: str) -> int:
    value = state.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProjectionError(f"state {key} must be an int >= 0, got {value!r}")
    return value
