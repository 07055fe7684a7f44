"""The GPU visit's first step: an NVML check of under a minute on the GPU the visit computes on.

``visit.py`` calls :func:`run_check` and :func:`check_mapping`; run as a script, this file is only the child
process of the mapping check. The check records, and ``summarise.py`` prints as Markdown tables:

* the driver, NVML and CUDA driver versions; the GPU's name, UUID, NVML index, PCI bus id, power limit and
  memory. The GPU is the one CUDA device ``--cuda-index`` is, found by its UUID as CUDA reports it (NVML
  numbers the devices in PCI order, CUDA fastest first and after ``CUDA_VISIBLE_DEVICES``: the indices differ
  in general); ``NvmlMeter([cuda_index])`` must find the same UUID;
* whether the energy counter (``nvmlDeviceGetTotalEnergyConsumption``) and the instantaneous power field
  (``NVML_FI_DEV_POWER_INSTANT`` through ``nvmlDeviceGetFieldValues``) are supported;
* the latency (median, P99 over ``reads`` calls) of the counter, of ``NvmlMeter.read()``, of
  ``nvmlDeviceGetPowerUsage`` and of the instantaneous power field;
* how often the counter and the two power readings change (their update period), polled for one second
  under load;
* a short GPU burst (bf16 matrix products) between two idle spells, integrated three ways: the counter, the
  trapezoid of ``nvmlDeviceGetPowerUsage`` (a one-second average on Ampere and newer) and the trapezoid of
  the instantaneous power field, over the burst alone and over the burst with its idle spells;
* the ``CUDA_VISIBLE_DEVICES=GPU-<uuid>`` mapping (full UUID and a unique prefix), checked in two child
  processes run side by side: ``NvmlMeter([0])`` there, opened before CUDA is, must meter this GPU, and
  torch's device 0 must be it.

On the CPU (``device="cpu"``, the dry run) the burst is an idle wait and torch is not used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analysis import change_intervals_s, gap_pct, integrate_power_j, time_calls

from lightning_energy.meters import NvmlMeter

CHECK_FORMAT = "lightning_energy.nvml_check"
CHECK_VERSION = 2  # 2: the GPU found by UUID (gpu.cuda_index, gpu.found_by); mapping children side by side
INSTANT_FIELD_FALLBACK = 186  # NVML_FI_DEV_POWER_INSTANT in nvidia-ml-py 12.x/13.x (milliwatts)
TIGHT_POLL_S = 1.0
CHILD_TIMEOUT_S = 40.0  # both children together: an interpreter, torch and a CUDA context each
# ``c_nvmlFieldValue_t.valueType`` -> the member of ``c_nvmlValue_t`` that holds the value
_FIELD_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}

Clock = Callable[[], float]


# ------------------------------------------------------------------------------------------- NVML reads
def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _optional(pynvml: ModuleType, get: Callable[[], Any]) -> Any:
    """An informational query; ``None`` when NVML or this nvidia-ml-py version does not offer it."""
    try:
        return get()
    except (pynvml.NVMLError, AttributeError, TypeError):
        return None


def counter_j(pynvml: ModuleType, handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)) / 1000.0


def power_usage_w(pynvml: ModuleType, handle: Any) -> float:
    return float(pynvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0


def instant_power_w(pynvml: ModuleType, handle: Any) -> float:
    """``NVML_FI_DEV_POWER_INSTANT`` (mW) through ``nvmlDeviceGetFieldValues``, in watts."""
    field_id = getattr(pynvml, "NVML_FI_DEV_POWER_INSTANT", INSTANT_FIELD_FALLBACK)
    value = pynvml.nvmlDeviceGetFieldValues(handle, [field_id])[0]
    status = int(getattr(value, "nvmlReturn", 0))
    if status != 0:
        raise pynvml.NVMLError(status)
    member = _FIELD_MEMBERS.get(int(value.valueType))
    if member is None:
        raise ValueError(f"unknown NVML field value type {value.valueType!r}")
    return float(getattr(value.value, member)) / 1000.0


def system_info(pynvml: ModuleType) -> dict[str, Any]:
    return {
        "driver": _optional(pynvml, lambda: _text(pynvml.nvmlSystemGetDriverVersion())),
        "nvml_version": _optional(pynvml, lambda: _text(pynvml.nvmlSystemGetNVMLVersion())),
        "cuda_driver_version": _optional(pynvml, lambda: int(pynvml.nvmlSystemGetCudaDriverVersion())),
        "gpu_count": int(pynvml.nvmlDeviceGetCount()),
    }


def describe_gpu(pynvml: ModuleType, handle: Any) -> dict[str, Any]:
    def supported(read: Callable[[], object]) -> bool:
        try:
            read()
        except (pynvml.NVMLError, AttributeError, ValueError):
            return False
        return True

    capability = _optional(pynvml, lambda: pynvml.nvmlDeviceGetCudaComputeCapability(handle))
    limit_mw = _optional(pynvml, lambda: pynvml.nvmlDeviceGetPowerManagementDefaultLimit(handle))
    memory = _optional(pynvml, lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    return {
        "name": _text(pynvml.nvmlDeviceGetName(handle)),
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        "pci_bus_id": _optional(pynvml, lambda: _text(pynvml.nvmlDeviceGetPciInfo_v3(handle).busId)),
        "compute_capability": None if capability is None else ".".join(str(int(c)) for c in capability),
        "power_limit_w": None if limit_mw is None else float(limit_mw) / 1000.0,
        "memory_gb": None if memory is None else round(float(memory) / 1024**3, 2),
        "energy_counter": supported(lambda: counter_j(pynvml, handle)),
        "power_usage": supported(lambda: power_usage_w(pynvml, handle)),
        "instant_power_field": supported(lambda: instant_power_w(pynvml, handle)),
    }


# ----------------------------------------------------------------------------------------------- burst
class Poller:
    """A thread polling the counter and both power readings; one tight counter/power poll once asked."""

    def __init__(self, pynvml: ModuleType, handle: Any, *, hz: float, instant: bool, clock: Clock) -> None:
        self._pynvml, self._handle, self._period_s, self._clock = pynvml, handle, 1.0 / hz, clock
        self._instant = instant
        self.samples: list[tuple[float, float, float, float | None]] = []  # t_s, counter J, W, instant W
        self.tight: list[tuple[float, float, float, float | None]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._tight_asked = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nvml-check-poller", daemon=True)

    def sample(self) -> tuple[float, float, float, float | None]:
        t_s = self._clock()
        instant = instant_power_w(self._pynvml, self._handle) if self._instant else None
        return (
            t_s,
            counter_j(self._pynvml, self._handle),
            power_usage_w(self._pynvml, self._handle),
            instant,
        )

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._tight_asked.is_set() and not self.tight:
                    self.tight = self._tight_poll()
                self.samples.append(self.sample())
                self._stop.wait(self._period_s)
        except Exception as err:  # reported in the result, never silently
            self.error = f"{type(err).__name__}: {err}"

    def _tight_poll(self) -> list[tuple[float, float, float, float | None]]:
        """Poll without pause for TIGHT_POLL_S; every ``period`` one of these also goes to ``samples``."""
        end_s = self._clock() + TIGHT_POLL_S
        tight: list[tuple[float, float, float, float | None]] = []
        while not self._stop.is_set():
            row = self.sample()
            tight.append(row)
            if not self.samples or row[0] - self.samples[-1][0] >= self._period_s:
                self.samples.append(row)
            if row[0] >= end_s:
                return tight
        return tight

    def start(self) -> None:
        self._thread.start()

    def ask_tight_poll(self) -> None:
        self._tight_asked.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)


def gpu_work(cuda_index: int) -> tuple[Callable[[float], None], Callable[[], None]]:
    """bf16 matrix products for a given time, and a synchronize; both on CUDA device ``cuda_index``."""
    import torch

    device = torch.device("cuda", cuda_index)
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)

    def sync() -> None:
        torch.cuda.synchronize(device)

    def work(seconds: float) -> None:
        end_s = time.monotonic() + seconds
        while time.monotonic() < end_s:
            for _ in range(8):
                torch.mm(a, b)
            sync()

    work(0.5)  # warm-up: cuBLAS heuristics and clocks, outside the measured burst
    return work, sync


def run_burst(
    pynvml: ModuleType,
    handle: Any,
    *,
    work: Callable[[float], None],
    sync: Callable[[], None],
    burst_s: float,
    idle_s: float,
    poll_hz: float,
    instant: bool,
    clock: Clock = time.monotonic,
) -> dict[str, Any]:
    """Idle, burst, idle; the counter read (after a synchronize) at the four boundaries; integrals."""
    poller = Poller(pynvml, handle, hz=poll_hz, instant=instant, clock=clock)
    bounds: dict[str, tuple[float, float]] = {}

    def boundary(name: str) -> None:
        sync()
        bounds[name] = (clock(), counter_j(pynvml, handle))

    poller.start()
    try:
        time.sleep(0.2)  # samples before the first boundary, so the integrals are covered
        boundary("idle_start")
        time.sleep(idle_s)
        boundary("burst_start")
        poller.ask_tight_poll()
        work(burst_s)
        boundary("burst_end")
        time.sleep(idle_s)
        boundary("idle_end")
        time.sleep(0.2)
    finally:
        poller.stop()
    power = [(t, w) for t, _, w, _ in poller.samples]
    instant_samples = [(t, w) for t, _, _, w in poller.samples if w is not None]
    windows: dict[str, dict[str, float | None]] = {}
    for name, (start, end) in {
        "burst": ("burst_start", "burst_end"),
        "burst_and_idle": ("idle_start", "idle_end"),
    }.items():
        (t0, c0), (t1, c1) = bounds[start], bounds[end]
        energy_j = c1 - c0
        usage_j = integrate_power_j(power, t0, t1)
        instant_j = integrate_power_j(instant_samples, t0, t1) if instant_samples else None
        windows[name] = {
            "seconds": t1 - t0,
            "counter_j": energy_j,
            "power_usage_j": usage_j,
            "instant_j": instant_j,
            "power_usage_gap_pct": gap_pct(usage_j, energy_j),
            "instant_gap_pct": gap_pct(instant_j, energy_j),
            "mean_power_w": energy_j / (t1 - t0) if t1 > t0 else None,
        }
    tight = poller.tight
    periods: dict[str, float | None] = {}
    for name, column in (("energy_counter", 1), ("power_usage", 2), ("instant_power", 3)):
        series = [(row[0], row[column]) for row in tight if row[column] is not None]
        intervals = change_intervals_s(series)  # type: ignore[arg-type]
        periods[name] = 1000.0 * sorted(intervals)[len(intervals) // 2] if intervals else None
    return {
        "burst_s": burst_s,
        "idle_s": idle_s,
        "poll_hz": poll_hz,
        "boundaries": {name: {"t_s": t, "counter_j": c} for name, (t, c) in bounds.items()},
        "windows": windows,
        "update_period_ms": periods,
        "tight_poll_reads": len(tight),
        "poller_error": poller.error,
        "samples": [list(row) for row in poller.samples],
    }


# ------------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES
def child_report(device: str) -> dict[str, Any]:
    """What a process started with CUDA_VISIBLE_DEVICES sees: ``NvmlMeter([0])`` (opened before CUDA, so it
    goes by the variable alone) and then torch's device 0."""
    meter = NvmlMeter([0], background=False)
    try:
        gpus = list(meter.hardware.get("gpus") or [])  # type: ignore[call-overload]
    finally:
        meter.close()
    torch_uuid = None
    if device == "cuda":
        import torch

        torch.cuda.init()
        torch_uuid = str(torch.cuda.get_device_properties(0).uuid)
    return {
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "nvml_uuid": gpus[0]["uuid"] if gpus else None,
        "torch_uuid": torch_uuid,
    }


