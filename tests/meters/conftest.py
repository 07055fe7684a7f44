"""A fake ``pynvml`` module (installed in ``sys.modules``) for the meter tests. No GPU needed."""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_UNKNOWN = 999
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_FI_DEV_POWER_INSTANT = 186
NVML_VALUE_TYPE_DOUBLE = 0
NVML_VALUE_TYPE_UNSIGNED_INT = 1


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return f"fake NVML error {self.value}"


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


@dataclass
class FakeDevice:
    uuid: str
    name: str = "Fake A100"
    pci_bus_id: str = "00000000:00:00.0"
    # Energy counter in mJ: a callable giving the next value, or None for "not supported" (pre-Volta).
    counter_mj: Callable[[], int] | None = None
    power_mw: float = 100_000.0
    power_limit_mw: int = 400_000
    memory_bytes: int = 80 * 1024**3
    mig_children: list[FakeDevice] = field(default_factory=list)
    parent: FakeDevice | None = None
    fail_reads: bool = False
    # Error code the energy counter raises (e.g. NO_PERMISSION in a restricted VM), None: no error.
    counter_error: int | None = None
    # Instantaneous power (NVML_FI_DEV_POWER_INSTANT) in mW; None: the field is not supported.
    instant_mw: float | None = None
    # The next this-many power reads (either source) fail with UNKNOWN: a transient error.
    failing_power_reads: int = 0

    @property
    def is_mig(self) -> bool:
        return self.parent is not None


