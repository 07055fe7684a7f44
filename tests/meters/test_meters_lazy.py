"""BackgroundMeter / LazyHostMeter: opened in a thread, a zero baseline first, no energy lost."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from typing import Any

import pytest

from lightning_energy.errors import MeterError
from lightning_energy.meters import CompositeMeter, FakeMeter, auto_meter
from lightning_energy.meters import auto as auto_module
from lightning_energy.meters.lazy import BackgroundMeter, LazyHostMeter


class Clock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


class ModelMeter:
    """A host-like meter: 10 W from the moment it counts from (its construction unless told otherwise)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start_s = clock()
        self.closed = False
        self.count_from_calls: list[float] = []

    def count_from(self, start_s: float) -> None:
        self.count_from_calls.append(start_s)
        self.start_s = start_s

    def read(self) -> Mapping[str, float]:
        return {"cpu": 10.0 * (self.clock() - self.start_s), "ram": 0.0}

    @property
    def labels(self) -> Mapping[str, str]:
        return {"cpu": "estimated", "ram": "estimated"}

    @property
    def hardware(self) -> Mapping[str, object]:
        return {"host": {"cpu_model": "Fake"}}

    def close(self) -> None:
        self.closed = True


def _gated(clock: Clock) -> tuple[threading.Event, dict[str, ModelMeter], Any]:
    """An ``open`` that waits for ``gate`` and is constructed at the clock's time then."""
    gate, made = threading.Event(), {}

    def open_meter() -> ModelMeter:
        assert gate.wait(10)
        made["meter"] = ModelMeter(clock)
        return made["meter"]

    return gate, made, open_meter


def test_the_first_reading_is_a_zero_baseline_and_the_count_starts_there() -> None:
    clock = Clock()
    gate, made, open_meter = _gated(clock)
    meter = BackgroundMeter(open_meter, ("cpu", "ram"), name="host", clock=clock)
    clock.t_s = 1.0
    assert meter.read() == {"cpu": 0.0, "ram": 0.0}  # not open yet: returns at once
    assert not meter.ready
    clock.t_s = 3.0  # the meter opens two seconds after the baseline
    gate.set()
    clock.t_s = 5.0
    # the next reading waits for the meter, which counts from the baseline (1 s): 4 s x 10 W
    assert meter.read() == {"cpu": pytest.approx(40.0), "ram": 0.0}
    assert made["meter"].count_from_calls == [1.0]
    assert meter.labels == {"cpu": "estimated", "ram": "estimated"}
    assert meter.hardware == {"host": {"cpu_model": "Fake"}}
    meter.close()
    assert made["meter"].closed and meter.problems == []


def test_a_meter_open_before_the_first_reading_is_read_directly() -> None:
    clock = Clock()
    gate, made, open_meter = _gated(clock)
    gate.set()
    meter = BackgroundMeter(open_meter, ("cpu", "ram"), name="host", clock=clock)
    assert meter.hardware == {"host": {"cpu_model": "Fake"}}  # waits for it
    assert meter.ready
    clock.t_s = 2.0
    assert meter.read() == {"cpu": pytest.approx(20.0), "ram": 0.0}
    assert made["meter"].count_from_calls == []


def test_a_meter_that_fails_to_open_raises_at_the_next_reading_with_the_reason() -> None:
    def broken() -> ModelMeter:
        raise RuntimeError("psutil is broken")

    meter = BackgroundMeter(broken, ("cpu", "ram"), name="Host CPU/RAM")
    meter.close()  # waits for the thread; nothing to close
    with pytest.raises(MeterError, match="psutil is broken"):
        meter.read()  # never a zero baseline once the failure is known: the epochs are missing, not zero
    assert meter.problems == ["Host CPU/RAM meter could not be opened: psutil is broken"]
    assert meter.labels == {} and meter.hardware == {}


