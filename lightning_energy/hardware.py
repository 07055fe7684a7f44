"""What a meter knows about the devices it meters: :class:`Hardware` (GPUs, driver, host), typed.

A meter's ``hardware`` property stays a plain JSON-able mapping (the meter protocol, the trace format and
the report's ``hardware`` section are public formats); this module is the one place that knows its keys.
:meth:`Hardware.from_json` reads any meter's mapping leniently -- keys it does not name, and values of the
wrong type, are kept in ``extra`` and written back unchanged -- and :meth:`Hardware.to_json` writes the
same keys the meters write. Pure Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

__all__ = ["POWER_SOURCES", "GpuInfo", "Hardware", "HostInfo", "PowerSource"]

# how a GPU's power is read when it has no energy counter (NVML names)
PowerSource = Literal["NVML_FI_DEV_POWER_INSTANT", "nvmlDeviceGetPowerUsage"]
POWER_SOURCES: tuple[PowerSource, ...] = get_args(PowerSource)

_NUMBER = (int, float)


def _fits(value: object, kind: type | tuple[type, ...]) -> bool:
    """``value`` is ``None`` or of ``kind`` (a bool is not a number)."""
    if value is None:
        return True
    if isinstance(value, bool) and kind is not bool:
        return False
    return isinstance(value, kind)


def _split(
    data: Mapping[str, Any], kinds: Mapping[str, type | tuple[type, ...]]
) -> tuple[dict[str, Any], dict[str, object]]:
    """``data``'s named keys holding a value of the right type (the fields), and the rest (``extra``)."""
    values: dict[str, Any] = {}
    extra: dict[str, object] = {}
    for key, value in data.items():
        name = str(key)
        if name in kinds and _fits(value, kinds[name]):
            values[name] = value
        else:
            extra[name] = value
    return values, extra


def _write(obj: Any) -> dict[str, object]:
    """The named fields in declaration order, then ``extra`` (a key in both keeps ``extra``'s value)."""
    out: dict[str, object] = {f.name: getattr(obj, f.name) for f in fields(obj) if f.name != "extra"}
    out.update(obj.extra)
    return out


_GPU_KINDS: dict[str, type | tuple[type, ...]] = {
    "index": int,
    "name": str,
    "uuid": str,
    "pci_bus_id": str,
    "power_limit_w": _NUMBER,
    "memory_gb": _NUMBER,
    "energy_counter": bool,
    "mig": bool,
    "power_source": str,
    "energy_counter_problem": str,
}
_HOST_KINDS: dict[str, type | tuple[type, ...]] = {
    "cpu_model": str,
    "cpu_mode": str,
    "cpu_tdp_w": _NUMBER,
    "ram_gb": _NUMBER,
    "tracking_mode": str,
    "codecarbon": str,
}


@dataclass(frozen=True)
class GpuInfo:
    """One metered GPU, as NVML reports it (every field ``None`` when unknown)."""

    index: int | None = None  # CUDA index, as torch numbers the devices
    name: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    power_limit_w: float | None = None  # the default power-management limit
    memory_gb: float | None = None  # GiB
    energy_counter: bool | None = None  # whether the energy counter is used
    mig: bool | None = None
    power_source: PowerSource | None = None
    energy_counter_problem: str | None = None  # why the counter is not used
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GpuInfo:
        values, extra = _split(data, _GPU_KINDS)
        if values.get("power_source") not in (None, *POWER_SOURCES):
            extra["power_source"] = values.pop("power_source")  # a source this version does not know
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, object]:
        return _write(self)


@dataclass(frozen=True)
class HostInfo:
    """The host CPU and RAM, as CodeCarbon sees them."""

    cpu_model: str | None = None
    cpu_mode: str | None = None  # CodeCarbon's CPU mode: "intel_rapl", "cpu_load", ...
    cpu_tdp_w: float | None = None
    ram_gb: float | None = None
    tracking_mode: str | None = None
    codecarbon: str | None = None  # CodeCarbon's version
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostInfo:
        values, extra = _split(data, _HOST_KINDS)
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, object]:
        return _write(self)


@dataclass(frozen=True)
class Hardware:
    """What a meter knows about its devices: the GPUs, the driver, the host; ``extra``: anything else
    a meter reported (written back unchanged)."""

    gpus: tuple[GpuInfo, ...] = ()
    driver: str | None = None
    host: HostInfo | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def first_gpu(self) -> GpuInfo | None:
        """The first metered GPU (the one this process trains on), or ``None``."""
        return self.gpus[0] if self.gpus else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hardware:
        """Any meter's ``hardware`` mapping; never raises on its content (unknown shapes go to ``extra``)."""
        gpus: tuple[GpuInfo, ...] = ()
        driver: str | None = None
        host: HostInfo | None = None
        extra: dict[str, object] = {}
        for key, value in data.items():
            name = str(key)
            if (
                name == "gpus"
                and isinstance(value, list)
                and value
                and all(isinstance(g, Mapping) for g in value)
            ):
                gpus = tuple(GpuInfo.from_json(g) for g in value)
            elif name == "driver" and isinstance(value, str):
                driver = value
            elif name == "host" and isinstance(value, Mapping):
                host = HostInfo.from_json(value)
            elif name != "driver" or value is not None:
                extra[name] = value
        if "driver" in data and data["driver"] is None and not gpus:
            extra["driver"] = None  # a meter that says "no driver" without GPUs: kept as it said
        return cls(gpus=gpus, driver=driver, host=host, extra=extra)

    def to_json(self) -> dict[str, object]:
        """The meters' keys: ``gpus`` and ``driver`` with GPUs, ``host`` when known, then ``extra``."""
        out: dict[str, object] = {}
        if self.gpus:
            out["gpus"] = [g.to_json() for g in self.gpus]
            out["driver"] = self.driver
        elif self.driver is not None:
            out["driver"] = self.driver
        if self.host is not None:
            out["host"] = self.host.to_json()
        out.update(self.extra)
        return out
