"""HostMeter: CodeCarbon's classes monkeypatched (RAPL vs TDP model), plus one run on the real CodeCarbon."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.meters import ESTIMATED, MEASURED, HostMeter


class FakeHardware:
    """Stands in for codecarbon's CPU / RAM: a constant power, energy = power x duration, in kWh."""

    def __init__(self, mode: str, power_w: float) -> None:
        self._mode = mode
        self._tdp = 65
        self.power_w = power_w
        self.started = False
        self.fail = False

    def start(self) -> None:
        self.started = True

    def measure_power_and_energy(self, last_duration: float) -> tuple[Any, Any]:
        if self.fail:
            raise RuntimeError("RAPL file vanished")
        kwh = self.power_w * last_duration / 3.6e6
        return types.SimpleNamespace(W=self.power_w), types.SimpleNamespace(kWh=kwh)

    @property
    def machine_memory_GB(self) -> float:
        return 64.0


@pytest.fixture
def fake_codecarbon(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from codecarbon.core import cpu as cc_cpu
    from codecarbon.core import util as cc_util
    from codecarbon.external import hardware, ram

    made: dict[str, Any] = {"rapl": True}

    def from_utils(**kwargs: Any) -> FakeHardware:
        made["cpu_kwargs"] = kwargs
        made["cpu"] = FakeHardware(kwargs["mode"], 50.0)
        return made["cpu"]

    def make_ram(**kwargs: Any) -> FakeHardware:
        made["ram"] = FakeHardware("ram", 10.0)
        return made["ram"]

    monkeypatch.setattr(cc_cpu, "is_rapl_available", lambda *a, **k: made["rapl"])
    monkeypatch.setattr(cc_cpu, "TDP", lambda: types.SimpleNamespace(model="Fake CPU 9000", tdp=120))
    monkeypatch.setattr(cc_util, "count_physical_cpus", lambda: 2)
    monkeypatch.setattr("lightning_energy.meters.host._sysfs_sockets", lambda *args: None)  # CodeCarbon's
    monkeypatch.setattr(cc_util, "detect_cpu_model", lambda: "Fake CPU 9000")
    monkeypatch.setattr(hardware.CPU, "from_utils", staticmethod(from_utils))
    monkeypatch.setattr(ram, "RAM", make_ram)
    monkeypatch.setattr(sys, "platform", "linux")
    return made


def test_rapl_is_measured_and_kwh_become_joules(fake_codecarbon: dict[str, Any], fake_clock: Any) -> None:
    meter = HostMeter(clock=fake_clock)
    assert meter.labels == {"cpu": MEASURED, "ram": ESTIMATED}
    assert fake_codecarbon["cpu_kwargs"]["mode"] == "intel_rapl"
    assert fake_codecarbon["cpu"].started
    fake_clock.t_s = 2.0
    assert meter.read() == {"cpu": pytest.approx(100.0), "ram": pytest.approx(20.0)}
    fake_clock.t_s = 3.0
    assert meter.read() == {"cpu": pytest.approx(150.0), "ram": pytest.approx(30.0)}
    assert meter.hardware["host"]["cpu_mode"] == "intel_rapl"  # type: ignore[index]
    meter.close()
    with pytest.raises(MeterError, match="after close"):
        meter.read()


def test_without_rapl_the_tdp_model_is_estimated(
    fake_codecarbon: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # no /proc/cpuinfo model: CodeCarbon's own detection (the fake's TDP) decides
    monkeypatch.setattr("lightning_energy.meters.host._proc_cpu_model", lambda *args: None)
    fake_codecarbon["rapl"] = False
    meter = HostMeter()
    assert meter.labels == {"cpu": ESTIMATED, "ram": ESTIMATED}
    assert fake_codecarbon["cpu_kwargs"]["mode"] == "cpu_load"
    assert fake_codecarbon["cpu_kwargs"]["tdp"] == 240.0  # 120 W x 2 sockets, as CodeCarbon does
    host = meter.hardware["host"]
    assert host["cpu_model"] == "Fake CPU 9000" and host["ram_gb"] == 64.0  # type: ignore[index]


def test_forced_cpu_power_skips_rapl(fake_codecarbon: dict[str, Any]) -> None:
    meter = HostMeter(cpu_power_w=95.0, tracking_mode="process")
    assert meter.labels["cpu"] == ESTIMATED
    assert fake_codecarbon["cpu_kwargs"]["tdp"] == 95.0
    assert fake_codecarbon["cpu_kwargs"]["tracking_mode"] == "process"


def test_measurement_failure_is_meter_error(fake_codecarbon: dict[str, Any]) -> None:
    meter = HostMeter()
    fake_codecarbon["cpu"].fail = True
    with pytest.raises(MeterError, match="RAPL file vanished"):
        meter.read()


def test_setup_failure_is_unavailable(
    fake_codecarbon: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from codecarbon.external import hardware

    def broken(**kwargs: Any) -> None:
        raise PermissionError("/sys/class/powercap")

    monkeypatch.setattr(hardware.CPU, "from_utils", staticmethod(broken))
    with pytest.raises(MeterUnavailable, match=r"could not set up CPU/RAM.*powercap"):
        HostMeter()


def test_codecarbon_missing_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with pytest.raises(MeterUnavailable, match="pip install codecarbon"):
        HostMeter()


def test_arguments_are_validated() -> None:
    with pytest.raises(
        ValueError, match=r"tracking_mode must be one of \('machine', 'process'\), got 'node'"
    ):
        HostMeter(tracking_mode="node")
    with pytest.raises(ValueError, match="cpu_power_w must be a positive number of watts"):
        HostMeter(cpu_power_w=0)


def test_real_codecarbon_offline(monkeypatch: pytest.MonkeyPatch, fake_clock: Any) -> None:
    """The installed CodeCarbon, RAPL off, TDP lookup replaced (it costs ~1 s): positive, growing joules."""
    from codecarbon.core import cpu as cc_cpu

    monkeypatch.setattr(cc_cpu, "TDP", lambda: types.SimpleNamespace(model="Fake CPU", tdp=100))
    meter = HostMeter(use_rapl=False, clock=fake_clock)
    assert meter.labels == {"cpu": ESTIMATED, "ram": ESTIMATED}
    fake_clock.t_s = 10.0
    first = meter.read()
    fake_clock.t_s = 20.0
    second = meter.read()
    assert 0.0 < first["cpu"] < second["cpu"] and 0.0 < first["ram"] < second["ram"]
    assert second["ram"] == pytest.approx(2 * first["ram"])  # RAM model: constant power


def test_cpu_model_from_proc_cpuinfo(tmp_path: Any) -> None:
    from lightning_energy.meters.host import _proc_cpu_model

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
    )
    assert _proc_cpu_model(str(cpuinfo)) == "AMD EPYC 7763 64-Core Processor"
    assert _proc_cpu_model(str(tmp_path / "absent")) is None


def test_sockets_are_counted_from_sysfs_as_lscpu_counts_them(tmp_path: Path) -> None:
    from lightning_energy.meters.host import _sysfs_sockets

    for cpu, package in enumerate(["0", "0", "1", "1"]):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
    (tmp_path / "cpufreq").mkdir()  # not a CPU
    assert _sysfs_sockets(str(tmp_path)) == 2
    assert _sysfs_sockets(str(tmp_path / "absent")) is None  # no sysfs: CodeCarbon's lscpu decides


def test_sysfs_socket_count_is_the_fallback_for_the_tdp_model(
    fake_codecarbon: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lightning_energy.meters.host._proc_cpu_model", lambda *args: None)
    monkeypatch.setattr("lightning_energy.meters.host._sysfs_sockets", lambda *args: 4)
    fake_codecarbon["rapl"] = False
    HostMeter()
    assert fake_codecarbon["cpu_kwargs"]["tdp"] == 480.0  # 120 W x 4 sockets from sysfs, not lscpu's 2


def test_tdp_table_lookup_prefers_an_exact_name_and_skips_malformed_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codecarbon.input import DataSource

    from lightning_energy.meters.host import _registry_tdp_w

    table = tmp_path / "cpu_power.csv"
    table.write_text(
        "Name,TDP\nXeon Gold 6148,140\nIntel Xeon Gold 6148,150\nshort\nEPYC 7763,n/a\n"
        '"EPYC 7763, rev B",280\nCore i7-8700,65\nCore i7-8700K,95\n'
    )
    monkeypatch.setattr(DataSource, "cpu_power_path", property(lambda self: str(table)))
    assert _registry_tdp_w("intel xeon gold 6148") == 150.0  # exact first, though a fuzzy row came before
    assert _registry_tdp_w("AMD EPYC 7763 64-Core Processor") is None  # malformed TDP, quoted longer name
    assert _registry_tdp_w("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz") == 65.0  # words: the one match
    assert _registry_tdp_w("Core") is None  # ambiguous: two TDPs
    table.write_text("Model,Watts\nCore i7-8700,65\n")  # reshaped: CodeCarbon's own detection decides
    assert _registry_tdp_w("Core i7-8700") is None


def test_codecarbon_tdp_table_is_reachable_without_its_slow_detection() -> None:
    """Fails loudly if CodeCarbon's public CPU table (``codecarbon.input.DataSource``) changes shape."""
    from lightning_energy.meters.host import _registry_tdp_w

    assert _registry_tdp_w("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz") == 150.0
    assert _registry_tdp_w("intel xeon gold 6148") == 150.0
    assert _registry_tdp_w("AMD EPYC 7763 64-Core Processor") == 280.0
    assert _registry_tdp_w("Imaginary CPU 1") is None


def test_count_from_lets_the_models_cover_the_seconds_before_the_meter_opened(
    fake_codecarbon: dict[str, Any], fake_clock: Any
) -> None:
    fake_codecarbon["rapl"] = False
    fake_clock.t_s = 1.0
    meter = HostMeter(clock=fake_clock, cpu_power_w=50.0)  # opened 1 s after the fit's first reading
    meter.count_from(0.0)
    fake_clock.t_s = 3.0
    assert meter.read() == {"cpu": pytest.approx(150.0), "ram": pytest.approx(30.0)}  # 3 s at 50 W and 10 W
    with pytest.raises(MeterError, match="after the first read"):
        meter.count_from(0.0)


@pytest.mark.parametrize(("opened_s", "start_s", "cpu_j"), [(1.0, 0.0, 150.0), (0.0, 1.0, 100.0)])
def test_count_from_scales_a_counters_first_delta_to_the_interval(
    fake_codecarbon: dict[str, Any], fake_clock: Any, opened_s: float, start_s: float, cpu_j: float
) -> None:
    fake_clock.t_s = opened_s
    meter = HostMeter(clock=fake_clock)
    counted = {"since_s": opened_s}

    def counter(last_duration: float) -> tuple[Any, Any]:  # RAPL: energy since the counter's last read
        kwh = 50.0 * (fake_clock.t_s - counted["since_s"]) / 3.6e6
        counted["since_s"] = fake_clock.t_s
        return types.SimpleNamespace(W=50.0), types.SimpleNamespace(kWh=kwh)

    fake_codecarbon["cpu"].measure_power_and_energy = counter
    fake_clock.t_s = max(opened_s, start_s)
    meter.count_from(start_s)
    fake_clock.t_s = 3.0
    assert meter.read()["cpu"] == pytest.approx(cpu_j)  # 50 W over the 3 - start_s seconds
    fake_clock.t_s = 4.0
    assert meter.read()["cpu"] == pytest.approx(cpu_j + 50.0)  # later deltas are not scaled