def bare_uuid(uuid: str | None) -> str:
    return (uuid or "").removeprefix("GPU-").lower()


def check_mapping(uuid: str, device: str, *, timeout_s: float = CHILD_TIMEOUT_S) -> list[dict[str, Any]]:
    """This file as a child with CUDA_VISIBLE_DEVICES = the full UUID, and a unique prefix, side by side."""
    children: list[tuple[str, subprocess.Popen[str]]] = []
    for visible in (uuid, uuid[:12]):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": visible}
        command = [sys.executable, str(Path(__file__).resolve()), device]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        children.append((visible, process))
    deadline = time.monotonic() + timeout_s
    results: list[dict[str, Any]] = []
    for visible, process in children:
        row: dict[str, Any] = {"cuda_visible_devices": visible}
        try:
            stdout, stderr = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            lines = stdout.strip().splitlines()
            if process.returncode != 0 or not lines:
                row["error"] = f"exit {process.returncode}: {stderr.strip()[-500:]}"
            else:
                row.update(json.loads(lines[-1]))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            row["error"] = f"no answer within {timeout_s:g} s"
        except json.JSONDecodeError as err:
            row["error"] = f"JSONDecodeError: {err}"
        torch_ok = row.get("torch_uuid") is None or bare_uuid(row.get("torch_uuid")) == bare_uuid(uuid)
        row["ok"] = "error" not in row and row.get("nvml_uuid") == uuid and torch_ok
        results.append(row)
    return results