def test_beside_a_gpu_meter_a_failed_host_reads_nothing_after_one_warning() -> None:
    gate = threading.Event()

    def broken() -> ModelMeter:
        assert gate.wait(10)
        raise RuntimeError("no RAM size")

    host = BackgroundMeter(broken, ("cpu", "ram"), name="Host CPU/RAM", drop_on_failure=True)
    assert host.labels == {"cpu": "unknown", "ram": "unknown"}  # does not wait before the first reading
    composite = CompositeMeter([FakeMeter(readings=[{"gpu0": 1.0}, {"gpu0": 2.0}, {"gpu0": 3.0}]), host])
    assert composite.read() == {"gpu0": 1.0, "cpu": 0.0, "ram": 0.0}
    gate.set()
    with pytest.warns(UserWarning, match="Host CPU/RAM energy is not metered: .*no RAM size"):
        assert composite.read() == {"gpu0": 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert composite.read() == {"gpu0": 3.0}


def test_auto_meter_opens_the_host_lazily_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(
        auto_module,
        "LazyHostMeter",
        lambda **kw: BackgroundMeter(lambda: ModelMeter(clock), ("cpu", "ram"), name="host", **kw),
    )
    meter = auto_meter(None, meter_host=True, lazy_host=True)
    assert isinstance(meter, BackgroundMeter)
    monkeypatch.setattr(auto_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(Exception, match="needs CodeCarbon"):
        auto_meter(None, meter_host=True, lazy_host=True)


def test_lazy_host_meter_opens_the_real_host_meter() -> None:
    pytest.importorskip("codecarbon")
    meter = LazyHostMeter(use_rapl=False, cpu_power_w=10.0, ram_power_w=5.0)
    first = meter.read()
    assert first == {"cpu": 0.0, "ram": 0.0} or set(first) == {"cpu", "ram"}  # open already, or the baseline
    second = meter.read()
    assert set(second) == {"cpu", "ram"} and second["ram"] >= first["ram"]
    assert meter.labels == {"cpu": "estimated", "ram": "estimated"}
    assert meter.hardware["host"]["cpu_mode"] == "cpu_load"  # type: ignore[index]
    meter.close()


def test_the_callbacks_session_opens_the_host_meter_in_the_background() -> None:
    pytest.importorskip("codecarbon")
    from lightning_energy.meter_session import MeterSession

    session = MeterSession.open(None, [], meter_host=True, warn=lambda cause, message: None)
    assert isinstance(session.meter, LazyHostMeter) and session.owned
    assert session.read().joules is not None
    session.close()


def test_a_fit_with_a_meter_still_opening_loses_no_energy(tmp_path: Any) -> None:
    """The callback's first reading is the zero baseline; the meter opens later and counts from it."""
    import time

    import lightning.pytorch as pl
    from lightning.pytorch.demos.boring_classes import BoringModel

    from lightning_energy import EnergyCallback
    from lightning_energy.report import load_report

    opened: list[ModelMeter] = []

    class Recorded(ModelMeter):
        last_j = 0.0

        def read(self) -> Mapping[str, float]:
            reading = super().read()
            self.last_j = reading["cpu"]
            return reading

    fit_started = threading.Event()

    class Gate(pl.Callback):  # after EnergyCallback: its fit-start reading has been taken
        def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            fit_started.set()

    def slow_open() -> ModelMeter:
        assert fit_started.wait(30)
        time.sleep(0.2)  # still opening after the fit started
        opened.append(Recorded(time.monotonic))  # type: ignore[arg-type]
        return opened[-1]

    meter = BackgroundMeter(slow_open, ("cpu", "ram"), name="host")
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=4,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[EnergyCallback(meter=meter, history_path=False, estimate=False), Gate()],
    )
    trainer.fit(BoringModel())
    report = load_report(tmp_path)
    assert [e.missing for e in report.epochs] == [False, False]
    assert all(e.energy_j is not None and e.energy_j > 0 for e in report.epochs)
    # the fit's energy is everything the meter counted since the baseline, the 0.2 s before it opened included
    assert report.totals.fit_energy_j == pytest.approx(opened[0].last_j)
    assert len(opened[0].count_from_calls) == 1 and opened[0].last_j >= 10.0 * 0.2


def test_read_nowait_does_not_wait_for_the_meter_and_names_what_is_still_opening() -> None:
    clock = Clock()
    gate, _, open_meter = _gated(clock)
    meter = BackgroundMeter(open_meter, ("cpu", "ram"), name="host", clock=clock)
    assert meter.read_nowait() == ({"cpu": 0.0, "ram": 0.0}, frozenset())  # the first: the baseline
    clock.t_s = 2.0
    assert meter.read_nowait() == ({}, frozenset({"cpu", "ram"}))  # opening: nothing read, nothing waited
    gate.set()
    clock.t_s = 4.0
    assert meter.read() == {"cpu": pytest.approx(40.0), "ram": 0.0}  # waits; counts from the baseline
    assert meter.read_nowait() == ({"cpu": pytest.approx(40.0), "ram": 0.0}, frozenset())  # open: a read


def test_a_composite_reads_its_open_meters_at_once_and_names_the_components_still_opening() -> None:
    clock = Clock()
    gate, _, open_meter = _gated(clock)
    host = BackgroundMeter(open_meter, ("cpu", "ram"), name="host", clock=clock)
    gpu = FakeMeter({"gpu0": 100.0}, seconds_per_read=1.0)
    composite = CompositeMeter({"gpu": gpu, "host": host})
    assert composite.read_nowait() == ({"gpu0": 100.0, "cpu": 0.0, "ram": 0.0}, frozenset())
    assert composite.read_nowait() == ({"gpu0": 200.0}, frozenset({"cpu", "ram"}))
    gate.set()
    composite.read()  # waits for the host meter to open
    joules, opening = composite.read_nowait()
    assert set(joules) == {"gpu0", "cpu", "ram"} and opening == frozenset()


def test_a_meter_that_fails_to_open_is_not_opening_any_more() -> None:
    baseline_read = threading.Event()

    def broken() -> ModelMeter:
        baseline_read.wait(5)  # fail only after the baseline: the order this test is about
        raise RuntimeError("no RAPL")

    meter = BackgroundMeter(broken, ("cpu", "ram"), name="host", drop_on_failure=True)
    meter.read()  # the baseline
    baseline_read.set()
    meter._thread.join(5)
    with pytest.warns(UserWarning, match="no RAPL"):
        assert meter.read_nowait() == ({}, frozenset())  # dropped: no components, none pending
