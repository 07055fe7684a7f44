"""Contract tests: the real NvmlMeter, auto_meter and EnergyCallback through the REAL nvidia-ml-py binding,
against the fake libnvidia-ml.so.1 of fake_nvml.c (see conftest.py). Exact joules, units, error paths,
CUDA_VISIBLE_DEVICES and NVML init/shutdown balance (checked after every test by the ``fake_nvml`` fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.meters import MEASURED, SAMPLED, HostMeter, NvmlMeter, auto_meter

GPU_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
GPU_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"
MIG_A1 = "MIG-11111111-2222-3333-4444-555555555555"
MIG_A2 = "MIG-33333333-2222-3333-4444-555555555555"
REPO = Path(__file__).resolve().parents[2]


def test_counter_gives_exact_joules_and_hardware(fake_nvml: Any) -> None:
    fake_nvml.script(
        "driver 555.42.06\n"
        f"gpu uuid={GPU_A} name=NVIDIA_H100_80GB_HBM3 energy=1000000,+5000 instant=250000 limit=700000 "
        "memory=85899345920 pci=00000000:3B:00.0\n"
    )
    meter = NvmlMeter([0], background=False)
    assert meter.read() == {"gpu0": 5.0}  # probe 1000000, base 1005000, read 1010000 mJ -> 5 J
    assert meter.read() == {"gpu0": 10.0}
    assert meter.labels == {"gpu0": MEASURED}
    assert meter.hardware == {
        "gpus": [
            {
                "index": 0,
                "name": "NVIDIA H100 80GB HBM3",
                "uuid": GPU_A,
                "pci_bus_id": "00000000:3B:00.0",
                "power_limit_w": 700.0,
                "memory_gb": 80.0,
                "energy_counter": True,
                "mig": False,
                "power_source": "NVML_FI_DEV_POWER_INSTANT",
                "energy_counter_problem": None,
            }
        ],
        "driver": "555.42.06",
    }
    assert fake_nvml.calls("nvmlDeviceGetTotalEnergyConsumption") == 4
    assert fake_nvml.calls("nvmlDeviceGetPowerUsage") == 0  # no sampling with a counter
    meter.close()
    meter.close()
    assert fake_nvml.calls("nvmlShutdown") == 1
    with pytest.raises(MeterError, match="after close"):
        meter.read()


def test_two_gpus_with_different_counters(fake_nvml: Any) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=0,+1000\ngpu uuid={GPU_B} energy=500000,+250000\n")
    with NvmlMeter([0, 1], background=False) as meter:
        assert meter.read() == {"gpu0": 1.0, "gpu1": 250.0}
        assert [gpu["uuid"] for gpu in meter.hardware["gpus"]] == [GPU_A, GPU_B]  # type: ignore[union-attr, index]


def test_counter_reset_raises_once_then_rebases(fake_nvml: Any) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=1000,2000,5000,8000,3000,+1500\n")
    with NvmlMeter([0], background=False) as meter:
        assert meter.read() == {"gpu0": 3.0}
        assert meter.read() == {"gpu0": 6.0}
        with pytest.raises(MeterError, match="went backwards on gpu0"):
            meter.read()
        assert meter.read() == {"gpu0": 7.5}


def test_gpu_lost_during_a_read_is_a_meter_error(fake_nvml: Any) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=1000,2000,GPU_IS_LOST,3000\n")
    with NvmlMeter([0], background=False) as meter:
        with pytest.raises(MeterError, match=r"gpu0 .*NVML energy read failed: GPU is lost"):
            meter.read()
        assert meter.read() == {"gpu0": 1.0}


@pytest.mark.parametrize(
    ("instant", "power_source", "watts"),
    [("250000", "NVML_FI_DEV_POWER_INSTANT", 250.0), ("NOT_SUPPORTED", "nvmlDeviceGetPowerUsage", 100.0)],
)
def test_no_counter_samples_power_instant_field_first(
    fake_nvml: Any, fake_clock: Any, instant: str, power_source: str, watts: float
) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=NOT_SUPPORTED power=100000 instant={instant}\n")
    with pytest.warns(UserWarning, match=r"no energy counter for gpu0 \(Fake GPU: not supported\)"):
        meter = NvmlMeter([0], background=False, clock=fake_clock)
    assert meter.labels == {"gpu0": SAMPLED}
    assert meter.hardware["gpus"][0]["power_source"] == power_source  # type: ignore[index]
    fake_clock.t_s = 2.0
    assert meter.read() == {"gpu0": pytest.approx(2.0 * watts)}
    assert meter.power_samples() == [(0.0, watts), (2.0, watts)]
    meter.close()


@pytest.mark.parametrize(
    ("error", "text"), [("NO_PERMISSION", "Insufficient Permissions"), ("UNKNOWN", "Unknown Error")]
)
def test_counter_error_falls_back_to_sampling(fake_nvml: Any, fake_clock: Any, error: str, text: str) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy={error} power=120000\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = NvmlMeter([0], background=False, clock=fake_clock)
    assert [str(w.message).split(":")[0:3] for w in caught] == [
        ["NVML has no energy counter for gpu0 (Fake GPU", " counter error", f" {text})"]
    ]
    fake_clock.t_s = 0.5
    assert meter.read() == {"gpu0": pytest.approx(60.0)}
    assert meter.hardware["gpus"][0]["energy_counter_problem"] == f"counter error: {text}"  # type: ignore[index]
    meter.close()


def test_transient_power_error_never_fails_a_counter_read(fake_nvml: Any) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=0,+1000 instant=250000,250000,UNKNOWN,250000\n")
    meter = NvmlMeter([0], sample_hz=1000.0, sample_power=True)
    deadline = time.monotonic() + 5.0
    while fake_nvml.calls("nvmlDeviceGetFieldValues") < 6 and time.monotonic() < deadline:
        time.sleep(0.005)
    with pytest.warns(UserWarning, match=r"power sampling failed 1 time\(s\) \(last: Unknown Error\)"):
        assert meter.read() == {"gpu0": 1.0}
    assert meter.read() == {"gpu0": 2.0}
    samples = meter.power_samples()
    assert samples and all(power_w == 250.0 for _, power_w in samples)
    meter.close()  # joins the sampler before nvmlShutdown: the fixture checks no call came after it


def test_error_after_init_shuts_nvml_down_and_is_unavailable(fake_nvml: Any) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=1000,GPU_IS_LOST\n")  # probe fine, base reading lost
    with pytest.raises(MeterUnavailable, match="NVML failed while opening the GPUs: GPU is lost"):
        NvmlMeter([0], background=False)
    assert fake_nvml.calls("nvmlInitWithFlags") == fake_nvml.calls("nvmlShutdown") == 1


def test_no_driver_is_unavailable(fake_nvml: Any) -> None:
    fake_nvml.script("init_error DRIVER_NOT_LOADED\n")
    with pytest.raises(MeterUnavailable, match="NVML could not be initialised"):
        NvmlMeter([0])


def test_auto_meter_gpu_only_and_gpu_failure_still_gives_the_host(fake_nvml: Any) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=0,+2000\n")
    meter = auto_meter([0], meter_host=False)
    assert isinstance(meter, NvmlMeter)
    assert meter.read() == {"gpu0": 2.0}
    meter.close()
    fake_nvml.script(f"gpu uuid={GPU_A} energy=1000,GPU_IS_LOST\n")
    with pytest.warns(UserWarning, match="GPU energy is not metered: NVML failed while opening the GPUs"):
        host = auto_meter([0], meter_host=True)
    assert isinstance(host, HostMeter)
    host.close()
    fake_nvml.script("init_error DRIVER_NOT_LOADED\n")
    with pytest.raises(MeterUnavailable, match="GPU: NVML could not be initialised"):
        auto_meter([0], meter_host=False)


@pytest.mark.parametrize(
    ("visible", "indices", "uuids"),
    [
        ("1", [0], [GPU_B]),
        ("1,0", [0, 1], [GPU_B, GPU_A]),
        (f"{GPU_B},{GPU_A}", [0, 1], [GPU_B, GPU_A]),
        ("GPU-bbbb,GPU-aa", [0, 1], [GPU_B, GPU_A]),
        ("MIG-1111", [0], [GPU_A]),
    ],
)
def test_cuda_visible_devices(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch, visible: str, indices: list[int], uuids: list[str]
) -> None:
    fake_nvml.script(
        f"gpu uuid={GPU_A} energy=0,+1000\ngpu uuid={GPU_B} energy=0,+1000\n"
        f"mig parent=0 uuid={MIG_A1}\nmig parent=0 uuid={MIG_A2}\n"
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*MIG mode.*")
        meter = NvmlMeter(indices, background=False)
    gpus = meter.hardware["gpus"]
    assert [gpu["uuid"] for gpu in gpus] == uuids  # type: ignore[union-attr, index]
    assert meter.read() == {f"gpu{i}": 1.0 for i in indices}
    meter.close()


def test_mig_slices_meter_the_physical_gpu_once(fake_nvml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml.script(
        f"gpu uuid={GPU_A} energy=0,+1000\nmig parent=0 uuid={MIG_A1}\nmig parent=0 uuid={MIG_A2}\n"
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{MIG_A1},MIG-3333")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = NvmlMeter([0, 1], background=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert "whole physical GPU" in messages and "same physical GPU" in messages
    assert meter.components == ["gpu0"]
    assert meter.hardware["gpus"][0]["mig"] is True  # type: ignore[index]
    meter.close()


def test_unknown_or_ambiguous_devices_are_unavailable(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.script(f"gpu uuid={GPU_A} energy=0\ngpu uuid={GPU_B} energy=0\n")
    for visible, message in [("GPU-", "ambiguous"), ("GPU-ffff", "no device"), ("0", "not visible")]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        with pytest.raises(MeterUnavailable, match=message):
            NvmlMeter([0] if visible != "0" else [1], background=False)
    assert fake_nvml.calls("nvmlInitWithFlags") == fake_nvml.calls("nvmlShutdown") == 3


def test_trainer_fit_logs_exact_epoch_energy(fake_nvml: Any, tmp_path: Path) -> None:
    """A real CPU fit with EnergyCallback(meter=NvmlMeter): each epoch is exactly 1 kWh on the counter."""
    lightning = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.demos.boring_classes import BoringModel

    from lightning_energy import EnergyCallback

    joules_per_kwh = 3.6e6
    fake_nvml.script(f"gpu uuid={GPU_A} energy=0\n")

    class CounterScript(lightning.Callback):  # runs before EnergyCallback's hooks (callback order)
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            fake_nvml.set(0, "energy", str(int(trainer.current_epoch * joules_per_kwh * 1000)))

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            fake_nvml.set(0, "energy", str(int((trainer.current_epoch + 1) * joules_per_kwh * 1000)))

    meter = NvmlMeter([0], background=False)
    logged: list[float] = []

    class Collect(lightning.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            logged.append(float(trainer.callback_metrics["energy/epoch_kwh"]))

    trainer = lightning.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[CounterScript(), EnergyCallback(meter=meter, report=False), Collect()],
    )
    trainer.fit(BoringModel())
    meter.close()
    assert logged == [pytest.approx(1.0, rel=1e-12)] * 2


def test_real_binding_finds_the_fake_through_the_loader_path(fake_nvml_build: Path, tmp_path: Path) -> None:
    """In a fresh interpreter the binding's CDLL("libnvidia-ml.so.1") finds the fake via LD_LIBRARY_PATH."""
    script = tmp_path / "nvml.txt"
    script.write_text(f"gpu uuid={GPU_A} energy=7000,+3000\n", encoding="utf-8")
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": os.pathsep.join(
            [str(fake_nvml_build.parent), os.environ.get("LD_LIBRARY_PATH", "")]
        ),
        "FAKE_NVML_SCRIPT": str(script),
        "PYTHONPATH": str(REPO),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    code = (
        "import ctypes, pynvml\n"
        "from lightning_energy.meters import auto_meter\n"
        "meter = auto_meter([0], meter_host=False)\n"
        "print(type(meter).__name__, dict(meter.read()), meter.hardware['driver'])\n"
        "meter.close()\n"
        "print('refcount', ctypes.CDLL('libnvidia-ml.so.1').fake_nvml_refcount())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["NvmlMeter {'gpu0': 3.0} 550.54.15", "refcount 0"]
