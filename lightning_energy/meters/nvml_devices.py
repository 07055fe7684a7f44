"""NVML device lookup and queries for :class:`~lightning_energy.meters.NvmlMeter`.

Every function takes the ``pynvml`` module as its first argument (imported lazily by the meter) and raises the
binding's ``NVMLError`` unless it says otherwise; the meter translates those to
:class:`~lightning_energy.errors.MeterError`. Names are those of ``nvidia-ml-py`` (module ``pynvml``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

from lightning_energy.errors import MeterUnavailable
from lightning_energy.meters.gpu_select import NvmlTarget

POWER_INSTANT_FIELD: Final = "NVML_FI_DEV_POWER_INSTANT"
POWER_USAGE_FUNCTION: Final = "nvmlDeviceGetPowerUsage"

# c_nvmlValue_t member per NVML_VALUE_TYPE_* constant (pynvml's names).
_VALUE_MEMBERS = (
    ("NVML_VALUE_TYPE_DOUBLE", "dVal"),
    ("NVML_VALUE_TYPE_UNSIGNED_INT", "uiVal"),
    ("NVML_VALUE_TYPE_UNSIGNED_LONG", "ulVal"),
    ("NVML_VALUE_TYPE_UNSIGNED_LONG_LONG", "ullVal"),
    ("NVML_VALUE_TYPE_SIGNED_LONG_LONG", "sllVal"),
    ("NVML_VALUE_TYPE_SIGNED_INT", "siVal"),
    ("NVML_VALUE_TYPE_UNSIGNED_SHORT", "usVal"),
)


def as_str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    return str(value)


def is_not_supported(pynvml: ModuleType, err: BaseException) -> bool:
    return getattr(err, "value", None) == pynvml.NVML_ERROR_NOT_SUPPORTED


def optional(pynvml: ModuleType, get: Callable[[], Any]) -> Any:
    """Value of an informational NVML query, ``None`` when the GPU does not support it."""
    try:
        return get()
    except pynvml.NVMLError:
        return None


def handle_for(pynvml: ModuleType, target: NvmlTarget, nvml_count: int) -> Any:
    """The NVML handle of one CUDA device. Raises MeterUnavailable when NVML cannot find it."""
    try:
        if target.nvml_index is not None:
            if target.nvml_index >= nvml_count:
                raise MeterUnavailable(f"{target.describe()}: NVML sees only {nvml_count} GPU(s)")
            return pynvml.nvmlDeviceGetHandleByIndex(target.nvml_index)
        if target.pci_bus_id is not None:
            return pynvml.nvmlDeviceGetHandleByPciBusId(target.pci_bus_id)
        for uuid in target.uuids:
            try:
                return pynvml.nvmlDeviceGetHandleByUUID(uuid)
            except pynvml.NVMLError:
                continue
        if target.uuid_is_prefix:
            return _handle_by_uuid_prefix(pynvml, target, nvml_count)
    except pynvml.NVMLError as err:
        raise MeterUnavailable(f"{target.describe()}: NVML cannot find it: {err}") from err
    raise MeterUnavailable(f"{target.describe()}: NVML knows no device with that UUID")


def _handle_by_uuid_prefix(pynvml: ModuleType, target: NvmlTarget, nvml_count: int) -> Any:
    """CUDA accepts a unique UUID prefix; scan GPUs (and their MIG devices for ``MIG-``)."""
    prefix = target.uuids[0]
    matches: list[Any] = []
    for index in range(nvml_count):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        if prefix.startswith("GPU-"):
            if as_str(pynvml.nvmlDeviceGetUUID(handle)).startswith(prefix):
                matches.append(handle)
            continue
        for mig_handle in mig_handles(pynvml, handle):
            if as_str(pynvml.nvmlDeviceGetUUID(mig_handle)).startswith(prefix):
                matches.append(mig_handle)
    if len(matches) != 1:
        found = "no device" if not matches else f"{len(matches)} devices (ambiguous prefix)"
        raise MeterUnavailable(f"{target.describe()}: the UUID prefix matches {found}")
    return matches[0]


def is_mig_handle(pynvml: ModuleType, handle: Any) -> bool:
    try:
        flag = pynvml.nvmlDeviceIsMigDeviceHandle(handle)
    except pynvml.NVMLError:
        return False
    return bool(getattr(flag, "value", flag))  # the binding returns a ctypes c_uint


def mig_mode_enabled(pynvml: ModuleType, handle: Any) -> bool:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:
        return False
    return bool(current == pynvml.NVML_DEVICE_MIG_ENABLE)


def mig_handles(pynvml: ModuleType, handle: Any) -> list[Any]:
    if not mig_mode_enabled(pynvml, handle):
        return []
    handles: list[Any] = []
    try:
        count = int(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle))
    except pynvml.NVMLError:
        return []
    for index in range(count):
        try:
            handles.append(pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index))
        except pynvml.NVMLError:
            continue
    return handles


def has_instant_power(pynvml: ModuleType) -> bool:
    """Whether this binding offers the instantaneous power field (nvidia-ml-py 12.535 and newer)."""
    return hasattr(pynvml, POWER_INSTANT_FIELD) and hasattr(pynvml, "nvmlDeviceGetFieldValues")


def instant_power_mw(pynvml: ModuleType, handle: Any) -> float:
    """Instantaneous power in mW, through ``nvmlDeviceGetFieldValues([NVML_FI_DEV_POWER_INSTANT])``.

    ``nvmlDeviceGetPowerUsage`` is a one-second average on Ampere-and-newer data-centre GPUs; the field is
    not. A per-field failure raises the binding's NVMLError with the field's return code.
    """
    (value,) = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise pynvml.NVMLError(value.nvmlReturn)
    return field_number(pynvml, value)


def field_number(pynvml: ModuleType, field_value: Any) -> float:
    """The number held by a ``c_nvmlFieldValue_t``, read through the member its ``valueType`` names."""
    for constant, member in _VALUE_MEMBERS:
        if field_value.valueType == getattr(pynvml, constant):
            return float(getattr(field_value.value, member))
    raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
