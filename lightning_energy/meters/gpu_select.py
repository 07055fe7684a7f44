"""Which NVML device is CUDA device ``k`` of *this* process? Pure functions, no NVML, no torch.

CUDA numbers the devices a process sees ``0..n-1``; NVML numbers all devices of the machine in PCI bus order.
The two differ when ``CUDA_VISIBLE_DEVICES`` hides or reorders devices, and also when CUDA enumerates
"fastest first" (the default ``CUDA_DEVICE_ORDER=FASTEST_FIRST``) on a machine with mixed GPUs. Ways to tell,
best first:

1. The device UUID as CUDA reports it (``torch.cuda.get_device_properties(k).uuid``): unambiguous.
2. The PCI bus id of the device: unambiguous.
3. ``CUDA_VISIBLE_DEVICES``: entry ``k`` is a physical index (exact under ``CUDA_DEVICE_ORDER=PCI_BUS_ID``),
   a ``GPU-...`` UUID or a ``MIG-...`` UUID; CUDA accepts any unique UUID prefix, and so do we.
4. Nothing set: CUDA device ``k`` is NVML device ``k`` (exact under ``PCI_BUS_ID`` order or with one GPU).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lightning_energy.errors import MeterUnavailable

UUID_PREFIXES = ("GPU-", "MIG-")


@dataclass(frozen=True)
class NvmlTarget:
    """How to find the NVML handle of one CUDA device. Exactly one of the three lookups is set."""

    cuda_index: int
    nvml_index: int | None = None
    uuids: tuple[str, ...] = ()
    """UUIDs to try in order (``GPU-...``/``MIG-...``), possibly a prefix when ``uuid_is_prefix``."""
    uuid_is_prefix: bool = False
    pci_bus_id: str | None = None

    def describe(self) -> str:
        if self.nvml_index is not None:
            return f"CUDA device {self.cuda_index} -> NVML index {self.nvml_index}"
        if self.uuids:
            return f"CUDA device {self.cuda_index} -> UUID {' or '.join(self.uuids)}"
        return f"CUDA device {self.cuda_index} -> PCI bus id {self.pci_bus_id}"


def parse_cuda_visible_devices(value: str | None) -> list[int | str] | None:
    """Parse ``CUDA_VISIBLE_DEVICES`` the way CUDA does.

    Returns ``None`` when unset (all devices visible). Entries are physical indices (``int``) or UUIDs
    (``str``, ``GPU-``/``MIG-`` prefixed). Parsing stops at the first invalid or negative entry
    (so ``"-1"`` hides everything); a repeated entry makes the set empty.
    """
    if value is None:
        return None
    entries: list[int | str] = []
    for raw in value.split(","):
        element = raw.strip()
        entry: int | str
        if element.startswith(UUID_PREFIXES):
            entry = element
        else:
            digits = ""
            for char in element:
                if not char.isdigit():
                    break
                digits += char
            if not digits:
                break
            entry = int(digits)
        if entry in entries:
            return []
        entries.append(entry)
    return entries


def _uuid_candidates(uuid: str) -> tuple[str, ...]:
    """torch reports the bare UUID (no ``GPU-``/``MIG-`` prefix); NVML wants the prefix."""
    uuid = uuid.strip()
    if uuid.startswith(UUID_PREFIXES):
        return (uuid,)
    return (f"GPU-{uuid}", f"MIG-{uuid}")


def resolve_nvml_targets(
    cuda_indices: Sequence[int],
    cuda_visible_devices: str | None,
    *,
    cuda_device_order: str | None = None,
    device_uuids: Mapping[int, str] | None = None,
    pci_bus_ids: Mapping[int, str] | None = None,
    nvml_device_count: int | None = None,
) -> list[NvmlTarget]:
    """Map CUDA device indices of this process to NVML lookups.

    Args:
        cuda_indices: CUDA device indices (as torch numbers them) this process trains on.
        cuda_visible_devices: the value of ``CUDA_VISIBLE_DEVICES`` (``None`` when unset).
        cuda_device_order: the value of ``CUDA_DEVICE_ORDER`` (``None`` when unset = ``FASTEST_FIRST``).
        device_uuids: per CUDA index, the UUID CUDA reports (with or without ``GPU-``); preferred.
        pci_bus_ids: per CUDA index, the PCI bus id (``"00000000:3B:00.0"``); used when no UUID is known.
        nvml_device_count: number of GPUs NVML sees; only used to warn about an ambiguous index mapping.

    Raises:
        ValueError: a CUDA index is not a non-negative int, or is repeated.
        MeterUnavailable: a CUDA index is not visible under ``CUDA_VISIBLE_DEVICES``.
    """
    seen: set[int] = set()
    for index in cuda_indices:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"cuda_indices must hold non-negative ints, got {list(cuda_indices)!r}")
        if index in seen:
            raise ValueError(f"cuda_indices must not repeat a device, got {list(cuda_indices)!r}")
        seen.add(index)

    device_uuids = device_uuids or {}
    pci_bus_ids = pci_bus_ids or {}
    visible = parse_cuda_visible_devices(cuda_visible_devices)
    pci_order = (cuda_device_order or "").strip().upper() == "PCI_BUS_ID"
    order_is_ambiguous = not pci_order and (nvml_device_count is None or nvml_device_count > 1)
    targets: list[NvmlTarget] = []
    warned_order = False
    for index in cuda_indices:
        uuid = device_uuids.get(index)
        if uuid:
            targets.append(NvmlTarget(cuda_index=index, uuids=_uuid_candidates(uuid)))
            continue
        pci_bus_id = pci_bus_ids.get(index)
        if pci_bus_id:
            targets.append(NvmlTarget(cuda_index=index, pci_bus_id=pci_bus_id))
            continue
        if visible is not None:
            if index >= len(visible):
                raise MeterUnavailable(
                    f"CUDA device {index} is not visible to this process: "
                    f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} exposes {len(visible)} device(s)"
                )
            entry = visible[index]
            if isinstance(entry, str):
                # CUDA accepts any unique prefix of a UUID; a full one is simply the longest prefix.
                targets.append(NvmlTarget(cuda_index=index, uuids=(entry,), uuid_is_prefix=True))
                continue
            physical = entry
        else:
            physical = index
        if order_is_ambiguous and not warned_order and nvml_device_count != 1:
            warnings.warn(
                "Mapping CUDA device indices to NVML by position: exact only with "
                "CUDA_DEVICE_ORDER=PCI_BUS_ID or identical GPUs. Set CUDA_DEVICE_ORDER=PCI_BUS_ID (or "
                "initialise CUDA before creating the meter so the device UUID is used) if your GPUs differ.",
                stacklevel=2,
            )
            warned_order = True
        targets.append(NvmlTarget(cuda_index=index, nvml_index=physical))
    return targets