# ------------------------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class CheckSettings:
    device: str  # "cuda", or "cpu" for the dry run
    cuda_index: int = 0
    reads: int = 1000  # calls per latency figure
    burst_s: float = 8.0
    idle_s: float = 1.5
    poll_hz: float = 200.0


def torch_uuid(cuda_index: int) -> str:
    import torch

    return str(torch.cuda.get_device_properties(cuda_index).uuid)


def find_gpu(pynvml: ModuleType, settings: CheckSettings) -> tuple[Any, str]:
    """The NVML handle of CUDA device ``cuda_index``, by UUID, and how its UUID was found: CUDA's own UUID
    of the device (CUDA is initialised by then), else (the dry run, or a UUID NVML does not know, such as a
    MIG slice's) the one the meter's mapping names."""
    if settings.device == "cuda":
        try:
            uuid = "GPU-" + bare_uuid(torch_uuid(settings.cuda_index))
            return pynvml.nvmlDeviceGetHandleByUUID(uuid), "torch.cuda UUID"
        except (AttributeError, RuntimeError, pynvml.NVMLError):  # an old torch without .uuid, a MIG slice
            pass
    meter = NvmlMeter([settings.cuda_index], background=False)
    try:
        uuid = str(next(iter(meter.hardware.get("gpus") or []))["uuid"])  # type: ignore[call-overload]
    finally:
        meter.close()
    return pynvml.nvmlDeviceGetHandleByUUID(uuid), "NvmlMeter mapping"


