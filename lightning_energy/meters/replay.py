"""Replay a recorded trace as a meter, to test the callback and projector on real GPU data offline."""

from __future__ import annotations

import os
from collections.abc import Mapping

from lightning_energy.errors import MeterError
from lightning_energy.labels import MARK_EVENTS, MarkEvent, MeterLabel, known_labels
from lightning_energy.meters.base import EnergyMeter
from lightning_energy.meters.trace import Trace, TraceReading, load_trace, trace_from_dict

__all__ = ["ReplayMeter"]


class ReplayMeter(EnergyMeter):
    """Returns the readings of a trace.

    * After ``mark(event, epoch)``, the next ``read()`` returns the recorded reading of that boundary (a
      :class:`MeterError` if the trace has none, or if that recorded read failed). A boundary recorded
      several times (``window_end`` marks within one epoch) is replayed in recorded order; once they are used
      up, the last one repeats.
    * Reads without a mark, once marks are in use, return the last boundary reading (intra-epoch reads such as
      the live bar's: no energy accrues between boundaries during a replay).
    * Without any mark, reads step through the recorded readings in order; past the end, MeterError.
    * ``power_samples()`` returns the recorded samples up to the time of the last reading replayed, each
      once (it drains, like every meter).

    Args:
        trace_or_path: a :class:`~lightning_energy.meters.trace.Trace`, the decoded JSON object, or a path.
    """

    def __init__(self, trace_or_path: Trace | Mapping[str, object] | str | os.PathLike[str]) -> None:
        if isinstance(trace_or_path, Trace):
            trace = trace_or_path
        elif isinstance(trace_or_path, Mapping):
            trace = trace_from_dict(trace_or_path)
        elif isinstance(trace_or_path, (str, os.PathLike)):
            trace = load_trace(trace_or_path)
        else:
            raise TypeError(
                f"trace_or_path must be a Trace, a dict or a path, got {type(trace_or_path).__name__}"
            )
        if not trace.readings:
            raise ValueError("trace_or_path: the trace has no readings to replay")
        self.trace = trace
        self._boundaries: dict[tuple[MarkEvent, int], list[TraceReading]] = {}
        for reading in trace.readings:
            if reading.event is not None and reading.epoch is not None:
                self._boundaries.setdefault((reading.event, reading.epoch), []).append(reading)
        self._boundary_uses: dict[tuple[MarkEvent, int], int] = {}
        self._next = 0
        self._pending: tuple[MarkEvent, int] | None = None
        self._marked = False
        self._last_boundary: TraceReading | None = None
        self._closed = False
        self._replayed_t_s: float | None = None  # time of the latest reading replayed
        self._samples_given = 0

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        """The trace's labels; one outside :data:`~lightning_energy.labels.LABELS` reads as ``"unknown"``."""
        return known_labels(self.trace.labels)[0]

    @property
    def hardware(self) -> Mapping[str, object]:
        return dict(self.trace.hardware)

    def mark(self, event: MarkEvent, epoch: int) -> None:
        if event not in MARK_EVENTS:
            raise ValueError(f"event must be one of {MARK_EVENTS}, got {event!r}")
        self._pending = (event, epoch)
        self._marked = True

    def read(self) -> Mapping[str, float]:
        if self._closed:
            raise MeterError("ReplayMeter.read() after close()")
        if self._pending is not None:
            key, self._pending = self._pending, None
            recorded = self._boundaries.get(key)
            if not recorded:
                raise MeterError(f"the trace has no reading for {key[0]} of epoch {key[1]}")
            used = self._boundary_uses.get(key, 0)
            self._boundary_uses[key] = used + 1
            reading = recorded[min(used, len(recorded) - 1)]
            self._last_boundary = reading
            return self._replay(reading)
        if self._marked:
            return self._replay(self._last_boundary or self.trace.readings[0])
        if self._next >= len(self.trace.readings):
            raise MeterError(f"the trace is exhausted after {len(self.trace.readings)} readings")
        reading = self.trace.readings[self._next]
        self._next += 1
        return self._replay(reading)

    def _replay(self, reading: TraceReading) -> dict[str, float]:
        if self._replayed_t_s is None or reading.t_s > self._replayed_t_s:
            self._replayed_t_s = reading.t_s
        return _joules(reading)

    def power_samples(self) -> list[tuple[float, float]]:
        """Recorded samples up to the latest replayed reading's time, not returned before (drained)."""
        if self._replayed_t_s is None:
            return []
        samples = self.trace.power_samples
        end = self._samples_given
        while end < len(samples) and samples[end][0] <= self._replayed_t_s:
            end += 1
        fresh, self._samples_given = list(samples[self._samples_given : end]), end
        return fresh

    def close(self) -> None:
        self._closed = True


def _joules(reading: TraceReading) -> dict[str, float]:
    if reading.joules is None:
        raise MeterError(f"the recorded read failed: {reading.error}")
    return dict(reading.joules)
