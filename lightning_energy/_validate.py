"""Argument checks shared by every public constructor: they raise at once and name the argument."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, SupportsFloat, TypeGuard


def is_number(value: Any) -> TypeGuard[SupportsFloat]:
    """A real number (int or float, numpy scalars included), not a bool."""
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bytes))


def finite_number(
    name: str, value: Any, *, minimum: float | None = None, positive: bool = False, what: str = "a number"
) -> float:
    """``value`` as a float, or ``ValueError``/``TypeError`` naming ``name``.

    ``positive`` requires ``> 0``; ``minimum`` requires ``>= minimum``.
    """
    if not is_number(value):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return number


def check_callback_flags(estimate: Any, report: Any, history_path: Any, window_batches: Any) -> None:
    """``EnergyCallback``'s plain arguments: ``TypeError``/``ValueError`` naming the first wrong one."""
    for name, flag in (("estimate", estimate), ("report", report)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if history_path is not None and not isinstance(history_path, str | os.PathLike | bool):
        raise TypeError(
            "history_path must be a path, None (default location) or False (no history), "
            f"got {history_path!r}"
        )
    if window_batches is not None and (
        isinstance(window_batches, bool)
        or not isinstance(window_batches, numbers.Integral)
        or window_batches < 0
    ):
        raise ValueError(
            f"window_batches must be a whole number of batches >= 0 or None, got {window_batches!r}"
        )
