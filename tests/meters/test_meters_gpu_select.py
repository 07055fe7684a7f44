"""The pure CUDA index -> NVML device mapping."""

from __future__ import annotations

import warnings

import pytest

from lightning_energy.errors import MeterUnavailable
from lightning_energy.meters import NvmlTarget, parse_cuda_visible_devices, resolve_nvml_targets


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("0,1", [0, 1]),
        (" 3 , 1 ", [3, 1]),
        ("1,abc,2", [1]),  # parsing stops at the first invalid entry
        ("0,0", []),  # a repeated entry makes the set empty
        ("GPU-ab12,MIG-cd34", ["GPU-ab12", "MIG-cd34"]),
    ],
)
def test_parse_cuda_visible_devices(value: str | None, expected: list[int | str] | None) -> None:
    assert parse_cuda_visible_devices(value) == expected


def test_integers_and_reordering() -> None:
    targets = resolve_nvml_targets([0, 1], "3,1", cuda_device_order="PCI_BUS_ID")
    assert targets == [NvmlTarget(cuda_index=0, nvml_index=3), NvmlTarget(cuda_index=1, nvml_index=1)]


def test_unset_means_identity() -> None:
    assert resolve_nvml_targets([2], None, nvml_device_count=1) == [NvmlTarget(cuda_index=2, nvml_index=2)]


def test_uuid_prefixes_and_mig() -> None:
    targets = resolve_nvml_targets([0, 1], "GPU-ab12,MIG-cd34")
    assert targets[0] == NvmlTarget(cuda_index=0, uuids=("GPU-ab12",), uuid_is_prefix=True)
    assert targets[1] == NvmlTarget(cuda_index=1, uuids=("MIG-cd34",), uuid_is_prefix=True)


def test_device_uuid_and_pci_bus_id_take_precedence() -> None:
    targets = resolve_nvml_targets(
        [0, 1], "5,6", device_uuids={0: "ab12-34"}, pci_bus_ids={1: "00000000:3B:00.0"}
    )
    assert targets[0].uuids == ("GPU-ab12-34", "MIG-ab12-34")  # torch gives the bare UUID
    assert targets[1].pci_bus_id == "00000000:3B:00.0"
    assert resolve_nvml_targets([0], None, device_uuids={0: "MIG-x"})[0].uuids == ("MIG-x",)


def test_ambiguous_order_warns_once() -> None:
    with pytest.warns(UserWarning, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        resolve_nvml_targets([0, 1], None, nvml_device_count=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_nvml_targets([0, 1], None, cuda_device_order="PCI_BUS_ID", nvml_device_count=4)
        resolve_nvml_targets([0], None, nvml_device_count=1)


def test_errors_name_the_problem() -> None:
    with pytest.raises(MeterUnavailable, match=r"CUDA device 2 is not visible.*'0,1' exposes 2"):
        resolve_nvml_targets([2], "0,1")
    with pytest.raises(MeterUnavailable, match="exposes 0"):
        resolve_nvml_targets([0], "-1")
    with pytest.raises(ValueError, match="non-negative ints"):
        resolve_nvml_targets(["0"], None)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="must not repeat"):
        resolve_nvml_targets([1, 1], None)
    assert "PCI bus id" in NvmlTarget(cuda_index=0, pci_bus_id="x").describe()