def nvml_index_of(pynvml: ModuleType, uuid: str) -> int | None:
    """NVML's own index of the GPU with ``uuid`` (NVML numbers the machine's GPUs in PCI bus order)."""
    for index in range(int(pynvml.nvmlDeviceGetCount())):
        if _text(pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))) == uuid:
            return index
    return None


def run_check(settings: CheckSettings) -> dict[str, Any]:
    """Everything but the child processes; stops after the GPU description when there is no counter."""
    import pynvml

    result: dict[str, Any] = {
        "format": CHECK_FORMAT,
        "version": CHECK_VERSION,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": settings.device,
        "dry_run": settings.device == "cpu",
    }
    work: Callable[[float], None] = time.sleep
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if settings.device == "cuda":
        work, sync = gpu_work(settings.cuda_index)  # initialises CUDA first: NvmlMeter then maps by UUID
    pynvml.nvmlInit()
    try:
        result["system"] = system_info(pynvml)
        handle, found_by = find_gpu(pynvml, settings)
        gpu = describe_gpu(pynvml, handle)
        gpu["nvml_index"] = nvml_index_of(pynvml, gpu["uuid"])
        gpu.update(cuda_index=settings.cuda_index, found_by=found_by)
        result["gpu"] = gpu
        if not gpu["energy_counter"]:
            return result
        meter = NvmlMeter([settings.cuda_index], background=False, sample_power=False)
        try:
            meter_gpus = list(meter.hardware.get("gpus") or [])  # type: ignore[call-overload]
            gpu["meter_uuid"] = meter_gpus[0]["uuid"] if meter_gpus else None
            gpu["meter_label"] = dict(meter.labels).get(f"gpu{settings.cuda_index}")
            latency = {"meter_read": time_calls(meter.read, settings.reads, time.perf_counter).to_dict()}
        finally:
            meter.close()
        reads: dict[str, Callable[[], object]] = {
            "energy_counter": lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle),
            "power_usage": lambda: pynvml.nvmlDeviceGetPowerUsage(handle),
        }
        if gpu["instant_power_field"]:
            reads["instant_power"] = lambda: instant_power_w(pynvml, handle)
        for name, read in reads.items():
            latency[name] = time_calls(read, settings.reads, time.perf_counter).to_dict()
        result["latency_us"] = latency
        result["burst"] = run_burst(
            pynvml,
            handle,
            work=work,
            sync=sync,
            burst_s=settings.burst_s,
            idle_s=settings.idle_s,
            poll_hz=settings.poll_hz,
            instant=bool(gpu["instant_power_field"]),
        )
    finally:
        pynvml.nvmlShutdown()
    return result


if __name__ == "__main__":  # the child of check_mapping: one JSON line
    print(json.dumps(child_report(sys.argv[1] if len(sys.argv) > 1 else "cuda")))
