"""Energy meters: NVML for GPUs, CodeCarbon for host CPU/RAM, and fake/replay/recording meters.

Importing this package imports neither ``pynvml`` nor ``codecarbon``; the meters import them when built.
"""

from lightning_energy.meters.auto import auto_meter
from lightning_energy.meters.base import (
    ESTIMATED,
    LABELS,
    MARK_EVENTS,
    MEASURED,
    SAMPLED,
    UNKNOWN,
    EnergyMeter,
    NullMeter,
    as_meter,
)
from lightning_energy.meters.composite import CompositeMeter
from lightning_energy.meters.fake import FakeMeter
from lightning_energy.meters.gpu_select import NvmlTarget, parse_cuda_visible_devices, resolve_nvml_targets
from lightning_energy.meters.host import HostMeter
from lightning_energy.meters.lazy import BackgroundMeter, LazyHostMeter
from lightning_energy.meters.nvml import NvmlMeter
from lightning_energy.meters.recording import RecordingMeter
from lightning_energy.meters.replay import ReplayMeter
from lightning_energy.meters.trace import Trace, TraceFormatError, TraceReading, load_trace, write_trace

__all__ = [
    "ESTIMATED",
    "LABELS",
    "MARK_EVENTS",
    "MEASURED",
    "SAMPLED",
    "UNKNOWN",
    "BackgroundMeter",
    "CompositeMeter",
    "EnergyMeter",
    "FakeMeter",
    "HostMeter",
    "LazyHostMeter",
    "NullMeter",
    "NvmlMeter",
    "NvmlTarget",
    "RecordingMeter",
    "ReplayMeter",
    "Trace",
    "TraceFormatError",
    "TraceReading",
    "as_meter",
    "auto_meter",
    "load_trace",
    "parse_cuda_visible_devices",
    "resolve_nvml_targets",
    "write_trace",
]
