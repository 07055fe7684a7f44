"""The callback's meter for one fit: opened (never crashing the fit), read with a timestamp, its optional
hooks and properties guarded so that a user's meter failing in them only warns, and closed if owned.

No torch and no Lightning: the callback passes in what it knows of the trainer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning_energy.hardware import Hardware
from lightning_energy.labels import MarkEvent, MeterLabel, known_labels
from lightning_energy.metering import Reading, take_reading, take_reading_nowait
from lightning_energy.meters.base import EnergyMeter, NullMeter, as_meter

Warn = Callable[[str, str], None]  # (cause, message): warn once per cause


class MeterSession:
    """One fit's meter. ``owned``: opened here, so closed here (a user's meter is never closed)."""

    def __init__(
        self, meter: EnergyMeter, warn: Warn, *, owned: bool = False, nothing_to_meter: bool = False
    ) -> None:
        self.meter = meter
        self.owned = owned
        self.nothing_to_meter = nothing_to_meter  # by design: reads no component, adds 0 J (never missing)
        self._warn = warn

    @staticmethod
    def user_meter(meter: Any) -> EnergyMeter | None:
        """``EnergyCallback``'s ``meter`` argument: ``None`` for ``"auto"``, else the meter (``TypeError``
        naming ``meter`` for a class or a non-meter, ``ValueError`` for another string)."""
        if isinstance(meter, str):
            if meter != "auto":
                raise ValueError(f"meter must be 'auto' or a meter instance, got {meter!r}")
            return None
        return as_meter(meter)

    @classmethod
    def closed(cls, reason: str, warn: Warn) -> MeterSession:
        return cls(NullMeter(reason), warn)

    @classmethod
    def open(
        cls, user_meter: EnergyMeter | None, cuda_indices: Sequence[int], *, meter_host: bool, warn: Warn
    ) -> MeterSession:
        """The user's meter, else the automatic one; any failure to open hardware means "no meter".

        A rank with no CUDA device that is not asked to meter the host (a CPU DDP rank other than its node's
        local rank 0) has nothing to meter *by design*: it contributes 0 J to every sum over ranks, unlike a
        rank whose meter failed, which makes the epoch missing."""
        if user_meter is not None:
            return cls(user_meter, warn)
        if not cuda_indices and not meter_host:
            reason = "nothing to meter on this rank: no CUDA device, and the host is metered by local rank 0"
            return cls(NullMeter(reason), warn, owned=True, nothing_to_meter=True)
        from lightning_energy.meters import auto_meter

        try:
            meter = auto_meter(list(cuda_indices), meter_host=meter_host, lazy_host=True)
            return cls(meter, warn, owned=True)
        except Exception as exc:  # any failure to open hardware means "no meter", never a crashed fit
            reason = f"no energy meter available: {exc}"
            warn("no-meter", f"{reason}. Epoch energy will be reported as missing.")
            return cls(NullMeter(reason), warn, owned=True)

    def read(self) -> Reading:
        """Read now; a failure is a missing reading, never an exception (nothing to meter: no component)."""
        if self.nothing_to_meter:
            return Reading(time.monotonic(), {})
        return take_reading(self.meter.read, time.monotonic())

    def read_nowait(self) -> Reading:
        """:meth:`read` without waiting for a meter still opening in the background: its components are
        the reading's ``pending`` ones (the metering core settles them at the next reading)."""
        if self.nothing_to_meter:
            return Reading(time.monotonic(), {})
        return take_reading_nowait(self.meter.read_nowait, time.monotonic())

    def mark(self, event: MarkEvent, epoch: int, *, synchronize: bool = False) -> None:
        """Tell the meter about a boundary (and let it synchronise first); a failure only warns."""
        try:
            if synchronize:
                self.meter.synchronize()
            self.meter.mark(event, epoch)
        except Exception as exc:  # optional hooks of a user's meter: warn once, keep metering
            what = f"synchronize()/mark({event!r})" if synchronize else f"mark({event!r})"
            self._warn(f"hook-{event}", f"the meter's {what} failed: {exc}")

    def _extra(self, name: str) -> dict[str, Any]:
        """The meter's ``labels`` or ``hardware``, or ``{}`` when a user's meter raises reading it."""
        try:
            value = getattr(self.meter, name)
            return dict(value) if isinstance(value, Mapping) else {}
        except Exception as exc:  # a user's property may raise anything: the report must still be written
            self._warn(f"meter-{name}", f"the meter's {name} could not be read: {exc}")
            return {}

    def labels(self) -> dict[str, MeterLabel]:
        """The meter's label per component; one outside :data:`~lightning_energy.labels.LABELS` reads as
        ``"unknown"`` with one warning, and a user's meter that raises reading them gives ``{}``."""
        labels, problems = known_labels(self._extra("labels"))
        for problem in problems:
            self._warn("meter-labels-vocabulary", f"the meter's {problem}")
        return labels

    def hardware(self) -> Hardware:
        """What the meter knows about its devices (empty when a user's meter raises reading it)."""
        return Hardware.from_json(self._extra("hardware"))

    def close(self) -> None:
        """Close the meter if this session opened it; a failure only warns."""
        if not self.owned:
            return
        try:
            self.meter.close()
        except Exception as exc:  # a meter's own failure on close must not hide the run's outcome
            self._warn("close", f"closing the energy meter failed: {exc}")
        self.meter = NullMeter("the meter was closed at the end of the fit")
