"""The energy of a ``trainer.validate``, ``test`` or ``predict`` call: one span from the stage's start to
its end, summed over ranks, as a typed :class:`StageEnergy` and ``energy_<stage>.json`` (pure: no torch, no
Lightning).

These stages have no epochs to project: their energy is measured, not projected (no STEP, no PRE).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

from lightning_energy._io import atomic_write_text
from lightning_energy.accounting import CATEGORIES, by_category, reading_delta
from lightning_energy.errors import MeterError
from lightning_energy.labels import UNKNOWN, ComponentLabel
from lightning_energy.metering import Reading
from lightning_energy.units import format_energy, joules_to_kwh

__all__ = ["STAGES", "STAGE_FORMAT", "Stage", "StageEnergy", "as_stage", "stage_file_name", "stage_sums"]

# the Trainer's entry points other than fit, metered as one span each
Stage = Literal["validate", "test", "predict"]
STAGES: tuple[Stage, ...] = get_args(Stage)
STAGE_FORMAT = "lightning_energy.stage"
STAGE_VERSION = 1


def as_stage(value: object) -> Stage | None:
    """``value`` when it names one of :data:`STAGES`, else ``None``."""
    return next((s for s in STAGES if s == value), None)


def stage_file_name(stage: Stage) -> str:
    """``energy_validate.json``, ``energy_test.json`` or ``energy_predict.json``."""
    return f"energy_{stage}.json"


def stage_sums(start: Reading | None, end: Reading) -> dict[str, float]:
    """This rank's energy between ``start`` and ``end`` by category, to be summed over ranks (with
    ``missing`` 1 when this rank could not measure it, ``duration_s`` and ``ranks``)."""
    sums = dict.fromkeys(CATEGORIES, 0.0)
    missing = start is None or start.joules is None or end.joules is None
    if not missing:
        assert start is not None and start.joules is not None and end.joules is not None
        try:
            sums = by_category(reading_delta(start.joules, end.joules))
        except MeterError:
            missing = True
    duration_s = 0.0 if start is None else end.time_s - start.time_s
    return {**sums, "missing": float(missing), "duration_s": duration_s, "ranks": 1.0}


@dataclass(frozen=True)
class StageEnergy:
    """The energy of one ``validate``/``test``/``predict`` call on all ranks.

    ``energy_j`` is ``None`` when some rank could not measure it (``reason`` says why), never a fake 0;
    ``components_j`` holds the metered categories (``components``: their labels, as in the fit report).
    """

    stage: Stage
    energy_j: float | None
    components_j: Mapping[str, float]
    duration_s: float
    components: Mapping[str, ComponentLabel] = field(default_factory=dict)
    world_size: int = 1
    reason: str | None = None
    ended_at: str = ""

    @classmethod
    def from_sums(
        cls,
        stage: Stage,
        summed: Mapping[str, float],
        components: Mapping[str, ComponentLabel],
        world_size: int,
    ) -> StageEnergy:
        """The stage on all ranks from :func:`stage_sums` summed over ranks."""
        ranks = max(summed["ranks"], 1.0)
        duration_s = summed["duration_s"] / ranks
        ended_at = datetime.now(timezone.utc).isoformat()
        labels = dict(components)
        for category in CATEGORIES:
            if summed[category] > 0:
                labels.setdefault(category, UNKNOWN)
        if summed["missing"] > 0:
            reason = f"the meter failed on {int(summed['missing'])} of {int(ranks)} ranks"
            return cls(stage, None, {}, duration_s, labels, world_size, reason, ended_at)
        parts = {c: summed[c] for c in CATEGORIES if c in labels}
        return cls(stage, sum(parts.values()), parts, duration_s, labels, world_size, None, ended_at)

    @property
    def energy_kwh(self) -> float | None:
        return None if self.energy_j is None else joules_to_kwh(self.energy_j)

    def line(self) -> str:
        """One line for the console, e.g. ``trainer.test used 12.3 J in 4.1 s (cpu estimated, ...)``."""
        what = f"trainer.{self.stage}"
        if self.energy_j is None:
            return f"{what}: energy not measured ({self.reason})"
        labels = ", ".join(f"{k} {v}" for k, v in self.components.items())
        return (
            f"{what} used {format_energy(self.energy_j)} in {self.duration_s:.3g} s"
            + (f" ({labels})" if labels else "")
            + "; measured, not projected"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STAGE_FORMAT,
            "version": STAGE_VERSION,
            "stage": self.stage,
            "ended_at": self.ended_at,
            "world_size": self.world_size,
            "energy_j": self.energy_j,
            "energy_kwh": self.energy_kwh,
            "components_j": dict(self.components_j),
            "components": dict(self.components),
            "duration_s": self.duration_s,
            "reason": self.reason,
        }

    def write(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``energy_<stage>.json`` into ``directory`` (atomically); the path written."""
        path = Path(directory) / stage_file_name(self.stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
