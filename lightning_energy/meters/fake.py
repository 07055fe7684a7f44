"""A scripted meter for tests and demos: constant powers on a virtual clock, or an explicit list of readings,
with faults injected on chosen reads."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from lightning_energy.errors import MeterError
from lightning_energy.meters.base import LABELS, MEASURED, EnergyMeter, MarkEvent, MeterLabel

__all__ = ["FakeMeter"]


class FakeMeter(EnergyMeter):
    """Scripted cumulative joules.

    Either ``powers_w`` (constant watts per component; energy = power x virtual time) or ``readings`` (the
    cumulative joules returned by read 0, 1, 2, ...; the last one repeats once the script is exhausted).

    Args:
        powers_w: e.g. ``{"gpu0": 100.0, "cpu": 10.0}``.
        readings: explicit cumulative readings, one mapping per read.
        seconds_per_read: virtual seconds that pass at each ``read()`` (before it reads); 0 to move the clock
            only with :meth:`advance`.
        labels: per component; default ``"measured"`` for all.
        hardware: returned as is by the ``hardware`` attribute.
        raise_on: read numbers (0-based) that raise :class:`MeterError` (time still passes).
        nan_on: read numbers that return NaN for every component.
        reset_on: read numbers at which every counter restarts from zero (like a driver reload): that read and
            the following ones are lower than before.
    """

    def __init__(
        self,
        powers_w: Mapping[str, float] | None = None,
        *,
        readings: Sequence[Mapping[str, float]] | None = None,
        seconds_per_read: float = 1.0,
        labels: Mapping[str, MeterLabel] | None = None,
        hardware: Mapping[str, object] | None = None,
        raise_on: Iterable[int] = (),
        nan_on: Iterable[int] = (),
        reset_on: Iterable[int] = (),
    ) -> None:
        if (powers_w is None) == (readings is None):
            raise ValueError(
                "FakeMeter needs exactly one of powers_w (constant watts) or readings (a script)"
            )
        if powers_w is not None:
            for name, power_w in powers_w.items():
                if isinstance(power_w, bool) or not isinstance(power_w, (int, float)) or power_w < 0:
                    raise ValueError(
                        f"powers_w[{name!r}] must be a non-negative number of watts, got {power_w!r}"
                    )
        if readings is not None and not readings:
            raise ValueError("readings must hold at least one reading, got an empty sequence")
        if (
            isinstance(seconds_per_read, bool)
            or not isinstance(seconds_per_read, (int, float))
            or seconds_per_read < 0
        ):
            raise ValueError(
                f"seconds_per_read must be a non-negative number of seconds, got {seconds_per_read!r}"
            )
        components = (
            list(powers_w) if powers_w is not None else sorted({c for r in readings or () for c in r})
        )
        if labels is not None:
            bad = {c: v for c, v in labels.items() if v not in LABELS}
            if bad:
                raise ValueError(f"labels must be one of {LABELS}, got {bad!r}")
        self._powers_w = dict(powers_w) if powers_w is not None else None
        self._script = [dict(r) for r in readings] if readings is not None else None
        self._seconds_per_read = float(seconds_per_read)
        self._labels: dict[str, MeterLabel] = (
            dict(labels) if labels is not None else dict.fromkeys(components, MEASURED)
        )
        self._hardware = dict(hardware) if hardware is not None else {"fake": True}
        self._raise_on = set(raise_on)
        self._nan_on = set(nan_on)
        self._reset_on = set(reset_on)
        self._origin: dict[str, float] = {}
        self.time_s = 0.0
        self.reads = 0
        self.closed = False
        self.marks: list[tuple[str, int]] = []
        self.synchronize_calls = 0

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        return dict(self._labels)

    @property
    def hardware(self) -> Mapping[str, object]:
        return dict(self._hardware)

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self.time_s += seconds

    def _true_reading(self, index: int) -> dict[str, float]:
        if self._powers_w is not None:
            return {name: power_w * self.time_s for name, power_w in self._powers_w.items()}
        assert self._script is not None
        return dict(self._script[min(index, len(self._script) - 1)])

    def read(self) -> Mapping[str, float]:
        if self.closed:
            raise MeterError("FakeMeter.read() after close()")
        index = self.reads
        self.reads += 1
        self.time_s += self._seconds_per_read
        truth = self._true_reading(index)
        if index in self._reset_on:
            self._origin = dict(truth)
        if index in self._raise_on:
            raise MeterError(f"FakeMeter: injected fault on read {index}")
        if index in self._nan_on:
            return {name: math.nan for name in truth}
        return {name: value - self._origin.get(name, 0.0) for name, value in truth.items()}

    def mark(self, event: MarkEvent, epoch: int) -> None:
        self.marks.append((event, epoch))

    def synchronize(self) -> None:
        self.synchronize_calls += 1

    def close(self) -> None:
        self.closed = True
