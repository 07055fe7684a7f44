"""NvmlMeter against a fake pynvml (see conftest.py)."""

from __future__ import annotations

import sys
import time
import types
import warnings
from typing import Any

import pytest

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.meters import MEASURED, SAMPLED, NvmlMeter

GPU_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
GPU_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"
GPU_C = "GPU-cccccccc-1111-2222-3333-444444444444"


def test_counter_gives_exact_joules(fake_nvml: Any) -> None:
    # The counter advances 5000 mJ per NVML call: probe, base, then one per read.
    fake_nvml.add_gpu(GPU_A, start_mj=1_000_000, step_mj=5_000)
    meter = NvmlMeter([0], background=False)
    assert meter.read() == {"gpu0": 5.0}
    assert meter.read() == {"gpu0": 10.0}
    assert meter.labels == {"gpu0": MEASURED}
    meter.close()


def test_hardware_describes_the_gpu(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A, name="NVIDIA H100 80GB HBM3", power_limit_mw=700_000)
    with NvmlMeter([0], background=False) as meter:
        hardware = meter.hardware
    assert hardware["driver"] == "550.54.15"
    assert hardware["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": GPU_A,
            "pci_bus_id": "00000000:00:00.0",
            "power_limit_w": 700.0,
            "memory_gb": 80.0,
            "energy_counter": True,
            "mig": False,
            "power_source": "nvmlDeviceGetPowerUsage",
            "energy_counter_problem": None,
        }
    ]


def test_no_counter_falls_back_to_trapezoid_power_sampling(fake_nvml: Any, fake_clock: Any) -> None:
    device = fake_nvml.add_gpu(GPU_A, counter=False, power_mw=100_000)
    with pytest.warns(UserWarning, match="no energy counter.*sampling power"):
        meter = NvmlMeter([0], background=False, clock=fake_clock)
    assert meter.labels == {"gpu0": SAMPLED}
    assert meter.hardware["gpus"][0]["energy_counter"] is False  # type: ignore[index]
    fake_clock.t_s = 1.0
    device.power_mw = 200_000
    meter.sample_once()  # 100 W -> 200 W over 1 s: 150 J
    fake_clock.t_s = 2.0
    assert meter.read() == {"gpu0": pytest.approx(150.0 + 200.0)}  # read takes a fresh sample at t=2
    assert meter.power_samples() == [(0.0, 100.0), (1.0, 200.0), (2.0, 200.0)]
    assert meter.power_samples() == []  # drained
    meter.close()