class FakeNvml:
    """The state behind the fake module; tests tweak devices and inspect calls."""

    def __init__(self) -> None:
        self.devices: list[FakeDevice] = []
        self.init_calls = 0
        self.shutdown_calls = 0
        self.init_error: int | None = None
        self.driver_error: int | None = None  # nvmlSystemGetDriverVersion raises this, e.g. GPU_IS_LOST

    @property
    def shut_down(self) -> bool:
        return self.shutdown_calls >= self.init_calls > 0

    def add_gpu(
        self,
        uuid: str,
        *,
        counter: bool = True,
        start_mj: int = 1_000_000,
        step_mj: int = 5_000,
        **kwargs: Any,
    ) -> FakeDevice:
        counter_mj: Callable[[], int] | None = None
        if counter:
            counts: Iterator[int] = itertools.count(start_mj, step_mj)
            counter_mj = counts.__next__
        device = FakeDevice(
            uuid=uuid, counter_mj=counter_mj, pci_bus_id=f"00000000:{len(self.devices):02X}:00.0", **kwargs
        )
        self.devices.append(device)
        return device

    def add_mig(self, parent: FakeDevice, uuid: str) -> FakeDevice:
        child = FakeDevice(uuid=uuid, name=parent.name, parent=parent)
        parent.mig_children.append(child)
        return child

    def module(self) -> types.ModuleType:
        state = self
        mod = types.ModuleType("pynvml")
        mod.NVMLError = NVMLError  # type: ignore[attr-defined]
        mod.NVMLError_NotSupported = NVMLError_NotSupported  # type: ignore[attr-defined]
        mod.NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED  # type: ignore[attr-defined]
        mod.NVML_ERROR_NO_PERMISSION = NVML_ERROR_NO_PERMISSION  # type: ignore[attr-defined]
        mod.NVML_ERROR_UNKNOWN = NVML_ERROR_UNKNOWN  # type: ignore[attr-defined]
        mod.NVML_SUCCESS = NVML_SUCCESS  # type: ignore[attr-defined]
        mod.NVML_FI_DEV_POWER_INSTANT = NVML_FI_DEV_POWER_INSTANT  # type: ignore[attr-defined]
        mod.NVML_VALUE_TYPE_DOUBLE = NVML_VALUE_TYPE_DOUBLE  # type: ignore[attr-defined]
        mod.NVML_VALUE_TYPE_UNSIGNED_INT = NVML_VALUE_TYPE_UNSIGNED_INT  # type: ignore[attr-defined]
        mod.NVML_ERROR_NOT_FOUND = NVML_ERROR_NOT_FOUND  # type: ignore[attr-defined]
        mod.NVML_DEVICE_MIG_ENABLE = 1  # type: ignore[attr-defined]

        def all_handles() -> list[FakeDevice]:
            return state.devices + [c for d in state.devices for c in d.mig_children]

        def nvmlInit() -> None:
            if state.init_error is not None:
                raise NVMLError(state.init_error)
            state.init_calls += 1

        def nvmlShutdown() -> None:
            state.shutdown_calls += 1

        def nvmlDeviceGetHandleByUUID(uuid: str) -> FakeDevice:
            for device in all_handles():
                if device.uuid == uuid:
                    return device
            raise NVMLError(NVML_ERROR_NOT_FOUND)

        def nvmlDeviceGetHandleByPciBusId(bus_id: str) -> FakeDevice:
            for device in state.devices:
                if device.pci_bus_id == bus_id:
                    return device
            raise NVMLError(NVML_ERROR_NOT_FOUND)

        def nvmlDeviceGetTotalEnergyConsumption(device: FakeDevice) -> int:
            if device.fail_reads:
                raise NVMLError(NVML_ERROR_GPU_IS_LOST)
            if device.counter_error is not None:
                raise NVMLError(device.counter_error)
            if device.is_mig or device.counter_mj is None:
                raise NVMLError_NotSupported()
            return device.counter_mj()

        def check_power(device: FakeDevice) -> None:
            if state.shut_down:
                raise AssertionError("power read after nvmlShutdown")
            if device.fail_reads:
                raise NVMLError(NVML_ERROR_GPU_IS_LOST)
            if device.failing_power_reads > 0:
                device.failing_power_reads -= 1
                raise NVMLError(NVML_ERROR_UNKNOWN)

        def nvmlDeviceGetPowerUsage(device: FakeDevice) -> int:
            check_power(device)
            return int(device.power_mw)

        def nvmlDeviceGetFieldValues(device: FakeDevice, field_ids: list[int]) -> list[Any]:
            # Like the binding: a ctypes array of c_nvmlFieldValue_t; per-field errors in nvmlReturn.
            values = []
            for field_id in field_ids:
                if field_id != NVML_FI_DEV_POWER_INSTANT or device.instant_mw is None:
                    values.append(types.SimpleNamespace(nvmlReturn=NVML_ERROR_NOT_SUPPORTED))
                    continue
                check_power(device)
                value = types.SimpleNamespace(uiVal=int(device.instant_mw), dVal=0.0)
                values.append(
                    types.SimpleNamespace(
                        nvmlReturn=NVML_SUCCESS, valueType=NVML_VALUE_TYPE_UNSIGNED_INT, value=value
                    )
                )
            return values

        def nvmlSystemGetDriverVersion() -> str:
            if state.driver_error is not None:
                raise NVMLError(state.driver_error)
            return "550.54.15"

        def nvmlDeviceGetMigMode(device: FakeDevice) -> list[int]:
            enabled = 1 if device.mig_children else 0
            return [enabled, enabled]

        def nvmlDeviceGetMigDeviceHandleByIndex(device: FakeDevice, index: int) -> FakeDevice:
            if index >= len(device.mig_children):
                raise NVMLError(NVML_ERROR_NOT_FOUND)
            return device.mig_children[index]

        def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(device: FakeDevice) -> FakeDevice:
            assert device.parent is not None
            return device.parent

        functions: dict[str, Callable[..., Any]] = {
            "nvmlInit": nvmlInit,
            "nvmlShutdown": nvmlShutdown,
            "nvmlDeviceGetCount": lambda: len(state.devices),
            "nvmlDeviceGetHandleByIndex": lambda index: state.devices[index],
            "nvmlDeviceGetHandleByUUID": nvmlDeviceGetHandleByUUID,
            "nvmlDeviceGetHandleByPciBusId": nvmlDeviceGetHandleByPciBusId,
            "nvmlDeviceGetName": lambda device: device.name,
            "nvmlDeviceGetUUID": lambda device: device.uuid,
            "nvmlDeviceGetPciInfo_v3": lambda device: types.SimpleNamespace(busId=device.pci_bus_id.encode()),
            "nvmlDeviceGetPowerManagementDefaultLimit": lambda device: device.power_limit_mw,
            "nvmlDeviceGetMemoryInfo": lambda device: types.SimpleNamespace(total=device.memory_bytes),
            "nvmlSystemGetDriverVersion": nvmlSystemGetDriverVersion,
            "nvmlDeviceGetFieldValues": nvmlDeviceGetFieldValues,
            "nvmlDeviceGetTotalEnergyConsumption": nvmlDeviceGetTotalEnergyConsumption,
            "nvmlDeviceGetPowerUsage": nvmlDeviceGetPowerUsage,
            # pynvml returns a ctypes c_uint here, not an int
            "nvmlDeviceIsMigDeviceHandle": lambda device: types.SimpleNamespace(value=int(device.is_mig)),
            "nvmlDeviceGetMigMode": nvmlDeviceGetMigMode,
            "nvmlDeviceGetMaxMigDeviceCount": lambda device: 7,
            "nvmlDeviceGetMigDeviceHandleByIndex": nvmlDeviceGetMigDeviceHandleByIndex,
            "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": nvmlDeviceGetDeviceHandleFromMigDeviceHandle,
        }
        for name, function in functions.items():
            setattr(mod, name, function)
        return mod


class FakeClock:
    def __init__(self, t_s: float = 0.0) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """A fake pynvml in sys.modules; CUDA_VISIBLE_DEVICES unset and PCI_BUS_ID order (no ordering warning)."""
    state = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", state.module())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return state


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
