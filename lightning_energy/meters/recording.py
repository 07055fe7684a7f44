"""Wrap a meter and record all it reports into a trace file (see :mod:`lightning_energy.meters.trace`)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning_energy.meters.base import MARK_EVENTS, EnergyMeter, MarkEvent, MeterLabel, as_meter
from lightning_energy.meters.trace import Trace, TraceReading, write_trace

__all__ = ["RecordingMeter"]


class RecordingMeter(EnergyMeter):
    """A transparent wrapper: every ``read()`` (value or failure), ``mark()``, the power samples of the inner
    meter, its labels and hardware, plus ``meta``, go to a trace ``close()`` writes to ``path``.

    Args:
        inner: the meter to record (an :class:`EnergyMeter`, or any object with ``read()`` and ``close()``).
        path: where ``close()`` writes the JSON trace.
        meta: free-form JSON-serialisable metadata (workload name, descriptors, ...); also settable later
            through the ``meta`` attribute.
        clock: monotonic clock in seconds; must be the inner meter's clock for power samples to line up.
    """

    def __init__(
        self,
        inner: object,
        path: str | os.PathLike[str],
        *,
        meta: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            checked = as_meter(inner)
        except TypeError as err:
            raise TypeError(f"inner: {err}") from err
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path, got {path!r}")
        self.inner: EnergyMeter = checked
        self.path = Path(path)
        self.meta: dict[str, Any] = dict(meta or {})
        self._clock = clock
        self._readings: list[TraceReading] = []
        self._power_samples: list[tuple[float, float]] = []
        self._samples_given = 0  # how many of _power_samples power_samples() has returned
        self._pending: tuple[MarkEvent, int] | None = None
        self._closed = False

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        return dict(self.inner.labels)

    @property
    def hardware(self) -> Mapping[str, object]:
        return dict(self.inner.hardware)

    @property
    def problems(self) -> list[str]:
        return self.inner.problems

    def mark(self, event: MarkEvent, epoch: int) -> None:
        if event not in MARK_EVENTS:
            raise ValueError(f"event must be one of {MARK_EVENTS}, got {event!r}")
        self._pending = (event, int(epoch))
        self.inner.mark(event, epoch)

    def synchronize(self) -> None:
        self.inner.synchronize()

    def power_samples(self) -> list[tuple[float, float]]:
        """The inner meter's power samples since the previous call, drained (all stay in the trace)."""
        self._collect_power_samples()
        fresh = self._power_samples[self._samples_given :]
        self._samples_given = len(self._power_samples)
        return fresh

    def _collect_power_samples(self) -> None:
        self._power_samples.extend((float(t), float(w)) for t, w in self.inner.power_samples())

    def read(self) -> Mapping[str, float]:
        event, epoch = self._pending if self._pending is not None else (None, None)
        self._pending = None
        t_s = self._clock()
        try:
            joules = dict(self.inner.read())
        except Exception as err:
            self._readings.append(
                TraceReading(t_s=t_s, joules=None, event=event, epoch=epoch, error=repr(err))
            )
            raise
        finally:
            self._collect_power_samples()
        bad = sorted(name for name, value in joules.items() if not math.isfinite(value))
        if bad:
            error = f"non-finite reading for {', '.join(bad)}"
            self._readings.append(TraceReading(t_s=t_s, joules=None, event=event, epoch=epoch, error=error))
        else:
            self._readings.append(TraceReading(t_s=t_s, joules=joules, event=event, epoch=epoch))
        return joules

    def trace(self) -> Trace:
        """The trace recorded so far."""
        return Trace(
            meta=dict(self.meta),
            labels=dict(self.labels),
            hardware=dict(self.hardware),
            readings=list(self._readings),
            power_samples=list(self._power_samples),
        )

    def close(self) -> None:
        """Close the inner meter, then write the trace (even if closing the inner meter fails). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._collect_power_samples()
        finally:
            trace = self.trace()  # labels/hardware while the inner meter is still open
            try:
                self.inner.close()
            finally:
                write_trace(trace, self.path)