def test_sampler_thread_runs_in_background(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A, counter=False)
    with pytest.warns(UserWarning, match="no energy counter"):
        meter = NvmlMeter([0], sample_hz=100.0)
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + 5.0
    while len(samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
        samples += meter.power_samples()
    assert len(samples) >= 3
    assert meter._thread is not None and meter._thread.daemon
    meter.close()
    assert not meter._thread.is_alive()


def test_sample_power_on_counter_gpu_for_the_recorder(fake_nvml: Any, fake_clock: Any) -> None:
    fake_nvml.add_gpu(GPU_A, power_mw=250_000)
    meter = NvmlMeter([0], background=False, sample_power=True, clock=fake_clock)
    fake_clock.t_s = 0.05
    meter.sample_once()
    assert meter.power_samples() == [(0.0, 250.0), (0.05, 250.0)]
    assert meter.labels == {"gpu0": MEASURED}
    meter.close()


def test_counter_going_backwards_raises_once_then_rebases(fake_nvml: Any) -> None:
    values = iter([1_000, 2_000, 5_000, 8_000, 3_000, 4_500])  # probe, base, read, read, reset, read
    fake_nvml.add_gpu(GPU_A).counter_mj = values.__next__
    meter = NvmlMeter([0], background=False)
    assert meter.read() == {"gpu0": 3.0}
    assert meter.read() == {"gpu0": 6.0}
    with pytest.raises(MeterError, match="went backwards on gpu0"):
        meter.read()
    assert meter.read() == {"gpu0": 7.5}  # continues from the last good value: 6 J + 1.5 J
    meter.close()


def test_nvml_read_error_becomes_meter_error(fake_nvml: Any) -> None:
    device = fake_nvml.add_gpu(GPU_A)
    meter = NvmlMeter([0], background=False)
    device.fail_reads = True
    with pytest.raises(MeterError, match=r"gpu0.*NVML energy read failed"):
        meter.read()
    meter.close()


def test_close_is_idempotent_and_shuts_nvml_down_once(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A)
    meter = NvmlMeter([0], background=False)
    meter.close()
    meter.close()
    assert (fake_nvml.init_calls, fake_nvml.shutdown_calls) == (1, 1)
    with pytest.raises(MeterError, match="after close"):
        meter.read()


def test_missing_pynvml_or_driver_is_unavailable(fake_nvml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml.init_error = 9
    with pytest.raises(MeterUnavailable, match="NVML could not be initialised"):
        NvmlMeter([0])
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(MeterUnavailable, match="nvidia-ml-py"):
        NvmlMeter([0])


def test_arguments_are_validated(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A)
    with pytest.raises(ValueError, match=r"sample_hz must be in \[10.0, 1000.0\] Hz, got 5"):
        NvmlMeter([0], sample_hz=5)
    with pytest.raises(ValueError, match="cuda_indices must hold non-negative ints"):
        NvmlMeter([-1])
    with pytest.raises(MeterUnavailable, match="NVML sees only 1 GPU"):
        NvmlMeter([3])
    assert fake_nvml.init_calls == fake_nvml.shutdown_calls  # a failed constructor shuts NVML down


@pytest.mark.parametrize(
    ("visible", "indices", "expected_uuids"),
    [
        ("0,1,2", [0, 1], [GPU_A, GPU_B]),
        ("2,0", [0, 1], [GPU_C, GPU_A]),  # reordered integers
        ("1", [0], [GPU_B]),
        (f"{GPU_C},{GPU_A}", [0, 1], [GPU_C, GPU_A]),  # full UUIDs
        ("GPU-bbbb,GPU-cc", [0, 1], [GPU_B, GPU_C]),  # UUID prefixes, as CUDA allows
    ],
)
def test_cuda_visible_devices(
    fake_nvml: Any,
    monkeypatch: pytest.MonkeyPatch,
    visible: str,
    indices: list[int],
    expected_uuids: list[str],
) -> None:
    for uuid in (GPU_A, GPU_B, GPU_C):
        fake_nvml.add_gpu(uuid)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with NvmlMeter(indices, background=False) as meter:
        gpus = meter.hardware["gpus"]
    assert [gpu["uuid"] for gpu in gpus] == expected_uuids  # type: ignore[union-attr, index]
    assert [gpu["index"] for gpu in gpus] == indices  # type: ignore[union-attr, index]
    assert meter.components == [f"gpu{i}" for i in indices]


def test_invisible_or_unknown_devices_are_unavailable(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.add_gpu(GPU_A)
    fake_nvml.add_gpu(GPU_B)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(MeterUnavailable, match="not visible"):
        NvmlMeter([1])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-")  # prefix of both: ambiguous
    with pytest.raises(MeterUnavailable, match="ambiguous"):
        NvmlMeter([0])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-ffff")
    with pytest.raises(MeterUnavailable, match="no device"):
        NvmlMeter([0])


def test_mig_device_meters_the_physical_gpu_and_warns_once(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = fake_nvml.add_gpu(GPU_A)
    fake_nvml.add_mig(parent, "MIG-11111111-2222")
    fake_nvml.add_mig(parent, "MIG-33333333-4444")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-1111,MIG-33333333-4444")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = NvmlMeter([0, 1], background=False)
    messages = [str(w.message) for w in caught]
    assert sum("whole physical GPU" in m for m in messages) == 1
    assert sum("same physical GPU" in m for m in messages) == 1  # two slices, one GPU: metered once
    assert meter.components == ["gpu0"]
    gpu = meter.hardware["gpus"][0]  # type: ignore[index]
    assert gpu["uuid"] == GPU_A and gpu["mig"] is True and gpu["energy_counter"] is True
    assert meter.read() == {"gpu0": 5.0}
    meter.close()


def test_uuid_from_initialised_torch_beats_cuda_visible_devices(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for uuid in (GPU_A, GPU_B):
        fake_nvml.add_gpu(uuid)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # deliberately wrong: torch knows better
    synced: list[int] = []
    fake_cuda = types.SimpleNamespace(
        is_initialized=lambda: True,
        device_count=lambda: 1,
        get_device_properties=lambda i: types.SimpleNamespace(uuid=GPU_B.removeprefix("GPU-")),
        synchronize=synced.append,
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=fake_cuda))
    meter = NvmlMeter([0], background=False)
    assert meter.hardware["gpus"][0]["uuid"] == GPU_B  # type: ignore[index]
    meter.synchronize()
    assert synced == [0]
    meter.close()
    unsynced = NvmlMeter([0], background=False, synchronize=False)
    unsynced.synchronize()
    assert synced == [0]
    unsynced.close()


def test_pci_bus_id_lookup_through_the_pure_mapping(fake_nvml: Any) -> None:
    from lightning_energy.meters.gpu_select import NvmlTarget

    fake_nvml.add_gpu(GPU_A)
    fake_nvml.add_gpu(GPU_B)
    with NvmlMeter([0], background=False) as meter:
        handle = meter._handle_for(NvmlTarget(cuda_index=0, pci_bus_id="00000000:01:00.0"), 2)
    assert handle.uuid == GPU_B
