"""lightning_energy: measure, project and estimate the energy of PyTorch Lightning training.

``Trainer(callbacks=[EnergyCallback()])`` is all it takes. Public names are loaded on first use, so that
``import lightning_energy.step`` (the pure core) pulls in neither torch nor Lightning, and importing the
package touches no hardware.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from lightning_energy._version import __version__

__all__ = [
    "CompositeMeter",
    "EnergyCallback",
    "EnergyMeter",
    "EnergyRun",
    "FakeMeter",
    "HostMeter",
    "NullMeter",
    "NvmlMeter",
    "PreEstimator",
    "Projection",
    "RecordingMeter",
    "ReplayMeter",
    "RunReport",
    "StepParams",
    "StepProjector",
    "__version__",
    "load_report",
]

_WHERE = {
    "CompositeMeter": "lightning_energy.meters",
    "EnergyCallback": "lightning_energy.callback",
    "EnergyMeter": "lightning_energy.meters.base",
    "EnergyRun": "lightning_energy.run",
    "NullMeter": "lightning_energy.meters.base",
    "RunReport": "lightning_energy.report_model",
    "load_report": "lightning_energy.report",
    "FakeMeter": "lightning_energy.meters",
    "HostMeter": "lightning_energy.meters",
    "NvmlMeter": "lightning_energy.meters",
    "PreEstimator": "lightning_energy.pre",
    "Projection": "lightning_energy.step",
    "RecordingMeter": "lightning_energy.meters",
    "ReplayMeter": "lightning_energy.meters",
    "StepParams": "lightning_energy.step",
    "StepProjector": "lightning_energy.step",
}

if TYPE_CHECKING:
    from lightning_energy.callback import EnergyCallback
    from lightning_energy.meters import (
        CompositeMeter,
        FakeMeter,
        HostMeter,
        NvmlMeter,
        RecordingMeter,
        ReplayMeter,
    )
    from lightning_energy.meters.base import EnergyMeter, NullMeter
    from lightning_energy.pre import PreEstimator
    from lightning_energy.report import load_report
    from lightning_energy.report_model import RunReport
    from lightning_energy.run import EnergyRun
    from lightning_energy.step import Projection, StepParams, StepProjector


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lightning_energy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
