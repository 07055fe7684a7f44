"""FakeMeter, RecordingMeter -> trace file -> ReplayMeter, and the trace format."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lightning_energy.errors import MeterError
from lightning_energy.meters import (
    SAMPLED,
    FakeMeter,
    RecordingMeter,
    ReplayMeter,
    TraceFormatError,
    load_trace,
)

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


def test_fake_meter_constant_powers_on_a_virtual_clock() -> None:
    meter = FakeMeter({"gpu0": 100.0, "cpu": 10.0})
    assert meter.read() == {"gpu0": 100.0, "cpu": 10.0}
    meter.advance(2.0)
    assert meter.read() == {"gpu0": 400.0, "cpu": 40.0}
    still = FakeMeter({"gpu0": 50.0}, seconds_per_read=0.0)
    assert still.read() == {"gpu0": 0.0}
    still.advance(3.0)
    assert still.read() == {"gpu0": 150.0}


def test_fake_meter_scripted_readings_and_faults() -> None:
    meter = FakeMeter(
        readings=[{"gpu0": 1.0}, {"gpu0": 2.0}, {"gpu0": 3.0}, {"gpu0": 4.0}], raise_on={1}, nan_on={2}
    )
    assert meter.read() == {"gpu0": 1.0}
    with pytest.raises(MeterError, match="injected fault on read 1"):
        meter.read()
    assert math.isnan(meter.read()["gpu0"])
    assert meter.read() == {"gpu0": 4.0}
    assert meter.read() == {"gpu0": 4.0}  # the last reading repeats
    reset = FakeMeter({"gpu0": 10.0}, reset_on={2})
    assert [reset.read()["gpu0"] for _ in range(4)] == [10.0, 20.0, 0.0, 10.0]


def test_fake_meter_validates() -> None:
    with pytest.raises(ValueError, match="exactly one of powers_w"):
        FakeMeter()
    with pytest.raises(
        ValueError, match=r"powers_w\['gpu0'\] must be a non-negative number of watts, got -1"
    ):
        FakeMeter({"gpu0": -1})
    with pytest.raises(ValueError, match="labels must be one of"):
        FakeMeter({"gpu0": 1.0}, labels={"gpu0": "guessed"})


def _record(path: Path) -> FakeMeter:
    inner = FakeMeter({"gpu0": 100.0, "cpu": 10.0}, labels={"gpu0": SAMPLED, "cpu": "estimated"})
    meter = RecordingMeter(inner, path, meta={"workload": "unit"})
    for epoch in range(3):
        meter.mark("epoch_start", epoch)
        meter.read()
        meter.read()  # an intra-epoch read (live bar)
        meter.mark("epoch_end", epoch)
        meter.read()
    meter.meta["epochs"] = 3
    meter.close()
    return inner


def test_recording_writes_a_versioned_trace(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    inner = _record(path)
    assert inner.closed and inner.marks[:2] == [("epoch_start", 0), ("epoch_end", 0)]
    raw = json.loads(path.read_text())
    assert raw["format"] == "lightning_energy.trace" and raw["version"] == 1
    assert raw["meta"] == {"workload": "unit", "epochs": 3}
    assert raw["labels"] == {"gpu0": "sampled", "cpu": "estimated"}
    assert raw["readings"][0] == {
        "t_s": raw["readings"][0]["t_s"],
        "joules": {"gpu0": 100.0, "cpu": 10.0},
        "event": "epoch_start",
        "epoch": 0,
    }
    assert raw["readings"][1]["event"] is None and raw["readings"][1]["epoch"] is None
    assert len(raw["readings"]) == 9
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # the temporary file was renamed away


def test_replay_with_marks_returns_the_boundary_readings(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _record(path)
    replay = ReplayMeter(path)
    assert replay.labels["gpu0"] == SAMPLED
    replay.mark("epoch_start", 1)
    assert replay.read() == {"gpu0": 400.0, "cpu": 40.0}
    assert replay.read() == {"gpu0": 400.0, "cpu": 40.0}  # intra-epoch: the last boundary
    replay.mark("epoch_end", 1)
    assert replay.read() == {"gpu0": 600.0, "cpu": 60.0}
    replay.mark("epoch_end", 7)
    with pytest.raises(MeterError, match="no reading for epoch_end of epoch 7"):
        replay.read()


def test_replay_without_marks_steps_through(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _record(path)
    replay = ReplayMeter(str(path))
    values = [replay.read()["gpu0"] for _ in range(9)]
    assert values == [100.0 * n for n in range(1, 10)]
    with pytest.raises(MeterError, match="exhausted after 9"):
        replay.read()


def test_a_failed_read_is_recorded_and_replayed_as_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "faulty.json"
    meter = RecordingMeter(FakeMeter({"gpu0": 1.0}, raise_on={1}, nan_on={2}), path)
    meter.mark("epoch_start", 0)
    meter.read()
    meter.mark("epoch_end", 0)
    with pytest.raises(MeterError):
        meter.read()
    meter.read()  # NaN: returned as is, recorded as a failure
    meter.close()
    trace = load_trace(path)
    assert trace.readings[1].joules is None and "injected fault" in (trace.readings[1].error or "")
    assert trace.readings[2].error == "non-finite reading for gpu0"
    replay = ReplayMeter(trace)
    replay.mark("epoch_end", 0)
    with pytest.raises(MeterError, match="recorded read failed"):
        replay.read()


def test_power_samples_are_recorded(tmp_path: Path) -> None:
    class Sampling(FakeMeter):
        def power_samples(self) -> list[tuple[float, float]]:
            return [(self.time_s, 123.0)]

    meter = RecordingMeter(Sampling({"gpu0": 123.0}), tmp_path / "p.json")
    meter.read()
    meter.read()
    meter.close()
    assert load_trace(tmp_path / "p.json").power_samples == [(1.0, 123.0), (2.0, 123.0), (2.0, 123.0)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"format": "other", "version": 1, "readings": []}', "'format' must be"),
        ('{"format": "lightning_energy.trace", "version": 2, "readings": []}', "unsupported trace version 2"),
        ('{"format": "lightning_energy.trace", "version": 1}', "'readings' must be a list"),
        (
            '{"format": "lightning_energy.trace", "version": 1, "readings": '
            '[{"t_s": 0, "joules": {"gpu0": "x"}}]}',
            r"readings\[0\].joules\['gpu0'\] must be a finite number",
        ),
        (
            '{"format": "lightning_energy.trace", "version": 1, "readings": '
            '[{"t_s": 0, "joules": {}, "event": "epoch_middle", "epoch": 0}]}',
            "event must be null or one of",
        ),
        (
            '{"format": "lightning_energy.trace", "version": 1, "readings": [{"t_s": 0, "joules": null}]}',
            "no 'error' says why",
        ),
    ],
)
def test_load_trace_errors_are_clear(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TraceFormatError, match=message) as info:
        load_trace(path)
    assert "bad.json" in str(info.value)


def test_replay_rejects_empty_and_wrong_types() -> None:
    with pytest.raises(ValueError, match="no readings"):
        ReplayMeter({"format": "lightning_energy.trace", "version": 1, "readings": []})
    with pytest.raises(TypeError, match="trace_or_path must be"):
        ReplayMeter(42)  # type: ignore[arg-type]


def test_synthetic_trace_replays(tmp_path: Path) -> None:
    trace = load_trace(TRACES / "synthetic_steady.json")
    assert trace.meta["synthetic"] is True
    replay = ReplayMeter(trace)
    energies: list[float] = []
    for epoch in range(trace.meta["epochs"]):
        replay.mark("epoch_start", epoch)
        start: dict[str, Any] = dict(replay.read())
        replay.mark("epoch_end", epoch)
        end = replay.read()
        energies.append(end["gpu0"] - start["gpu0"])
    assert all(e > 0 for e in energies)
    assert max(energies) / min(energies) < 1.2  # steady
