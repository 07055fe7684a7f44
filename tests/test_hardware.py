"""``Hardware``: a meter's ``hardware`` mapping read into types and written back with the same keys."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from report_examples import example_report

from lightning_energy.hardware import GpuInfo, Hardware, HostInfo
from lightning_energy.meter_session import MeterSession
from lightning_energy.meters import FakeMeter
from lightning_energy.pre import gpu_from_nvml
from lightning_energy.report import load_report, write_report

NVML = {
    "gpus": [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-a",
            "pci_bus_id": "00000000:01:00.0",
            "power_limit_w": 700.0,
            "memory_gb": 79.65,
            "energy_counter": True,
            "mig": False,
            "power_source": "nvmlDeviceGetPowerUsage",
            "energy_counter_problem": None,
        }
    ],
    "driver": "550.54.15",
}
HOST = {
    "host": {
        "cpu_model": "AMD EPYC 7763",
        "cpu_mode": "cpu_load",
        "cpu_tdp_w": 280.0,
        "ram_gb": 503.5,
        "tracking_mode": "machine",
        "codecarbon": "3.3.2",
    }
}


def test_the_meters_mappings_become_types() -> None:
    hardware = Hardware.from_json({**NVML, **HOST})
    gpu = hardware.first_gpu
    assert gpu is not None and gpu.name == "NVIDIA H100 80GB HBM3" and gpu.power_limit_w == 700.0
    assert gpu.energy_counter is True and gpu.extra == {}
    assert hardware.driver == "550.54.15" and hardware.extra == {}
    assert hardware.host == HostInfo("AMD EPYC 7763", "cpu_load", 280.0, 503.5, "machine", "3.3.2")


@pytest.mark.parametrize(
    "mapping",
    [
        {**NVML, **HOST},
        NVML,
        HOST,
        {},
        {"fake": True},
        {"driver": None},
        {"gpus": [], "driver": "550"},
        {"gpus": [{"name": "Fake GPU"}]},
        {"gpus": "two", "host": ["odd"], "meter.gpus": [{"name": "X"}]},
        {"gpus": [{"name": "X", "memory_gb": "80 GB", "vendor": "acme", "index": True}], "driver": 550},
    ],
)
def test_writing_back_keeps_every_key_and_value_the_meter_gave(mapping: dict[str, Any]) -> None:
    written = Hardware.from_json(mapping).to_json()
    for key, value in mapping.items():
        if key == "gpus" and isinstance(value, list) and value:
            # a GPU entry keeps what the meter gave; the fields it left out are added as null
            for given, out in zip(value, written["gpus"], strict=True):  # type: ignore[call-overload]
                assert {k: out[k] for k in given} == given
                assert set(out) - set(given) <= set(GpuInfo.__dataclass_fields__) and all(
                    out[k] is None for k in set(out) - set(given)
                )
        else:
            assert written[key] == value
    added = set(written) - set(mapping)  # fields may only be added: a GPU list always says its driver
    assert added <= {"driver"} and all(written[k] is None for k in added)


def test_values_of_the_wrong_type_are_kept_aside_not_read() -> None:
    gpu = GpuInfo.from_json({"name": 7, "memory_gb": "80 GB", "index": True, "mig": 1})
    assert (gpu.name, gpu.memory_gb, gpu.index, gpu.mig) == (None, None, None, None)
    assert gpu.extra == {"name": 7, "memory_gb": "80 GB", "index": True, "mig": 1}


def test_the_report_writes_and_reads_the_same_hardware(tmp_path: Path) -> None:
    hardware = Hardware.from_json({**NVML, **HOST})
    report = replace(example_report(num_epochs=2), hardware=hardware)
    data = json.loads(write_report(tmp_path, report).read_text())
    assert data["hardware"] == {**NVML, **HOST}
    assert load_report(tmp_path).hardware == hardware


def test_pre_reads_a_gpu_info_as_it_reads_the_mapping() -> None:
    gpu = NVML["gpus"][0]  # type: ignore[index]
    assert gpu_from_nvml(GpuInfo.from_json(gpu)) == gpu_from_nvml(gpu)


def test_the_session_gives_the_meters_hardware_typed_or_empty() -> None:
    warned: list[str] = []
    session = MeterSession(
        FakeMeter(powers_w={"gpu0": 100.0}, hardware=NVML), lambda cause, message: warned.append(message)
    )
    assert session.hardware() == Hardware.from_json(NVML)

    class Broken(FakeMeter):
        @property
        def hardware(self) -> dict[str, object]:
            raise RuntimeError("no sensors")

    broken = MeterSession(Broken(powers_w={"gpu0": 100.0}), lambda cause, message: warned.append(message))
    assert broken.hardware() == Hardware() and Hardware().to_json() == {}
    assert any("no sensors" in w for w in warned)


def test_pre_on_cpu_does_not_ask_for_the_hardware() -> None:
    """The host meter may still be opening in the background: CPU training must not wait for it."""
    from lightning_energy.budget import Budget
    from lightning_energy.fit_estimate import estimate_before_training

    def never() -> Hardware:
        raise AssertionError("hardware was read on CPU")

    pre, line, failed = estimate_before_training(None, None, False, never, False, Budget(max_epochs=2))  # type: ignore[arg-type]
    assert pre.skipped is not None and "CPU" in line and not failed


def test_a_power_source_outside_the_vocabulary_is_kept_aside() -> None:
    known = GpuInfo.from_json({"power_source": "NVML_FI_DEV_POWER_INSTANT"})
    assert known.power_source == "NVML_FI_DEV_POWER_INSTANT" and known.extra == {}
    odd = GpuInfo.from_json({"power_source": "smi"})
    assert odd.power_source is None and odd.extra == {"power_source": "smi"}
    assert odd.to_json()["power_source"] == "smi"
