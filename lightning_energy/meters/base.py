"""The meter contract: :class:`EnergyMeter`, :class:`NullMeter` and :func:`as_meter`.

An energy meter reports *cumulative* joules per component since an arbitrary origin. Components are short
names such as ``"gpu0"``, ``"cpu"`` and ``"ram"``. The callback only ever takes differences of two readings,
so the origin does not matter. Like an httpx transport, a meter implements one abstract method, ``read()``;
everything else has a no-op default on the base class, so callers use the extras without probing:

* ``close()`` -- release threads and handles. Idempotent.
* ``labels`` -- per component, how the number is obtained: :data:`MEASURED` (a hardware energy counter or
  RAPL), :data:`SAMPLED` (power sampled and integrated by us), :data:`ESTIMATED` (a model, e.g. load x TDP).
  Components without a label count as :data:`UNKNOWN`, and so does a label outside :data:`LABELS` (a user's
  meter is told once, in ``problems`` and the fit's warnings). Typed :data:`MeterLabel`. Default ``{}``.
* ``hardware`` -- what is metered (GPU names, driver version, CPU model, ...) for the report. Default ``{}``.
* ``mark(event, epoch)`` -- told right before a boundary ``read()``; ``event`` is one of
  :data:`MARK_EVENTS` (``"epoch_start"``, ``"epoch_end"``, ``"window_end"``; typed :data:`MarkEvent`).
  Recording and replay meters use it to label readings. Default: nothing.
* ``synchronize()`` -- flush work *specific to the meter* that is still pending, so the next ``read()``
  covers everything up to now. Called before boundary reads, never per step. Default: nothing.
* ``read_nowait()`` -- ``(joules, opening)``: the components that can be read without waiting, and the
  names of those whose meter is still opening in the background (a later ``read()`` waits for them).
  Default: ``(read(), frozenset())``.
* ``power_samples()`` -- see below. Default ``[]``.
* ``problems`` -- what went wrong without stopping the meter (e.g. a duck-typed meter's raising ``labels``
  property), once each, for the report. Default ``[]``.

Who synchronises the device
    The **caller** does. Before a boundary read the callback calls ``torch.cuda.synchronize(device)`` for its
    own training device, then ``meter.synchronize()``, then ``meter.read()``. A meter's ``synchronize()``
    therefore must be cheap and idempotent; it never has to wait for the training device itself.
    :class:`~lightning_energy.meters.NvmlMeter` built with ``synchronize=True`` (its default, for standalone
    use without the callback) additionally synchronises the CUDA devices it meters, but only when torch has
    already initialised CUDA; a second synchronisation of an idle device costs microseconds.

The one meaning of ``power_samples()``
    ``[(t_s, power_w), ...]``: instantaneous power samples taken **since the previous call** (the call drains
    them: each sample is returned exactly once), oldest first. ``t_s`` is the meter's monotonic clock in
    seconds (the clock of its ``read()``/trace timestamps, arbitrary origin); ``power_w`` is the power in
    watts summed over the components the meter samples. Meters that do not sample power return ``[]``.

:func:`as_meter` turns any object with ``read()`` and ``close()`` (duck typing) into an :class:`EnergyMeter`,
checked once; :class:`NullMeter` stands for "no meter" with the reason.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

from lightning_energy.errors import MeterError
from lightning_energy.labels import (
    ESTIMATED,
    LABELS,
    MARK_EVENTS,
    MEASURED,
    SAMPLED,
    UNKNOWN,
    MarkEvent,
    MeterLabel,
    known_labels,
)

__all__ = [
    "ESTIMATED",
    "LABELS",
    "MARK_EVENTS",
    "MEASURED",
    "SAMPLED",
    "UNKNOWN",
    "EnergyMeter",
    "MarkEvent",
    "MeterLabel",
    "NullMeter",
    "as_meter",
]

# the vocabularies live in lightning_energy.labels; their constants keep this module's names too


class EnergyMeter(abc.ABC):
    """Base class of every meter: implement :meth:`read`; the rest has no-op defaults (module docstring)."""

    @abc.abstractmethod
    def read(self) -> Mapping[str, float]:
        """Cumulative joules per component since an arbitrary origin. Raises MeterError when it cannot."""

    def close(self) -> None:  # noqa: B027  # an optional hook: the default does nothing
        """Release resources (threads, handles). Idempotent. Default: nothing to release."""

    def read_nowait(self) -> tuple[Mapping[str, float], frozenset[str]]:
        """The components readable without waiting for a meter still opening, and the names of those that
        are (a later :meth:`read` waits for them). Default: :meth:`read`, nothing opening."""
        return self.read(), frozenset()

    @property
    def available(self) -> bool:
        """Whether this meter can produce readings (``False`` only for :class:`NullMeter`)."""
        return True

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        """Per component, one of :data:`LABELS`. Default: none known."""
        return {}

    @property
    def hardware(self) -> Mapping[str, object]:
        """What is metered, for the report. Default: nothing known."""
        return {}

    def mark(self, event: MarkEvent, epoch: int) -> None:  # noqa: B027  # an optional hook
        """Told right before a boundary ``read()``; ``event`` is one of :data:`MARK_EVENTS`."""

    def synchronize(self) -> None:  # noqa: B027  # an optional hook
        """Flush meter-specific pending work before a boundary read (the caller syncs the device)."""

    def power_samples(self) -> list[tuple[float, float]]:
        """``(t_s, power_w)`` samples taken since the previous call, drained. Default: no samples."""
        return []

    @property
    def problems(self) -> list[str]:
        """Problems met while adapting or querying the meter that did not stop it (for the report)."""
        return []


class NullMeter(EnergyMeter):
    """ "No meter", with the reason: every ``read()`` raises :class:`MeterError` carrying it.

    Args:
        reason: why nothing is metered (shown to the user), e.g. ``"no CUDA device and meter_host=False"``.
    """

    def __init__(self, reason: str) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(
                f"reason must be a non-empty string saying why nothing is metered, got {reason!r}"
            )
        self.reason = reason

    @property
    def available(self) -> bool:
        return False

    def read(self) -> Mapping[str, float]:
        raise MeterError(self.reason)

    def __repr__(self) -> str:
        return f"NullMeter({self.reason!r})"


def as_meter(obj: object) -> EnergyMeter:
    """``obj`` as an :class:`EnergyMeter`: itself when it subclasses it, else a checked duck-typing adapter.

    Raises:
        TypeError: ``obj`` is a class (pass an instance), or lacks a callable ``read()`` or ``close()``.
    """
    if isinstance(obj, EnergyMeter):
        return obj
    if isinstance(obj, type):
        raise TypeError(
            f"meter must be a meter instance, got the class {obj.__name__}; did you mean {obj.__name__}()?"
        )
    missing = [name for name in ("read", "close") if not callable(getattr(obj, name, None))]
    if missing:
        raise TypeError(
            f"meter must be an EnergyMeter or have callable read() and close(); "
            f"{type(obj).__name__} lacks {' and '.join(f'{name}()' for name in missing)}"
        )
    return _DuckMeter(obj)


class _DuckMeter(EnergyMeter):
    """Adapts a duck-typed meter: optional methods probed once (missing: no-op), extras guarded.

    ``problems`` lists, once each, what went wrong reading the wrapped object's ``labels`` or ``hardware``
    (a raising property or a value that is not a mapping); those then read as ``{}``.
    """

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self._problems: list[str] = []
        self._read: Callable[[], Mapping[str, float]] = getattr(inner, "read")  # noqa: B009
        self._close: Callable[[], None] = getattr(inner, "close")  # noqa: B009
        self._mark: Callable[[MarkEvent, int], None] | None = _optional_method(inner, "mark")
        self._synchronize: Callable[[], None] | None = _optional_method(inner, "synchronize")
        self._power_samples: Callable[[], Any] | None = _optional_method(inner, "power_samples")
        self._has_labels = _has_attribute(inner, "labels")
        self._has_hardware = _has_attribute(inner, "hardware")

    def read(self) -> Mapping[str, float]:
        return self._read()

    def close(self) -> None:
        self._close()

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        if not self._has_labels:
            return {}
        labels, problems = known_labels(self._guarded("labels"))
        for problem in problems:
            self._problem(f"{type(self.inner).__name__}.labels: {problem}")
        return labels

    @property
    def hardware(self) -> Mapping[str, object]:
        if not self._has_hardware:
            return {}
        return dict(self._guarded("hardware"))

    def mark(self, event: MarkEvent, epoch: int) -> None:
        if self._mark is not None:
            self._mark(event, epoch)

    def synchronize(self) -> None:
        if self._synchronize is not None:
            self._synchronize()

    def power_samples(self) -> list[tuple[float, float]]:
        if self._power_samples is None:
            return []
        return [(float(t_s), float(power_w)) for t_s, power_w in self._power_samples()]

    def _guarded(self, name: str) -> Mapping[Any, Any]:
        try:
            value = getattr(self.inner, name)
        except Exception as err:
            self._problem(f"{type(self.inner).__name__}.{name} raised {type(err).__name__}: {err}")
            return {}
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._problem(f"{type(self.inner).__name__}.{name} is not a mapping: {type(value).__name__}")
            return {}
        return value

    @property
    def problems(self) -> list[str]:
        return list(self._problems)

    def _problem(self, problem: str) -> None:
        if problem not in self._problems:
            self._problems.append(problem)

    def __repr__(self) -> str:
        return f"as_meter({self.inner!r})"


def _optional_method(obj: object, name: str) -> Any:
    try:
        method = getattr(obj, name, None)
    except Exception:  # a raising property in place of a method: treat as absent
        return None
    return method if callable(method) else None


def _has_attribute(obj: object, name: str) -> bool:
    """Whether ``obj`` defines ``name`` (without evaluating a property, which might raise)."""
    return any(name in vars(klass) for klass in type(obj).__mro__) or name in getattr(obj, "__dict__", {})
