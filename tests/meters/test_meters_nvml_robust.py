"""NvmlMeter robustness (issue #12, items 13-16) against the fake pynvml module (see conftest.py)."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.meters import MEASURED, SAMPLED, FakeMeter, NvmlMeter, auto_meter
from lightning_energy.meters import auto as auto_module

NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

GPU_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
GPU_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"


# -- 13: a failing counter falls back to power sampling ---------------------------------------------------


@pytest.mark.parametrize(("code", "words"), [(NVML_ERROR_NO_PERMISSION, "4"), (NVML_ERROR_UNKNOWN, "999")])
def test_counter_error_other_than_not_supported_falls_back_to_sampling(
    fake_nvml: Any, fake_clock: Any, code: int, words: str
) -> None:
    fake_nvml.add_gpu(GPU_A, counter_error=code, power_mw=100_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = NvmlMeter([0], background=False, clock=fake_clock)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert f"no energy counter for gpu0 (Fake A100: counter error: fake NVML error {words})" in messages[0]
    assert meter.labels == {"gpu0": SAMPLED}
    gpu = meter.hardware["gpus"][0]  # type: ignore[index]
    assert gpu["energy_counter"] is False
    assert gpu["energy_counter_problem"] == f"counter error: fake NVML error {words}"
    problem = f"gpu0: no energy counter (counter error: fake NVML error {words}); power is sampled"
    assert meter.problems == [problem]
    fake_clock.t_s = 2.0
    assert meter.read() == {"gpu0": pytest.approx(200.0)}  # 100 W for 2 s
    meter.close()


def test_not_supported_counter_and_no_power_is_unavailable(fake_nvml: Any) -> None:
    device = fake_nvml.add_gpu(GPU_A, counter=False)
    device.failing_power_reads = 10
    with pytest.raises(MeterUnavailable, match=r"neither an energy counter \(not supported\) nor power"):
        NvmlMeter([0], background=False)
    assert fake_nvml.init_calls == fake_nvml.shutdown_calls == 1


# -- 14: a transient power error never marks a counter epoch missing --------------------------------------


def test_transient_power_error_does_not_fail_the_counter_read(fake_nvml: Any) -> None:
    device = fake_nvml.add_gpu(GPU_A, start_mj=0, step_mj=1_000)
    meter = NvmlMeter([0], sample_hz=200.0, sample_power=True)
    device.failing_power_reads = 1
    _wait_until_failed(meter, device)
    with pytest.warns(UserWarning, match=r"power sampling failed 1 time\(s\).*bridged"):
        first = meter.read()
    assert first == {"gpu0": 1.0}
    assert meter.read() == {"gpu0": 2.0}
    assert meter.labels == {"gpu0": MEASURED}
    assert meter.problems == ["1 failed NVML power sample(s) bridged"]
    meter.close()


def _wait_until_failed(meter: NvmlMeter, device: Any) -> None:
    """Until the sampler thread has hit the scripted failures and taken a good sample after them (so it has
    recorded the failures: it does so before its next sample)."""
    deadline = time.monotonic() + 5.0
    while device.failing_power_reads and time.monotonic() < deadline:
        time.sleep(0.002)
    assert device.failing_power_reads == 0, "the sampler thread never tried"
    meter.power_samples()
    while not meter.power_samples() and time.monotonic() < deadline:
        time.sleep(0.002)


def test_sampled_gpu_bridges_a_short_gap_and_reports_a_long_one(fake_nvml: Any, fake_clock: Any) -> None:
    device = fake_nvml.add_gpu(GPU_A, counter=False, power_mw=100_000)
    with pytest.warns(UserWarning, match="no energy counter"):
        meter = NvmlMeter([0], sample_hz=1000.0, clock=fake_clock)
    device.failing_power_reads = 3  # the sampler thread hits them; the clock stands still meanwhile
    _wait_until_failed(meter, device)
    fake_clock.t_s = 0.2  # next good sample 0.2 s after the last: bridged
    with pytest.warns(UserWarning, match=r"failed 3 time\(s\).*bridged"):
        assert meter.read() == {"gpu0": pytest.approx(20.0)}  # 100 W x 0.2 s: nothing lost
    device.failing_power_reads = 2
    _wait_until_failed(meter, device)
    fake_clock.t_s = 3.2  # 3 s without a good sample: that interval cannot be trusted
    with pytest.raises(MeterError, match=r"power sampling of gpu0 failed for 3 s \(2 failed samples"):
        meter.read()
    fake_clock.t_s = 3.3
    assert meter.read() == {"gpu0": pytest.approx(330.0)}  # the meter goes on
    meter.close()


# -- 15: construction errors shut NVML down and become MeterError; close joins the sampler first ----------


def _lost_after_probe() -> Callable[[], int]:
    """An energy counter whose probe works and whose next call (the base reading) finds the GPU lost."""
    calls: list[int] = []

    def counter() -> int:
        calls.append(1)
        if len(calls) > 1:
            raise sys.modules["pynvml"].NVMLError(NVML_ERROR_GPU_IS_LOST)
        return 1_000

    return counter


def test_nvml_error_during_construction_shuts_down_and_is_translated(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A).counter_mj = _lost_after_probe()
    with pytest.raises(MeterUnavailable, match="NVML failed while opening the GPUs: fake NVML error 15"):
        NvmlMeter([0], background=False)
    assert fake_nvml.init_calls == fake_nvml.shutdown_calls == 1


def test_lost_gpu_during_construction_still_gives_the_host_meter(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.add_gpu(GPU_A).counter_mj = _lost_after_probe()
    host = FakeMeter({"cpu": 10.0})  # CodeCarbon would init the fake NVML itself
    monkeypatch.setattr(auto_module, "HostMeter", lambda: host)
    with pytest.warns(UserWarning, match="GPU energy is not metered: NVML failed while opening the GPUs"):
        meter = auto_meter([0], meter_host=True)
    assert meter is host
    assert fake_nvml.init_calls == fake_nvml.shutdown_calls == 1
    meter.close()


def test_close_joins_the_sampler_before_shutting_nvml_down(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A, counter=False)
    with pytest.warns(UserWarning, match="no energy counter"):
        meter = NvmlMeter([0], sample_hz=1000.0)
    time.sleep(0.05)
    assert meter._thread is not None
    meter.close()  # the fake's power read asserts it is never called after nvmlShutdown
    assert not meter._thread.is_alive()
    assert fake_nvml.shut_down
    with pytest.raises(MeterError, match="after close"):
        meter.sample_once()


# -- 16: instantaneous power through the field API --------------------------------------------------------


def test_sampling_uses_the_instant_power_field_when_supported(fake_nvml: Any, fake_clock: Any) -> None:
    fake_nvml.add_gpu(GPU_A, counter=False, power_mw=100_000, instant_mw=300_000)
    with pytest.warns(UserWarning, match="no energy counter"):
        meter = NvmlMeter([0], background=False, clock=fake_clock)
    assert meter.hardware["gpus"][0]["power_source"] == "NVML_FI_DEV_POWER_INSTANT"  # type: ignore[index]
    fake_clock.t_s = 1.0
    assert meter.read() == {"gpu0": pytest.approx(300.0)}  # 300 W instantaneous, not the 100 W average
    assert meter.power_samples() == [(0.0, 300.0), (1.0, 300.0)]
    meter.close()


def test_counter_gpu_samples_instant_power_for_the_recorder(fake_nvml: Any, fake_clock: Any) -> None:
    fake_nvml.add_gpu(GPU_A, power_mw=100_000, instant_mw=250_000)
    meter = NvmlMeter([0], background=False, sample_power=True, clock=fake_clock)
    assert meter.power_samples() == [(0.0, 250.0)]
    meter.close()


def test_power_usage_when_the_field_is_not_supported(fake_nvml: Any) -> None:
    fake_nvml.add_gpu(GPU_A, power_mw=100_000, instant_mw=None)
    fake_nvml.add_gpu(GPU_B, power_mw=100_000, instant_mw=200_000)
    with NvmlMeter([0, 1], background=False) as meter:
        sources = [gpu["power_source"] for gpu in meter.hardware["gpus"]]  # type: ignore[union-attr, index]
    assert sources == ["nvmlDeviceGetPowerUsage", "NVML_FI_DEV_POWER_INSTANT"]
