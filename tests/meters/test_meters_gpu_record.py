"""benchmarks/gpu/record.py logic on the CPU with fake meters (real runs need a GPU: docs/validation.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from lightning_energy.meters import FakeMeter, NvmlMeter, RecordingMeter, load_trace

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"
sys.path.insert(0, str(BENCH))
record = pytest.importorskip("record")


def test_integrate_power_interpolates_at_the_ends() -> None:
    samples = [(0.0, 100.0), (1.0, 200.0), (2.0, 200.0)]
    assert record.integrate_power_j(samples, 0.0, 2.0) == pytest.approx(150.0 + 200.0)
    assert record.integrate_power_j(samples, 0.5, 1.5) == pytest.approx(
        0.5 * (150.0 + 200.0) / 2 + 0.5 * 200.0
    )
    assert record.integrate_power_j(samples, -1.0, 1.0) is None  # not covered


def test_counter_vs_sampling_with_fake_nvml(fake_nvml: Any, fake_clock: Any, tmp_path: Path) -> None:
    device = fake_nvml.add_gpu("GPU-aaaa", power_mw=300_000)
    device.counter_mj = lambda: int(1_000_000 + fake_clock.t_s * 300_000)  # 300 W, consistent with power
    meter = RecordingMeter(
        NvmlMeter([0], background=False, sample_power=True, clock=fake_clock),
        tmp_path / "t.json",
        clock=fake_clock,
    )
    for epoch in range(2):
        meter.mark("epoch_start", epoch)
        meter.read()
        for _ in range(10):
            fake_clock.t_s += 0.1
            meter.inner.sample_once()  # type: ignore[attr-defined]
        meter.mark("epoch_end", epoch)
        meter.read()
    meter.close()
    rows = record.counter_vs_sampling(load_trace(tmp_path / "t.json"))
    assert [row["epoch"] for row in rows] == [0, 1]
    for row in rows:
        assert row["counter_j"] == pytest.approx(300.0)
        assert row["sampled_j"] == pytest.approx(300.0)
        assert row["gap_pct"] == pytest.approx(0.0, abs=1e-9)


def test_read_latency_and_markdown() -> None:
    median_ms, p99_ms = record.read_latency_ms(FakeMeter({"gpu0": 1.0}).read, n=50)
    assert 0.0 <= median_ms <= p99_ms
    table = record.markdown_table(["a", "b"], [[1, 2.5], ["x", None]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2.5 |", "| x | n/a |"]


@pytest.mark.filterwarnings("ignore:You called .self.log")
def test_record_one_tiny_workload_on_cpu(tmp_path: Path) -> None:
    pytest.importorskip("lightning_energy.callback")
    path = record.record_workload(
        "mlp",
        out=tmp_path,
        device="cpu",
        epochs=2,
        steps=3,
        tiny=True,
        make_meter=lambda: FakeMeter({"gpu0": 300.0}, seconds_per_read=0.5),
        meta={"dry_run": True},
    )
    trace = load_trace(path)
    assert trace.meta["workload"] == "mlp" and trace.meta["epochs"] == 2 and trace.meta["dry_run"] is True
    boundaries = [(r.event, r.epoch) for r in trace.readings if r.event is not None]
    assert boundaries == [("epoch_start", 0), ("epoch_end", 0), ("epoch_start", 1), ("epoch_end", 1)]
    rows = record.counter_vs_sampling(trace)
    # 300 W x 0.5 s per read: an epoch spans one or more reads (more if the live bar refreshed).
    assert len(rows) == 2
    assert all(float(row["counter_j"] or 0) > 0 and float(row["counter_j"] or 0) % 150.0 == 0 for row in rows)


def test_workloads_validate_names() -> None:
    workloads = pytest.importorskip("workloads")
    with pytest.raises(ValueError, match="name must be one of"):
        workloads.build_workload("vgg")
    with pytest.raises(ValueError, match="step_time_s must be a positive"):
        workloads.steps_for_target(0.0, 15.0)
    assert workloads.steps_for_target(0.1, 15.0) == 150
