"""Reading the run report's JSON fields: lenient about absent fields, strict about their types.

Every reader raises :class:`~lightning_energy.errors.ReportError` naming the field; a report never holds NaN
or an infinity (they are written as null). Pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from lightning_energy.errors import ReportError

_T = TypeVar("_T", bound=str)

__all__ = ["float_or", "list_field", "mapping_field", "one_of", "opt_float", "opt_int", "shown"]


def shown(value: Any) -> str:
    """``value`` for an error message, cut short (a damaged file may hold a huge number or string)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


def opt_float(data: Mapping[str, Any], key: str) -> float | None:
    """A finite number or ``None``: a report never holds NaN or an infinity (they are written as null)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"field {key!r} must be a number or null, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ReportError(f"field {key!r} must be a finite number or null, got {shown(value)}")
    return number


def float_or(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = opt_float(data, key)
    return default if value is None else value


def opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = opt_float(data, key)
    return None if value is None else int(value)


def mapping_field(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ReportError(f"field {key!r} must be an object, got {type(value).__name__}")
    return value


def list_field(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"field {key!r} must be a list, got {type(value).__name__}")
    return value


def one_of(data: Mapping[str, Any], key: str, allowed: tuple[_T, ...], default: _T | None) -> _T:
    """A value of a closed vocabulary (``default`` when absent and one is given)."""
    value = data.get(key)
    if value is None and default is not None:
        return default
    for name in allowed:
        if value == name:
            return name
    raise ReportError(f"field {key!r} must be one of {', '.join(map(repr, allowed))}, got {shown(value)}")
