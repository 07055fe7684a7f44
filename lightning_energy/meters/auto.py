"""Pick the meters for this process: the GPUs it trains on, plus the host once per node."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.meters.base import EnergyMeter
from lightning_energy.meters.composite import CompositeMeter
from lightning_energy.meters.host import HostMeter
from lightning_energy.meters.lazy import LazyHostMeter
from lightning_energy.meters.nvml import NvmlMeter

__all__ = ["auto_meter"]


def auto_meter(
    cuda_device_indices: Sequence[int] | None,
    *,
    meter_host: bool,
    sample_hz: float = 20.0,
    lazy_host: bool = False,
) -> EnergyMeter:
    """The best meter available.

    Args:
        cuda_device_indices: CUDA indices this process trains on; ``None`` or empty for CPU-only training.
        meter_host: meter host CPU/RAM too. Pass ``True`` on exactly one process per node (local rank 0 under
            DDP) so the host is not counted once per GPU.
        sample_hz: power sampling rate for GPUs without an energy counter.
        lazy_host: open the host meter in the background (``LazyHostMeter``:
            its first reading is a zero baseline, and it counts from then); a failure to open it then shows
            at the next reading instead of here. The callback sets it, so that set-up costs nothing.

    Returns:
        :class:`NvmlMeter`, :class:`HostMeter`, or a :class:`CompositeMeter` of both.

    Raises:
        MeterUnavailable: nothing can be metered (the message says why for each part).
    """
    if cuda_device_indices is not None and not isinstance(cuda_device_indices, Sequence):
        raise TypeError(
            f"cuda_device_indices must be a sequence of ints or None, got {cuda_device_indices!r}"
        )
    meters: list[EnergyMeter] = []
    gpu_problem = "no CUDA device (CPU training)"
    host_problem = "not requested (meter_host=False, e.g. not local rank 0)"
    if cuda_device_indices:
        try:
            meters.append(NvmlMeter(list(cuda_device_indices), sample_hz=sample_hz))
            gpu_problem = ""
        except MeterError as err:
            gpu_problem = str(err)
    if meter_host and lazy_host:
        if importlib.util.find_spec("codecarbon") is None:
            host_problem = "host CPU/RAM energy needs CodeCarbon (pip install codecarbon)"
        else:
            meters.append(LazyHostMeter(drop_on_failure=bool(meters)))
            host_problem = ""
    elif meter_host:
        try:
            meters.append(HostMeter())
            host_problem = ""
        except MeterUnavailable as err:
            host_problem = str(err)
    if not meters:
        raise MeterUnavailable(f"no energy meter available. GPU: {gpu_problem}. Host: {host_problem}.")
    if cuda_device_indices and gpu_problem:
        warnings.warn(f"GPU energy is not metered: {gpu_problem}", stacklevel=2)
    if meter_host and host_problem:
        warnings.warn(f"Host CPU/RAM energy is not metered: {host_problem}", stacklevel=2)
    if len(meters) == 1:
        return meters[0]
    return CompositeMeter(meters)
