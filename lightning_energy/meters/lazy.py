"""A meter opened in the background, so that opening it costs the fit's set-up nothing.

:class:`BackgroundMeter` starts a daemon thread that imports and constructs the real meter (CodeCarbon's
host meter takes tens of milliseconds to import and set up). Until it is open:

* the **first** ``read()`` returns zero joules for each component at once -- the baseline: the meter's count
  starts then, and the real meter, once open, counts from that moment (:meth:`Countable.count_from`);
* any **later** ``read()``, ``hardware``, ``close()`` and, once a reading was taken, ``labels`` wait for it
  to open; ``read_nowait()`` does not: it reads no components and says that they are still opening (the
  callback reads the start of the first epoch so, and settles that reading by constant power at its next
  one: :func:`lightning_energy.metering.settled`).

So no energy is lost: the fit's first reading is the start of the count, as with a meter opened in the
hooks. A meter that fails to open is listed in ``problems``; then every later reading either raises
:class:`MeterError` with the reason (the epochs are missing, never a silent zero) or, with
``drop_on_failure`` (inside a composite that meters the GPUs), reads no components after a warning, so that
the other meters go on as if this one had never been asked for.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lightning_energy.errors import MeterError
from lightning_energy.meters.base import UNKNOWN, EnergyMeter, MeterLabel

__all__ = ["BackgroundMeter", "Countable", "LazyHostMeter"]

# how long a caller waits for the meter to open before giving up on it
OPEN_TIMEOUT_S = 120.0


class Countable(Protocol):
    """A meter whose first reading can be made to cover the time since an earlier moment."""

    def read(self) -> Mapping[str, float]: ...

    def count_from(self, start_s: float) -> None: ...

    @property
    def labels(self) -> Mapping[str, MeterLabel]: ...

    @property
    def hardware(self) -> Mapping[str, object]: ...

    def close(self) -> None: ...


class BackgroundMeter(EnergyMeter):
    """Opens ``open()`` in a daemon thread; reads ``components`` as zero joules until the first reading.

    Args:
        open: constructs the real meter (called once, in the background thread).
        components: the components the real meter reads (the zero baseline's keys).
        name: what the meter is, for messages (``"host CPU/RAM"``).
        clock: the real meter's monotonic clock, in seconds.
        drop_on_failure: when the meter cannot be opened, read no components (after a warning) instead of
            raising.
    """

    def __init__(
        self,
        open: Callable[[], Countable],
        components: Sequence[str],
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        drop_on_failure: bool = False,
    ) -> None:
        self._open = open
        self._drop_on_failure = drop_on_failure
        self._warned = False
        self._components = tuple(components)
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._meter: Countable | None = None
        self._problem: str | None = None
        self._baseline_s: float | None = None  # when the zero baseline was read
        self._thread = threading.Thread(target=self._run, name=f"lightning_energy {name} meter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        time.sleep(0)  # hand the interpreter back to the thread that started this one (its hook returns now)
        try:
            meter = self._open()
        except Exception as exc:  # any failure to open: every later reading says why
            with self._lock:
                self._problem = f"{self._name} meter could not be opened: {exc}"
            return
        with self._lock:
            if self._baseline_s is not None:
                meter.count_from(self._baseline_s)
            self._meter = meter

    def _opened(self) -> Countable:
        """The real meter, waiting for it to open; raises MeterError when it could not be opened."""
        self._thread.join(OPEN_TIMEOUT_S)
        with self._lock:
            if self._meter is not None:
                return self._meter
            problem = self._problem or f"{self._name} meter did not open within {OPEN_TIMEOUT_S:g} s"
        raise MeterError(problem)

    @property
    def ready(self) -> bool:
        """Whether the real meter is open."""
        with self._lock:
            return self._meter is not None

    def read(self) -> Mapping[str, float]:
        with self._lock:
            if self._meter is None and self._problem is None and self._baseline_s is None:
                self._baseline_s = self._clock()
                return dict.fromkeys(self._components, 0.0)
        try:
            meter = self._opened()
        except MeterError as exc:
            if not self._drop_on_failure:
                raise
            if not self._warned:
                self._warned = True
                warnings.warn(f"{self._name} energy is not metered: {exc}", stacklevel=2)
            return {}
        return meter.read()

    def read_nowait(self) -> tuple[Mapping[str, float], frozenset[str]]:
        """No components and all of them opening while the real meter opens after its baseline was read;
        otherwise :meth:`read` (the baseline itself, or the open meter)."""
        with self._lock:
            if self._meter is None and self._problem is None and self._baseline_s is not None:
                return {}, frozenset(self._components)
        return self.read(), frozenset()

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        """The real meter's labels; before the first reading, while it is not open, its components
        labelled ``"unknown"`` without waiting (a composite meter checks the components when it is built)."""
        with self._lock:
            if self._meter is None and self._problem is None and self._baseline_s is None:
                return dict.fromkeys(self._components, UNKNOWN)
        try:
            return self._opened().labels
        except MeterError:
            return {}

    @property
    def hardware(self) -> Mapping[str, object]:
        try:
            return self._opened().hardware
        except MeterError:
            return {}

    @property
    def problems(self) -> list[str]:
        with self._lock:
            return [] if self._problem is None else [self._problem]

    def close(self) -> None:
        """Close the real meter once it is open (waits for it); idempotent."""
        try:
            meter = self._opened()
        except MeterError:
            return
        meter.close()


class LazyHostMeter(BackgroundMeter):
    """:class:`~lightning_energy.meters.host.HostMeter` (``cpu``, ``ram``) opened in the background.

    Args:
        drop_on_failure: see :class:`BackgroundMeter` (``auto_meter`` sets it when GPUs are metered too).
        clock: monotonic clock in seconds.
        host_args: :class:`~lightning_energy.meters.host.HostMeter`'s other keywords.
    """

    def __init__(
        self, *, drop_on_failure: bool = False, clock: Callable[[], float] = time.monotonic, **host_args: Any
    ) -> None:
        def open_host() -> Countable:
            from lightning_energy.meters.host import HostMeter

            return HostMeter(clock=clock, **host_args)

        super().__init__(
            open_host, ("cpu", "ram"), name="Host CPU/RAM", clock=clock, drop_on_failure=drop_on_failure
        )
