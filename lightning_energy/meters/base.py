"""The meter protocol.

An energy meter reports *cumulative* joules per component since an arbitrary origin. Components are short
names such as ``"gpu0"``, ``"cpu"`` and ``"ram"``. The callback only ever takes differences of two readings,
so the origin does not matter.

Optional extras a meter may offer (the callback uses them through ``getattr`` when present):

* ``labels: Mapping[str, str]`` -- per component, how the number is obtained: ``"measured"`` (a hardware
  energy counter or RAPL), ``"sampled"`` (power sampled and integrated by us) or ``"estimated"`` (a model,
  e.g. load x TDP). Missing components count as ``"unknown"``.
* ``hardware: Mapping[str, object]`` -- what is metered (GPU names, driver version, CPU model, ...), for
  the report.
* ``mark(event: str, epoch: int) -> None`` -- told at each epoch boundary (``"epoch_start"`` /
  ``"epoch_end"``) right before the boundary ``read()``; recording and replay meters use it.
* ``synchronize() -> None`` -- called before boundary reads so queued device work lands in the right
  epoch (the GPU meter calls ``torch.cuda.synchronize``). Never called per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

MEASURED = "measured"
SAMPLED = "sampled"
ESTIMATED = "estimated"
UNKNOWN = "unknown"
LABELS = (MEASURED, SAMPLED, ESTIMATED, UNKNOWN)


@runtime_checkable
class EnergyMeter(Protocol):
    """Anything with ``read()`` (cumulative joules per component) and ``close()``."""

    def read(self) -> Mapping[str, float]:
        """Cumulative joules per component since an arbitrary origin."""
        ...

    def close(self) -> None:
        """Release resources (threads, handles). Idempotent."""
        ...
