"""The trace file: what a :class:`~lightning_energy.meters.RecordingMeter` writes and a
:class:`~lightning_energy.meters.ReplayMeter` replays.

Format (JSON, version 1)::

    {
      "format": "lightning_energy.trace",
      "version": 1,
      "meta": {...},                      # free-form: workload name, descriptors, GPU, date, ...
      "labels": {"gpu0": "measured"},     # per component, as the meter reported them
      "hardware": {...},                  # as the meter reported it
      "readings": [                       # every read(), in order
        {"t_s": 12.5, "joules": {"gpu0": 1234.5}, "event": "epoch_start", "epoch": 0},
        {"t_s": 20.1, "joules": {"gpu0": 2345.6}, "event": null, "epoch": null},
        {"t_s": 30.0, "joules": null, "event": "epoch_end", "epoch": 0, "error": "NVML ..."}
      ],
      "power_samples": [[12.55, 250.1], ...]   # (t_s, watts summed over metered GPUs), may be empty
    }

``t_s`` is a monotonic clock in seconds (arbitrary origin, the same for readings and power samples);
``joules`` are cumulative per component; a failed read has ``"joules": null`` and an ``"error"``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_energy._io import atomic_write_text
from lightning_energy.errors import TraceFormatError
from lightning_energy.labels import MARK_EVENTS, MarkEvent

__all__ = [
    "BOUNDARY_EVENTS",
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "Trace",
    "TraceFormatError",
    "TraceReading",
    "load_trace",
    "trace_from_dict",
    "write_trace",
]

TRACE_FORMAT = "lightning_energy.trace"
TRACE_VERSION = 1
BOUNDARY_EVENTS = MARK_EVENTS  # the events a reading may carry: "epoch_start", "epoch_end", "window_end"


@dataclass
class TraceReading:
    t_s: float
    joules: dict[str, float] | None
    event: MarkEvent | None = None
    epoch: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t_s": self.t_s,
            "joules": self.joules,
            "event": self.event,
            "epoch": self.epoch,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class Trace:
    meta: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    readings: list[TraceReading] = field(default_factory=list)
    power_samples: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "meta": self.meta,
            "labels": self.labels,
            "hardware": self.hardware,
            "readings": [reading.to_dict() for reading in self.readings],
            "power_samples": [[t_s, power_w] for t_s, power_w in self.power_samples],
        }


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write atomically and durably (readers see the old file or the whole new one; the umask applies)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(trace.to_dict(), indent=1, allow_nan=False, default=str)
    return atomic_write_text(target, text + "\n")


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and validate a trace file. Raises FileNotFoundError or TraceFormatError naming the problem."""
    source = Path(path)
    text = source.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TraceFormatError(f"{source}: not valid JSON ({err})") from err
    return trace_from_dict(data, source=str(source))


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceFormatError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def trace_from_dict(data: object, *, source: str = "trace") -> Trace:
    """Validate a decoded trace (the JSON object) and build a :class:`Trace`."""
    if not isinstance(data, Mapping):
        raise TraceFormatError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != TRACE_FORMAT:
        raise TraceFormatError(f"{source}: 'format' must be {TRACE_FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != TRACE_VERSION:
        raise TraceFormatError(
            f"{source}: unsupported trace version {data.get('version')!r} (this reader knows {TRACE_VERSION})"
        )
    for key in ("meta", "labels", "hardware"):
        if not isinstance(data.get(key, {}), Mapping):
            raise TraceFormatError(f"{source}: '{key}' must be an object")
    raw_readings = data.get("readings")
    if not isinstance(raw_readings, list):
        raise TraceFormatError(f"{source}: 'readings' must be a list")
    readings = [_reading(raw, f"{source}: readings[{i}]") for i, raw in enumerate(raw_readings)]
    raw_samples = data.get("power_samples", [])
    if not isinstance(raw_samples, list):
        raise TraceFormatError(f"{source}: 'power_samples' must be a list of [t_s, watts]")
    samples: list[tuple[float, float]] = []
    for i, sample in enumerate(raw_samples):
        if not isinstance(sample, list) or len(sample) != 2:
            raise TraceFormatError(f"{source}: power_samples[{i}] must be [t_s, watts], got {sample!r}")
        where = f"{source}: power_samples[{i}]"
        samples.append((_number(sample[0], where), _number(sample[1], where)))
    return Trace(
        meta=dict(data.get("meta", {})),
        labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
        hardware=dict(data.get("hardware", {})),
        readings=readings,
        power_samples=samples,
    )


def _reading(raw: object, where: str) -> TraceReading:
    if not isinstance(raw, Mapping):
        raise TraceFormatError(f"{where} must be an object, got {raw!r}")
    t_s = _number(raw.get("t_s"), f"{where}.t_s")
    raw_event = raw.get("event")
    event = next((e for e in BOUNDARY_EVENTS if e == raw_event), None)
    if raw_event is not None and event is None:
        raise TraceFormatError(f"{where}.event must be null or one of {BOUNDARY_EVENTS}, got {raw_event!r}")
    epoch = raw.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)):
        raise TraceFormatError(f"{where}.epoch must be null or an int, got {epoch!r}")
    if (event is None) != (epoch is None):
        raise TraceFormatError(f"{where}: 'event' and 'epoch' must both be set or both be null")
    error = raw.get("error")
    raw_joules = raw.get("joules")
    joules: dict[str, float] | None
    if raw_joules is None:
        if error is None:
            raise TraceFormatError(f"{where}: 'joules' is null but no 'error' says why")
        joules = None
    elif isinstance(raw_joules, Mapping):
        joules = {str(k): _number(v, f"{where}.joules[{k!r}]") for k, v in raw_joules.items()}
    else:
        raise TraceFormatError(f"{where}.joules must be an object of component -> joules, got {raw_joules!r}")
    return TraceReading(
        t_s=t_s, joules=joules, event=event, epoch=epoch, error=None if error is None else str(error)
    )
