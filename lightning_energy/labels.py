"""The closed vocabularies meters and reports share: how a component's energy is obtained, and the
boundaries a meter is told about.

Pure Python with no package import (the lowest layer): the meters, the run model and the report read them
from here; :mod:`lightning_energy.meters.base` re-exports the constants under their old names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

__all__ = [
    "COMPONENT_LABELS",
    "ESTIMATED",
    "LABELS",
    "MARK_EVENTS",
    "MEASURED",
    "MIXED",
    "SAMPLED",
    "UNKNOWN",
    "ComponentLabel",
    "MarkEvent",
    "MeterLabel",
    "component_label",
    "known_labels",
]

# per component, how a meter obtains its joules: a hardware energy counter, power samples integrated over
# time, a model (CodeCarbon's load x TDP, RAM per DIMM), or not said
MeterLabel = Literal["measured", "sampled", "estimated", "unknown"]
MEASURED: Final = "measured"
SAMPLED: Final = "sampled"
ESTIMATED: Final = "estimated"
UNKNOWN: Final = "unknown"
LABELS: tuple[MeterLabel, ...] = get_args(MeterLabel)

# per category of the report (gpu, cpu, ram): a meter label, or "mixed" when its components differ
ComponentLabel = Literal["measured", "sampled", "estimated", "unknown", "mixed"]
MIXED: Final = "mixed"
COMPONENT_LABELS: tuple[ComponentLabel, ...] = get_args(ComponentLabel)

# what a meter's mark() is told right before a boundary read
MarkEvent = Literal["epoch_start", "epoch_end", "window_end"]
MARK_EVENTS: tuple[MarkEvent, ...] = get_args(MarkEvent)


def known_labels(labels: Mapping[Any, object]) -> tuple[dict[str, MeterLabel], list[str]]:
    """``labels`` (per component, from a meter or a file) with every value outside :data:`LABELS` read as
    ``"unknown"``, and one line per value so read (empty when all are known)."""
    known: dict[str, MeterLabel] = {}
    odd: list[str] = []
    for component, label in labels.items():
        name = str(component)
        known[name] = _label(label)
        if label not in LABELS:
            odd.append(f"{name}: {label!r}")
    problems = [f"labels not in {LABELS} read as 'unknown' ({', '.join(odd)})"] if odd else []
    return known, problems


def component_label(value: object) -> ComponentLabel:
    """``value`` when it is one of :data:`COMPONENT_LABELS`, else ``"unknown"``."""
    for label in COMPONENT_LABELS:
        if value == label:
            return label
    return UNKNOWN


def _label(value: object) -> MeterLabel:
    for label in LABELS:
        if value == label:
            return label
    return UNKNOWN
