"""EnergyRun, the Lightning-free run model: epochs in, metrics, projections, report and state out."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from lightning_energy.accounting import EpochRecord
from lightning_energy.budget import Budget
from lightning_energy.carbon import CarbonIntensity
from lightning_energy.hardware import Hardware
from lightning_energy.pre.model import Estimate
from lightning_energy.report_model import PreSummary, TrainerFacts
from lightning_energy.run import EnergyRun, RunStateError, bar_unit, component_labels


def _epoch(epoch: int, energy_j: float | None = 100.0, batches: int | None = None) -> EpochRecord:
    if energy_j is None:
        return EpochRecord(epoch, 10.0, None, {}, "dead meter", batches)
    return EpochRecord(epoch, 10.0, energy_j, {"gpu": energy_j}, None, batches)


def _run(budget: Budget | None = None, **kwargs: object) -> EnergyRun:
    run = EnergyRun(**kwargs)  # type: ignore[arg-type]
    run.set_budget(budget or Budget(max_epochs=10))
    return run


def test_epochs_feed_the_projection_and_the_metrics() -> None:
    run = _run()
    for epoch in range(3):
        outcome = run.finish_epoch(_epoch(epoch))
    assert outcome.projection is not None
    assert outcome.projection.total_j == pytest.approx(1000.0, rel=0.05)
    metrics = run.epoch_metrics(outcome)
    assert metrics["energy/total_kwh"] == pytest.approx(300.0 / 3.6e6)
    assert metrics["energy/epoch_kwh"] == pytest.approx(100.0 / 3.6e6)
    assert metrics["energy/gpu_kwh"] == pytest.approx(300.0 / 3.6e6)
    assert metrics["energy/stable"] in (0.0, 1.0)
    assert (
        metrics["energy/projected_low_kwh"]
        <= metrics["energy/projected_kwh"]
        <= metrics["energy/projected_high_kwh"]
    )


def test_nothing_measured_logs_no_total_and_no_co2_and_never_crashes() -> None:
    run = _run(carbon=CarbonIntensity(56.0))
    outcome = run.finish_epoch(_epoch(0, None))
    metrics = run.epoch_metrics(outcome)
    assert "energy/total_kwh" not in metrics and "energy/co2_kg" not in metrics
    assert "energy/projected_co2_kg" not in metrics
    report = run.report("partial", TrainerFacts())
    assert report.totals.energy_j is None
    assert report.carbon is not None and report.carbon.co2_kg is None
    assert run.status() == "partial"


def test_a_partial_last_epoch_counts_as_a_fraction_of_the_budget() -> None:
    # max_steps=400 over 32-batch epochs: 12.5 epochs, the last one 16 batches
    run = _run(Budget(max_steps=400, batches_per_epoch=32))
    for epoch in range(12):
        run.finish_epoch(_epoch(epoch, 160.0, batches=32))
    last = run.finish_epoch(_epoch(12, 80.0, batches=16)).projection
    assert last is not None and last.total_j == pytest.approx(2000.0, rel=1e-9)


def test_unbounded_run_has_no_projection_and_says_why() -> None:
    run = _run(Budget())
    assert run.finish_epoch(_epoch(0)).projection is None
    assert "no end" in run.stability_line()
    report = run.report("complete", TrainerFacts())
    assert report.projection_note is not None and "max_epochs=-1" in report.projection_note


def test_report_takes_the_trainer_facts_and_still_takes_their_deprecated_keywords(tmp_path: Path) -> None:
    run = _run()
    run.finish_epoch(_epoch(0))
    facts = TrainerFacts(2, 1, {"gpu": "measured"}, Hardware(driver="550"), {"torch": "2.13.0"})
    report = run.report("partial", facts)
    assert (report.world_size, report.num_nodes, report.versions) == (2, 1, {"torch": "2.13.0"})
    assert report.components["gpu"] == "measured" and report.hardware.driver == "550"
    with pytest.warns(DeprecationWarning, match="TrainerFacts"):
        old = run.report("partial", **{f.name: getattr(facts, f.name) for f in fields(facts)})
    assert replace(old, ended_at=report.ended_at) == report
    with pytest.warns(DeprecationWarning):
        assert run.write_report(tmp_path, "partial", world_size=2, num_nodes=1) is None
    assert json.loads((tmp_path / "energy_report.json").read_text())["world_size"] == 2
    with pytest.raises(TypeError, match="not both"):
        run.report("partial", facts, world_size=2)
    with pytest.raises(TypeError, match="worldsize"):
        run.report("partial", worldsize=2)
    with pytest.raises(TypeError, match="TrainerFacts"):
        run.report("partial", {"world_size": 2})  # type: ignore[arg-type]


def test_the_projections_old_name_history_still_reads_them() -> None:
    run = _run()
    run.finish_epoch(_epoch(0))
    with pytest.warns(DeprecationWarning, match="projections"):
        assert run.history is run.projections and len(run.projections) == 1
    report = run.report("partial")
    with pytest.warns(DeprecationWarning, match="projections"):
        assert report.history == report.projections == tuple(run.projections)
    assert report.to_json()["projection"]["history"] == [p.to_json() for p in run.projections]  # the format


def test_stability_line_says_why_not_stable() -> None:
    run = _run()
    run.finish_epoch(_epoch(0))
    line = run.stability_line()
    assert line.startswith("STEP:") and "not stable" in line


@pytest.mark.parametrize(
    ("total_j", "unit"),
    [(3.6, "mWh"), (100.0, "mWh"), (3600.0, "Wh"), (7.2e6, "kWh"), (3.6e10, "MWh")],
    ids=["1mWh", "28mWh", "1Wh", "2kWh", "10MWh"],
)
def test_bar_unit_keeps_three_significant_figures(total_j: float, unit: str) -> None:
    chosen = bar_unit(total_j)
    assert chosen.name == unit
    assert tuple(chosen) == (chosen.name, chosen.joules)  # 0.3.0's (name, scale) unpacking still works
    assert total_j / chosen.joules >= 1.0  # Rich shows 3 decimals: a value >= 1 has >= 3 significant figures


def test_bar_unit_is_chosen_once_per_run() -> None:
    run = _run()
    run.finish_epoch(_epoch(0, 360.0))
    first = set(run.bar_metrics())
    run.finish_epoch(_epoch(1, 3.6e7))
    assert set(run.bar_metrics()) == first


def test_bar_shows_the_latest_projection_never_below_the_energy_so_far() -> None:
    # issue #22 item 1: inside an epoch the last window's projection, after it the epoch's
    run = EnergyRun()
    run.set_budget(Budget(max_epochs=2, batches_per_epoch=4), 2)
    run.close_window(epoch=0, step=1, time_s=1.0, batches=2, energy_j=36.0, duration_s=1.0)
    assert run.latest_projected_j() == pytest.approx(144.0)  # 4 windows of 36 J
    run.close_window(epoch=0, step=3, time_s=2.0, batches=2, energy_j=36.0, duration_s=1.0)
    run.finish_epoch(_epoch(0, 72.0, batches=4))
    assert run.latest_projected_j() == pytest.approx(144.0)  # the epoch's, made after its windows
    assert run.bar_metrics() == {"mWh": pytest.approx(20.0), "proj_mWh": pytest.approx(40.0)}
    window = run.close_window(epoch=1, step=5, time_s=3.0, batches=2, energy_j=108.0, duration_s=1.0)
    assert window is not None and window.total_j is not None and window.total_j > 144.0
    assert run.latest_projected_j() == window.total_j  # a window of a later epoch is newer
    bar = run.bar_metrics(live_total_j=180.0)
    assert bar["proj_mWh"] == pytest.approx(window.total_j / 3.6)
    assert run.bar_metrics(live_total_j=1000.0)["proj_mWh"] == pytest.approx(1000.0 / 3.6)  # never below


def test_pre_becomes_the_prior_and_rescales_with_the_budget() -> None:
    run = EnergyRun()
    run.set_pre(
        PreSummary(
            total_j=1000.0,
            low_j=500.0,
            high_j=2000.0,
            total_epochs=10.0,
            estimate=Estimate(100.0, 100.0, 1.0, 0.3, "NVIDIA H100 80GB HBM3"),
        )
    )
    run.set_budget(Budget(max_epochs=5))
    assert run.pre is not None and run.pre.total_j == pytest.approx(500.0)
    assert run.epoch_metrics(run.finish_epoch(_epoch(0)))["energy/pre_kwh"] == pytest.approx(500.0 / 3.6e6)


def test_state_round_trip_continues_the_run() -> None:
    run = _run()
    for epoch in range(4):
        run.finish_epoch(_epoch(epoch))
    resumed = _run()
    resumed.load_state_dict(run.state_dict())
    assert resumed.ledger.records == run.ledger.records
    assert resumed.projections == run.projections
    a = run.finish_epoch(_epoch(4)).projection
    b = resumed.finish_epoch(_epoch(4)).projection
    assert a == b


def test_version_1_state_loads() -> None:
    old = {
        "version": 1,
        "ledger": {
            "records": [{"epoch": 0, "duration_s": 1.0, "energy_j": 5.0, "components_j": {"gpu": 5.0}}]
        },
        "projections": [{"epoch": 0, "total_j": 50.0, "low_j": 40.0, "high_j": 60.0, "stable": False}],
        "projector": {"energy_j": [5.0], "duration_s": [1.0]},
        "pre": {"skipped": "CPU-only training"},
        "warnings": ["w"],
    }
    run = _run()
    run.load_state_dict(old)
    assert run.ledger.total_j == 5.0 and run.projections[0].total_j == 50.0
    assert run.pre is not None and run.pre.skipped == "CPU-only training"


@pytest.mark.parametrize(
    "state",
    [{"version": 99}, {"version": 2, "ledger": {"records": [{"energy_j": "x"}]}}, [1, 2], {"projector": 3}],
    ids=["newer", "bad-record", "not-a-mapping", "bad-projector"],
)
def test_unreadable_state_raises_and_leaves_the_run_unchanged(state: object) -> None:
    run = _run()
    run.finish_epoch(_epoch(0))
    before = run.state_dict()
    with pytest.raises(RunStateError):
        run.load_state_dict(state)  # type: ignore[arg-type]
    assert run.state_dict() == before


def test_windows_project_inside_a_long_epoch() -> None:
    run = _run(Budget(max_epochs=1, batches_per_epoch=400))
    assert run.window_batches == 20
    projections = []
    for i in range(15):  # 75 % of the single epoch, 5 J per batch
        window = run.close_window(
            epoch=0, step=20 * (i + 1), time_s=float(i), batches=20, energy_j=100.0, duration_s=1.0
        )
        assert window is not None
        projections.append(window.total_j)
    assert projections[-1] == pytest.approx(2000.0, rel=0.05)


def test_windows_need_a_known_length() -> None:
    run = _run(Budget())
    assert run.close_window(epoch=0, step=1, time_s=0.0, batches=5, energy_j=1.0, duration_s=1.0) is None


def test_warnings_are_kept_once() -> None:
    run = EnergyRun()
    assert run.warn("x") and not run.warn("x")
    assert run.warnings == ["x"]


def test_component_labels_by_category() -> None:
    labels = component_labels({"gpu0": "measured", "gpu1": "sampled", "cpu": "estimated"})
    assert labels == {"gpu": "mixed", "cpu": "estimated"}


def test_stability_line_of_an_early_stopped_run_says_upper_bound() -> None:
    run = _run(Budget(max_epochs=20))
    for epoch in range(12):
        run.finish_epoch(_epoch(epoch))
    assert run.projections and run.projections[-1].stable  # a flat run is declared stable
    line = run.stability_line()
    assert "upper bound" in line and "12 of 20 epochs" in line


def test_lightnings_default_max_epochs_is_named_once_in_the_warnings() -> None:
    run = _run(Budget(max_epochs=1000))
    run.set_budget(Budget(max_epochs=1000, batches_per_epoch=4))  # the callback sets it twice
    assert sum("Lightning's default" in w for w in run.warnings) == 1
    assert not any("Lightning's default" in w for w in _run(Budget(max_epochs=20)).warnings)
