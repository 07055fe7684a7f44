"""GPU energy through NVML (``nvidia-ml-py``, module ``pynvml``, imported lazily).

Per metered GPU, the best source available:

* ``nvmlDeviceGetTotalEnergyConsumption`` -- a hardware counter in millijoules since the driver was loaded
  (Volta and newer). Label ``"measured"``.
* otherwise -- the counter is not supported, or it fails at construction with any other NVML error
  (``NO_PERMISSION`` or ``UNKNOWN`` in restricted VMs) -- power sampled by a daemon thread at ``sample_hz``
  and integrated with the trapezoid rule, with one warning saying why. Label ``"sampled"``.

Power is read instantaneously through ``nvmlDeviceGetFieldValues([NVML_FI_DEV_POWER_INSTANT])`` when the GPU
and binding support it (``nvmlDeviceGetPowerUsage`` is a one-second average on Ampere-and-newer data-centre
GPUs), else through ``nvmlDeviceGetPowerUsage``; ``hardware["gpus"][i]["power_source"]`` says which.

A counter that goes backwards (driver reload, GPU reset) makes that ``read()`` raise
:class:`~lightning_energy.errors.MeterError` -- the callback marks the epoch missing, never zero -- and the
meter rebases so later readings continue from the last good value. Every NVML error is translated to
``MeterError`` (``MeterUnavailable`` during construction, after shutting NVML down again).
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.hardware import GpuInfo, Hardware
from lightning_energy.meters import nvml_devices as dev
from lightning_energy.meters.base import MEASURED, SAMPLED, EnergyMeter, MeterLabel
from lightning_energy.meters.gpu_select import NvmlTarget, resolve_nvml_targets
from lightning_energy.units import millijoules_to_joules, milliwatts_to_watts

__all__ = ["NvmlMeter", "NvmlTarget", "resolve_nvml_targets"]

MIN_SAMPLE_HZ = 10.0
MAX_SAMPLE_HZ = 1000.0
MAX_KEPT_POWER_SAMPLES = 200_000
MAX_BRIDGED_GAP_S = 1.0
"""Longest gap between two good power samples that failed samples may leave before a read raises."""
SAMPLER_JOIN_TIMEOUT_S = 5.0
_BYTES_PER_GIB = 1024**3


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as err:
        raise MeterUnavailable(
            "GPU energy needs nvidia-ml-py (module pynvml): pip install nvidia-ml-py"
        ) from err
    return pynvml


@dataclass
class _Gpu:
    """One metered physical GPU."""

    component: str
    cuda_index: int
    handle: Any
    name: str
    uuid: str
    mig: bool
    has_counter: bool
    counter_problem: str | None  # why the counter is not used (None when it is)
    instant_power: bool
    base_mj: float = 0.0
    last_mj: float = 0.0
    offset_j: float = 0.0
    last_j: float = 0.0
    # Power sampling state (used when there is no counter, or when sample_power=True).
    sampled_mj: float = 0.0
    last_sample: tuple[float, float] | None = None  # (t_s, power_mw)
    info: GpuInfo = field(default_factory=GpuInfo)  # what the report says about this GPU


class NvmlMeter(EnergyMeter):
    """Cumulative joules of the GPUs this process trains on, as ``{"gpu<cuda index>": joules}``.

    Args:
        device_indices: CUDA device indices (as torch numbers them). ``None``: all visible CUDA devices.
        sample_hz: power sampling rate when a GPU has no usable energy counter (10 to 1000 Hz).
        synchronize: whether :meth:`synchronize` also calls ``torch.cuda.synchronize`` on the metered devices
            (for standalone use; the callback synchronises its training device itself).
        sample_power: also sample power when every GPU has a counter (for :meth:`power_samples`,
            used by the validation recorder). ``None``: only when needed.
        background: run the sampling thread. ``False`` leaves sampling to explicit :meth:`sample_once`
            calls (deterministic tests).
        clock: monotonic clock in seconds for power samples.

    Raises:
        MeterUnavailable: no nvidia-ml-py, no driver, a device NVML cannot find, or any NVML error while
            opening the devices (NVML is shut down again first).

    Constructing it initialises NVML (``close()`` shuts it down) and, when CUDA is already initialised in this
    process, asks torch for the device UUIDs so ``CUDA_VISIBLE_DEVICES`` and device order cannot mislead it.
    """

    def __init__(
        self,
        device_indices: Sequence[int] | None = None,
        *,
        sample_hz: float = 20.0,
        synchronize: bool = True,
        sample_power: bool | None = None,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(sample_hz, bool) or not isinstance(sample_hz, (int, float)):
            raise TypeError(f"sample_hz must be a number of Hz, got {sample_hz!r}")
        if not MIN_SAMPLE_HZ <= sample_hz <= MAX_SAMPLE_HZ:
            raise ValueError(f"sample_hz must be in [{MIN_SAMPLE_HZ}, {MAX_SAMPLE_HZ}] Hz, got {sample_hz!r}")
        if device_indices is not None and not isinstance(device_indices, Sequence):
            raise TypeError(
                f"device_indices must be a sequence of CUDA indices or None, got {device_indices!r}"
            )
        self._sample_period_s = 1.0 / float(sample_hz)
        self._synchronize = synchronize
        self._clock = clock
        self._lock = threading.Lock()  # guards energy state and samples
        self._sample_lock = threading.Lock()  # serialises whole samples (thread vs. read's fresh sample)
        self._closed = False
        self._initialised = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Failed samples since the previous read: count, last error, longest gap between good samples.
        self._sampler_failures = 0
        self._sampler_error: BaseException | None = None
        self._max_gap_s = 0.0
        self._warned_sampler = False
        self._bridged_failures = 0  # failed samples bridged so far, for `problems`
        self._power_samples: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=MAX_KEPT_POWER_SAMPLES
        )
        self._gpus: list[_Gpu] = []
        self._pynvml = _import_pynvml()
        pynvml = self._pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise MeterUnavailable(
                f"NVML could not be initialised (no NVIDIA driver or GPU?): {err}"
            ) from err
        self._initialised = True
        try:
            self._gpus = self._open_devices(device_indices)
            self._driver = dev.optional(pynvml, lambda: dev.as_str(pynvml.nvmlSystemGetDriverVersion()))
            needs_sampling = any(not gpu.has_counter for gpu in self._gpus)
            self._sampling = needs_sampling or bool(sample_power)
            for gpu in self._gpus:
                if gpu.has_counter:
                    gpu.base_mj = gpu.last_mj = float(pynvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            if self._sampling:
                self.sample_once()
        except pynvml.NVMLError as err:
            self.close()
            raise MeterUnavailable(f"NVML failed while opening the GPUs: {err}") from err
        except BaseException:
            self.close()
            raise
        if needs_sampling:
            why = ", ".join(
                f"{gpu.component} ({gpu.name}: {gpu.counter_problem})"
                for gpu in self._gpus
                if not gpu.has_counter
            )
            warnings.warn(
                f"NVML has no energy counter for {why}: sampling power at {sample_hz:g} Hz and integrating "
                "it instead (label 'sampled'; less exact than a counter, see docs/measuring.md).",
                stacklevel=2,
            )
        if self._sampling and background:
            self._thread = threading.Thread(target=self._run_sampler, name="NvmlMeter-sampler", daemon=True)
            self._thread.start()

    # -- device discovery -------------------------------------------------------------------------------

    def _open_devices(self, device_indices: Sequence[int] | None) -> list[_Gpu]:
        pynvml = self._pynvml
        nvml_count = int(pynvml.nvmlDeviceGetCount())
        indices = (
            list(device_indices) if device_indices is not None else self._visible_cuda_indices(nvml_count)
        )
        if not indices:
            raise MeterUnavailable("no CUDA device to meter: device_indices is empty or no GPU is visible")
        targets = resolve_nvml_targets(
            indices,
            os.environ.get("CUDA_VISIBLE_DEVICES"),
            cuda_device_order=os.environ.get("CUDA_DEVICE_ORDER"),
            device_uuids=_torch_device_uuids(indices),
            nvml_device_count=nvml_count,
        )
        gpus: list[_Gpu] = []
        by_uuid: dict[str, str] = {}
        for target in targets:
            handle = self._handle_for(target, nvml_count)
            mig = False
            if dev.is_mig_handle(pynvml, handle):
                mig = True
                handle = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
            elif dev.mig_mode_enabled(pynvml, handle):
                mig = True
            gpu = self._describe(target.cuda_index, handle, mig)
            if gpu.uuid in by_uuid:
                warnings.warn(
                    f"{gpu.component} is on the same physical GPU as {by_uuid[gpu.uuid]} (MIG slices); "
                    f"metering that GPU once, under {by_uuid[gpu.uuid]}.",
                    stacklevel=3,
                )
                continue
            by_uuid[gpu.uuid] = gpu.component
            gpus.append(gpu)
        if any(gpu.mig for gpu in gpus):
            warnings.warn(
                "A metered GPU is in MIG mode: NVML reports the energy of the whole physical GPU, including "
                "other MIG instances and their users; the numbers are an upper bound for this process.",
                stacklevel=3,
            )
        return gpus

    @staticmethod
    def _visible_cuda_indices(nvml_count: int) -> list[int]:
        torch = sys.modules.get("torch")
        if torch is not None:
            return list(range(int(torch.cuda.device_count())))
        return list(range(nvml_count))

    def _handle_for(self, target: NvmlTarget, nvml_count: int) -> Any:
        return dev.handle_for(self._pynvml, target, nvml_count)

    def _describe(self, cuda_index: int, handle: Any, mig: bool) -> _Gpu:
        pynvml = self._pynvml
        name = dev.as_str(pynvml.nvmlDeviceGetName(handle))
        uuid = dev.as_str(pynvml.nvmlDeviceGetUUID(handle))
        counter_problem: str | None = None
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError as err:
            # NOT_SUPPORTED (pre-Volta), but also NO_PERMISSION or UNKNOWN (restricted VMs): sample power.
            counter_problem = (
                "not supported" if dev.is_not_supported(pynvml, err) else f"counter error: {err}"
            )
        instant_power = dev.has_instant_power(pynvml) and (
            dev.optional(pynvml, lambda: dev.instant_power_mw(pynvml, handle)) is not None
        )
        gpu = _Gpu(
            component=f"gpu{cuda_index}",
            cuda_index=cuda_index,
            handle=handle,
            name=name,
            uuid=uuid,
            mig=mig,
            has_counter=counter_problem is None,
            counter_problem=counter_problem,
            instant_power=instant_power,
        )
        if counter_problem is not None:
            try:
                self._power_mw(gpu)
            except pynvml.NVMLError as power_err:
                raise MeterUnavailable(
                    f"gpu{cuda_index} ({name}): NVML reports neither an energy counter ({counter_problem}) "
                    f"nor power: {power_err}"
                ) from power_err
        gpu.info = GpuInfo(
            index=cuda_index,
            name=name,
            uuid=uuid,
            pci_bus_id=dev.optional(pynvml, lambda: dev.as_str(pynvml.nvmlDeviceGetPciInfo_v3(handle).busId)),
            power_limit_w=dev.optional(
                pynvml, lambda: milliwatts_to_watts(pynvml.nvmlDeviceGetPowerManagementDefaultLimit(handle))
            ),
            memory_gb=dev.optional(
                pynvml, lambda: round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / _BYTES_PER_GIB, 2)
            ),
            energy_counter=counter_problem is None,
            mig=mig,
            power_source=dev.POWER_INSTANT_FIELD if instant_power else dev.POWER_USAGE_FUNCTION,
            energy_counter_problem=counter_problem,
        )
        return gpu

    def _power_mw(self, gpu: _Gpu) -> float:
        if gpu.instant_power:
            return dev.instant_power_mw(self._pynvml, gpu.handle)
        return float(self._pynvml.nvmlDeviceGetPowerUsage(gpu.handle))

    # -- the protocol ---------------------------------------------------------------------------------

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        return {gpu.component: MEASURED if gpu.has_counter else SAMPLED for gpu in self._gpus}

    @property
    def hardware(self) -> Mapping[str, object]:
        return Hardware(gpus=tuple(gpu.info for gpu in self._gpus), driver=self._driver).to_json()

    @property
    def problems(self) -> list[str]:
        """Why a GPU is sampled instead of counted, and how many failed power samples were bridged."""
        found = [
            f"{gpu.component}: no energy counter ({gpu.counter_problem}); power is sampled"
            for gpu in self._gpus
            if gpu.counter_problem is not None
        ]
        if self._bridged_failures:
            found.append(f"{self._bridged_failures} failed NVML power sample(s) bridged")
        return found

    @property
    def components(self) -> list[str]:
        return [gpu.component for gpu in self._gpus]

    def read(self) -> Mapping[str, float]:
        """Cumulative joules per metered GPU. Raises MeterError on an NVML error or a counter reset.

        Failed background power samples never affect GPUs read through their counter; for sampled GPUs the
        trapezoid bridges them, and the read raises only if they left a gap over ``MAX_BRIDGED_GAP_S``.
        """
        if self._closed:
            raise MeterError("NvmlMeter.read() after close()")
        pynvml = self._pynvml
        sampled = [gpu.component for gpu in self._gpus if not gpu.has_counter]
        if sampled:
            self._sample_for_read()
        with self._lock:
            failures, error, gap_s = self._sampler_failures, self._sampler_error, self._max_gap_s
            self._sampler_failures, self._sampler_error, self._max_gap_s = 0, None, 0.0
        if failures and sampled and gap_s > MAX_BRIDGED_GAP_S:
            raise MeterError(
                f"NVML power sampling of {', '.join(sampled)} failed for {gap_s:.3g} s ({failures} failed "
                f"samples, last: {error}); this interval cannot be measured."
            ) from error
        self._bridged_failures += failures
        if failures and not self._warned_sampler:
            self._warned_sampler = True
            warnings.warn(
                f"NVML power sampling failed {failures} time(s) (last: {error}); the gaps were bridged. "
                "Further transient failures are not reported.",
                stacklevel=2,
            )
        with self._lock:
            readings: dict[str, float] = {}
            reset: list[str] = []
            for gpu in self._gpus:
                if not gpu.has_counter:
                    readings[gpu.component] = millijoules_to_joules(gpu.sampled_mj)
                    continue
                try:
                    counter_mj = float(pynvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
                except pynvml.NVMLError as err:
                    raise MeterError(f"{gpu.component} ({gpu.name}): NVML energy read failed: {err}") from err
                if counter_mj < gpu.last_mj:
                    # Driver reload or GPU reset: the counter restarted. Continue from the last good value.
                    gpu.offset_j = gpu.last_j
                    gpu.base_mj = gpu.last_mj = counter_mj
                    reset.append(gpu.component)
                    continue
                gpu.last_mj = counter_mj
                gpu.last_j = gpu.offset_j + millijoules_to_joules(counter_mj - gpu.base_mj)
                readings[gpu.component] = gpu.last_j
            if reset:
                raise MeterError(
                    f"NVML energy counter went backwards on {', '.join(reset)} (driver reload or GPU reset); "
                    "this interval cannot be measured, the meter has rebased."
                )
            return readings

    def synchronize(self) -> None:
        """Cheap and idempotent. With ``synchronize=True``, waits for queued work on the metered CUDA devices,
        but only when torch has already initialised CUDA (the callback synchronises its device itself)."""
        torch = sys.modules.get("torch")
        if not self._synchronize or self._closed or torch is None or not torch.cuda.is_initialized():
            return
        for gpu in self._gpus:
            torch.cuda.synchronize(gpu.cuda_index)

    def power_samples(self) -> list[tuple[float, float]]:
        """``(t_s, power_w)`` samples (sum over metered GPUs) since the previous call; drains them."""
        with self._lock:
            samples = list(self._power_samples)
            self._power_samples.clear()
        return samples

    def sample_once(self) -> None:
        """Take one power sample of every GPU and integrate (trapezoid). The sampling thread calls this.

        Raises the binding's NVMLError when a power read fails (nothing is integrated for that sample).
        """
        with self._sample_lock:
            if self._closed:
                raise MeterError("NvmlMeter.sample_once() after close()")
            self._sample_locked()

    def _sample_locked(self) -> None:
        now_s = self._clock()
        powers_mw = [self._power_mw(gpu) for gpu in self._gpus]
        with self._lock:
            for gpu, power_mw in zip(self._gpus, powers_mw, strict=True):
                if gpu.last_sample is not None:
                    last_t_s, last_mw = gpu.last_sample
                    self._max_gap_s = max(self._max_gap_s, now_s - last_t_s)
                    gpu.sampled_mj += 0.5 * (last_mw + power_mw) * max(0.0, now_s - last_t_s)
                gpu.last_sample = (now_s, power_mw)
            self._power_samples.append((now_s, milliwatts_to_watts(sum(powers_mw))))

    def _sample_for_read(self) -> None:
        """A fresh sample so a boundary reading covers power up to now, not up to the last tick."""
        try:
            self.sample_once()
        except self._pynvml.NVMLError as err:
            raise MeterError(f"NVML power read failed: {err}") from err

    def _run_sampler(self) -> None:
        while not self._stop.wait(self._sample_period_s):
            try:
                self.sample_once()
            except MeterError:  # closed meanwhile
                return
            except Exception as err:  # NVML errors: bridged or reported by the next read()
                with self._lock:
                    self._sampler_failures += 1
                    self._sampler_error = err

    def close(self) -> None:
        """Stop and join the sampler thread, then shut NVML down. Idempotent."""
        with self._sample_lock:  # waits for a sample in progress
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SAMPLER_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                warnings.warn(
                    "the NVML sampler thread did not stop within "
                    f"{SAMPLER_JOIN_TIMEOUT_S:g} s; leaving NVML initialised",
                    stacklevel=2,
                )
                return
        if self._initialised:
            self._initialised = False
            try:
                self._pynvml.nvmlShutdown()
            except self._pynvml.NVMLError as err:
                warnings.warn(f"nvmlShutdown failed: {err}", stacklevel=2)

    def __enter__(self) -> NvmlMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _torch_device_uuids(cuda_indices: Sequence[int]) -> dict[int, str]:
    """UUIDs CUDA reports, but only if torch already initialised CUDA (never initialise it here)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return {}
    uuids: dict[int, str] = {}
    for index in cuda_indices:
        try:
            uuid = str(torch.cuda.get_device_properties(index).uuid)
        except Exception:  # torch builds without the attribute, invalid index: fall back
            continue
        if uuid:
            uuids[index] = uuid
    return uuids
