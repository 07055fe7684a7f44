"""CompositeMeter, auto_meter fallbacks, and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.meters import MEASURED, CompositeMeter, FakeMeter, auto_meter
from lightning_energy.meters import auto as auto_module


def test_composite_merges_readings_labels_hardware() -> None:
    gpu = FakeMeter({"gpu0": 100.0}, hardware={"gpus": [{"name": "X"}], "driver": "1"})
    host = FakeMeter(
        {"cpu": 10.0, "ram": 2.0},
        labels={"cpu": MEASURED, "ram": "estimated"},
        hardware={"host": {}, "driver": "other"},
    )
    meter = CompositeMeter([gpu, host])
    assert meter.read() == {"gpu0": 100.0, "cpu": 10.0, "ram": 2.0}
    assert meter.labels == {"gpu0": MEASURED, "cpu": MEASURED, "ram": "estimated"}
    assert meter.hardware == {
        "gpus": [{"name": "X"}],
        "driver": "1",
        "host": {},
        "FakeMeter2.driver": "other",
    }
    meter.mark("epoch_end", 3)
    meter.synchronize()
    assert gpu.marks == host.marks == [("epoch_end", 3)]
    assert gpu.synchronize_calls == host.synchronize_calls == 1
    meter.close()
    meter.close()
    assert gpu.closed and host.closed


def test_composite_rejects_colliding_components() -> None:
    with pytest.raises(ValueError, match="component 'gpu0' is reported by both 'a' and 'b'"):
        CompositeMeter({"a": FakeMeter({"gpu0": 1.0}), "b": FakeMeter({"gpu0": 2.0})})
    unlabelled = FakeMeter({"cpu": 1.0}, labels={})
    meter = CompositeMeter({"a": FakeMeter({"cpu": 1.0}, labels={}), "b": unlabelled})
    with pytest.raises(MeterError, match="component 'cpu' is reported by both 'a' and 'b'"):
        meter.read()
    with pytest.raises(ValueError, match="at least one meter"):
        CompositeMeter([])


def test_composite_names_the_failing_meter_and_closes_all() -> None:
    class BadClose(FakeMeter):
        def close(self) -> None:
            raise RuntimeError("stuck")

    good = FakeMeter({"cpu": 1.0})
    meter = CompositeMeter(
        {"gpu": FakeMeter({"gpu0": 1.0}, raise_on={0}), "bad": BadClose({"x": 1.0}), "host": good}
    )
    with pytest.raises(MeterError, match="meter 'gpu' failed: FakeMeter: injected fault"):
        meter.read()
    with pytest.raises(MeterError, match="'bad': stuck"):
        meter.close()
    assert good.closed


@pytest.fixture
def meters(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the real meters in auto.py; 'gpu'/'host' set to an exception make them unavailable."""
    made: dict[str, Any] = {"gpu": None, "host": None, "gpu_args": None}

    def nvml(indices: list[int], **kwargs: Any) -> FakeMeter:
        if made["gpu"] is not None:
            raise made["gpu"]
        made["gpu_args"] = (indices, kwargs)
        return FakeMeter({f"gpu{i}": 100.0 for i in indices})

    def host() -> FakeMeter:
        if made["host"] is not None:
            raise made["host"]
        return FakeMeter({"cpu": 10.0, "ram": 2.0})

    monkeypatch.setattr(auto_module, "NvmlMeter", nvml)
    monkeypatch.setattr(auto_module, "HostMeter", host)
    return made


def test_auto_gpu_plus_host(meters: dict[str, Any]) -> None:
    meter = auto_meter([0, 1], meter_host=True)
    assert isinstance(meter, CompositeMeter)
    assert set(meter.read()) == {"gpu0", "gpu1", "cpu", "ram"}
    assert meters["gpu_args"] == ([0, 1], {"sample_hz": 20.0})


def test_auto_gpu_only_on_other_ranks_and_host_only_on_cpu(meters: dict[str, Any]) -> None:
    assert set(auto_meter([1], meter_host=False).read()) == {"gpu1"}
    assert set(auto_meter(None, meter_host=True).read()) == {"cpu", "ram"}
    assert set(auto_meter([], meter_host=True).read()) == {"cpu", "ram"}


def test_auto_warns_when_one_part_is_missing(meters: dict[str, Any]) -> None:
    meters["host"] = MeterUnavailable("codecarbon missing")
    with pytest.warns(UserWarning, match="Host CPU/RAM energy is not metered: codecarbon missing"):
        assert set(auto_meter([0], meter_host=True).read()) == {"gpu0"}
    meters["host"] = None
    meters["gpu"] = MeterUnavailable("no driver")
    with pytest.warns(UserWarning, match="GPU energy is not metered: no driver"):
        assert set(auto_meter([0], meter_host=True).read()) == {"cpu", "ram"}


def test_auto_raises_when_nothing_is_available(meters: dict[str, Any]) -> None:
    meters["gpu"] = MeterUnavailable("no driver")
    with pytest.raises(MeterUnavailable, match=r"GPU: no driver\. Host: not requested"):
        auto_meter([0], meter_host=False)
    meters["host"] = MeterUnavailable("codecarbon missing")
    with pytest.raises(MeterUnavailable, match="Host: codecarbon missing"):
        auto_meter(None, meter_host=True)


def test_importing_meters_touches_neither_nvml_nor_codecarbon() -> None:
    code = (
        "import sys, lightning_energy.meters, lightning_energy.meters.nvml, lightning_energy.meters.host\n"
        "bad = [m for m in ('pynvml', 'codecarbon', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
