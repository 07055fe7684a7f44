"""The meter contract: EnergyMeter defaults, NullMeter, as_meter's duck-typing adapter."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

import lightning_energy.meters as meters_pkg
from lightning_energy.errors import MeterError
from lightning_energy.meters import (
    MARK_EVENTS,
    MEASURED,
    CompositeMeter,
    EnergyMeter,
    FakeMeter,
    HostMeter,
    NullMeter,
    NvmlMeter,
    RecordingMeter,
    ReplayMeter,
    as_meter,
    load_trace,
)
from lightning_energy.meters.trace import Trace, TraceReading


class Minimal(EnergyMeter):
    def read(self) -> Mapping[str, float]:
        return {"gpu0": 1.0}


class Duck:
    """Duck-typed: read and close only."""

    def __init__(self) -> None:
        self.closed = 0

    def read(self) -> dict[str, float]:
        return {"cpu": 2.0}

    def close(self) -> None:
        self.closed += 1


class RichDuck(Duck):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, int]] = []
        self.syncs = 0

    @property
    def labels(self) -> dict[str, str]:
        return {"cpu": MEASURED}

    @property
    def hardware(self) -> dict[str, object]:
        raise RuntimeError("no sensors")

    def mark(self, event: str, epoch: int) -> None:
        self.events.append((event, epoch))

    def synchronize(self) -> None:
        self.syncs += 1

    def power_samples(self) -> list[tuple[int, int]]:
        return [(1, 50)]


def test_base_class_defaults_are_no_ops() -> None:
    meter = Minimal()
    assert meter.available is True
    assert meter.labels == {} and meter.hardware == {} and meter.power_samples() == []
    assert meter.problems == []
    meter.mark("epoch_start", 0)
    meter.synchronize()
    meter.close()
    meter.close()
    assert meter.read() == {"gpu0": 1.0}
    with pytest.raises(TypeError, match="abstract"):
        EnergyMeter()  # type: ignore[abstract]


def test_every_shipped_meter_subclasses_the_base() -> None:
    for cls in (NvmlMeter, HostMeter, FakeMeter, ReplayMeter, RecordingMeter, CompositeMeter, NullMeter):
        assert issubclass(cls, EnergyMeter), cls
    assert {"EnergyMeter", "NullMeter", "as_meter", "MEASURED", "MARK_EVENTS"} <= set(meters_pkg.__all__)
    assert MARK_EVENTS == ("epoch_start", "epoch_end", "window_end")


def test_null_meter_raises_its_reason() -> None:
    meter = NullMeter("no CUDA device and meter_host=False")
    assert meter.available is False
    assert meter.reason == "no CUDA device and meter_host=False"
    with pytest.raises(MeterError, match=r"^no CUDA device and meter_host=False$"):
        meter.read()
    meter.close()
    with pytest.raises(ValueError, match="reason must be a non-empty string"):
        NullMeter("")


def test_as_meter_returns_subclasses_unchanged() -> None:
    meter = FakeMeter({"gpu0": 1.0})
    assert as_meter(meter) is meter


def test_as_meter_adapts_a_duck_with_no_op_extras() -> None:
    duck = Duck()
    meter = as_meter(duck)
    assert isinstance(meter, EnergyMeter)
    assert meter.read() == {"cpu": 2.0}
    assert meter.labels == {} and meter.hardware == {} and meter.power_samples() == []
    meter.mark("epoch_end", 3)
    meter.synchronize()
    meter.close()
    assert duck.closed == 1


def test_as_meter_forwards_extras_and_guards_a_raising_property() -> None:
    duck = RichDuck()
    meter = as_meter(duck)
    assert meter.labels == {"cpu": MEASURED}
    assert meter.hardware == {}
    assert meter.hardware == {}
    assert meter.problems == ["RichDuck.hardware raised RuntimeError: no sensors"]  # once, not twice
    meter.mark("epoch_start", 1)
    meter.synchronize()
    assert duck.events == [("epoch_start", 1)] and duck.syncs == 1
    assert meter.power_samples() == [(1.0, 50.0)]


def test_as_meter_rejects_classes_and_objects_without_read_or_close() -> None:
    with pytest.raises(
        TypeError, match=r"meter must be a meter instance, got the class Duck; did you mean Duck\(\)"
    ):
        as_meter(Duck)
    with pytest.raises(TypeError, match=r"meter must be .*; object lacks read\(\) and close\(\)"):
        as_meter(object())

    class ReadOnly:
        def read(self) -> dict[str, float]:
            return {}

    with pytest.raises(TypeError, match=r"ReadOnly lacks close\(\)"):
        as_meter(ReadOnly())


def test_composite_and_recorder_accept_duck_meters(tmp_path: Path) -> None:
    composite = CompositeMeter({"gpu": FakeMeter({"gpu0": 10.0}), "host": RichDuck()})
    assert composite.labels == {"gpu0": MEASURED, "cpu": MEASURED}
    assert composite.hardware == {"fake": True}  # the duck's raising hardware reads as {}
    assert composite.problems == ["host: RichDuck.hardware raised RuntimeError: no sensors"]
    assert composite.power_samples() == [(1.0, 50.0)]
    with pytest.raises(TypeError, match=r"meters\['x'\]: meter must be a meter instance, got the class Duck"):
        CompositeMeter({"x": Duck})
    recorder = RecordingMeter(RichDuck(), tmp_path / "t.json")
    recorder.mark("window_end", 0)
    assert recorder.read() == {"cpu": 2.0}
    recorder.close()
    assert recorder.problems == ["RichDuck.hardware raised RuntimeError: no sensors"]
    trace = load_trace(tmp_path / "t.json")
    assert trace.readings[0].event == "window_end"
    assert trace.hardware == {}


def test_power_samples_mean_the_same_in_every_meter(tmp_path: Path) -> None:
    """(t_s, W) samples since the previous call: each sample is returned once."""

    class Sampler(Minimal):
        def __init__(self) -> None:
            self.t_s = 0.0

        def power_samples(self) -> list[tuple[float, float]]:
            self.t_s += 1.0
            return [(self.t_s, 100.0)]

    recorder = RecordingMeter(Sampler(), tmp_path / "s.json")
    assert recorder.power_samples() == [(1.0, 100.0)]
    assert recorder.power_samples() == [(2.0, 100.0)]
    recorder.close()
    assert load_trace(tmp_path / "s.json").power_samples == [(1.0, 100.0), (2.0, 100.0), (3.0, 100.0)]

    trace = Trace(
        readings=[
            TraceReading(t_s=0.0, joules={"gpu0": 0.0}, event="epoch_start", epoch=0),
            TraceReading(t_s=2.0, joules={"gpu0": 200.0}, event="epoch_end", epoch=0),
            TraceReading(t_s=4.0, joules={"gpu0": 400.0}, event="epoch_end", epoch=1),
        ],
        power_samples=[(0.5, 100.0), (1.5, 100.0), (2.5, 100.0), (3.5, 100.0)],
    )
    replay = ReplayMeter(trace)
    assert replay.power_samples() == []  # nothing replayed yet
    replay.mark("epoch_start", 0)
    replay.read()
    replay.mark("epoch_end", 0)
    replay.read()
    assert replay.power_samples() == [(0.5, 100.0), (1.5, 100.0)]
    assert replay.power_samples() == []
    replay.mark("epoch_end", 1)
    replay.read()
    assert replay.power_samples() == [(2.5, 100.0), (3.5, 100.0)]


def test_replay_steps_through_repeated_window_marks() -> None:
    trace = Trace(
        readings=[
            TraceReading(t_s=1.0, joules={"gpu0": 1.0}, event="window_end", epoch=0),
            TraceReading(t_s=2.0, joules={"gpu0": 2.0}, event="window_end", epoch=0),
        ]
    )
    replay = ReplayMeter(trace)
    values = []
    for _ in range(3):
        replay.mark("window_end", 0)
        values.append(replay.read()["gpu0"])
    assert values == [1.0, 2.0, 2.0]
