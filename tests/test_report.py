"""The report files: typed round trip, pair-atomic writes, CSV rows, clear errors, tables."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from report_examples import example_report, example_report_json

from lightning_energy import _io
from lightning_energy.accounting import EpochRecord
from lightning_energy.carbon import CarbonIntensity
from lightning_energy.hardware import Hardware
from lightning_energy.pre.model import Estimate
from lightning_energy.report import (
    EPOCHS_CSV_FILENAME,
    REPORT_FILENAME,
    ReportError,
    epoch_csv_text,
    find_report,
    load_report,
    write_report,
)
from lightning_energy.report_model import (
    CarbonSummary,
    PreSummary,
    ProjectionPoint,
    RunReport,
    Totals,
    TrainerFacts,
)
from lightning_energy.report_table import compare_table, format_table


def test_write_then_load_round_trip_is_typed_and_exact(tmp_path: Path) -> None:
    report = example_report()
    path = write_report(tmp_path / "run", report)
    assert path == tmp_path / "run" / REPORT_FILENAME
    assert (tmp_path / "run" / EPOCHS_CSV_FILENAME).is_file()
    loaded = load_report(tmp_path / "run")
    assert loaded == report
    estimate = None if loaded.pre is None else loaded.pre.estimate
    assert estimate is not None and estimate.speed_source == "measured"
    assert (estimate.gpu_busy_share, estimate.calibration_runs) == (0.93, 2)
    assert estimate.rel_sigma == pytest.approx(0.2)
    assert json.loads(path.read_text())["version"] == 1
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_json_keeps_the_version_1_field_names() -> None:
    data = example_report().to_json()
    old = example_report_json()
    for key in ("status", "world_size", "max_epochs", "components", "upper_bound", "warnings"):
        assert data[key] == old[key]
    assert set(old["totals"]) <= set(data["totals"])
    assert set(old["epochs"][0]) <= set(data["epochs"][0])
    assert set(old["projection"]["history"][0]) <= set(data["projection"]["history"][0])
    assert set(old["pre"]) <= set(data["pre"])


def test_files_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_report(tmp_path, example_report(num_epochs=2))
    finally:
        os.umask(old)
    for name in (REPORT_FILENAME, EPOCHS_CSV_FILENAME):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_both_files_or_neither_when_the_csv_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_report(tmp_path, example_report(num_epochs=3))
    before = {name: (tmp_path / name).read_text() for name in (REPORT_FILENAME, EPOCHS_CSV_FILENAME)}
    real_fdopen = os.fdopen

    def failing_fdopen(fd: int, *args: object, **kwargs: object) -> io.TextIOWrapper:
        handle = real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]
        if "energy_epochs" in os.readlink(f"/proc/self/fd/{fd}"):
            handle.close()
            raise OSError("disk full")
        return handle  # type: ignore[no-any-return]

    monkeypatch.setattr(_io.os, "fdopen", failing_fdopen)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, example_report(num_epochs=5))
    after = {name: (tmp_path / name).read_text() for name in before}
    assert after == before  # the old pair, untouched: not a new JSON beside the old CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == [EPOCHS_CSV_FILENAME, REPORT_FILENAME]


def test_the_json_is_fsynced_before_its_rename_and_the_csv_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        assert name.startswith(f".{REPORT_FILENAME}.") and name.endswith(".tmp")  # staged, not yet renamed
        synced.append(name)
        real_fsync(fd)

    monkeypatch.setattr(_io.os, "fsync", fsync)
    write_report(tmp_path, example_report(num_epochs=3))
    assert len(synced) == 1  # the report of record; the CSV, made from its epochs, is left to writeback
    assert epoch_csv_text(load_report(tmp_path)) == (tmp_path / EPOCHS_CSV_FILENAME).read_text()
    synced.clear()
    monkeypatch.setattr(_io.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")))
    _io.atomic_write_texts({tmp_path / "a.txt": "a", tmp_path / "b.txt": "b"})
    assert len(synced) == 2  # by default every file of the set is durable


def test_write_rejects_a_dict(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="report must be a RunReport"):
        write_report(tmp_path, {"status": "complete"})  # type: ignore[arg-type]


def test_epoch_csv_has_one_row_per_epoch_with_projection() -> None:
    report = example_report(num_epochs=4)
    epochs = list(report.epochs)
    epochs[2] = EpochRecord(2, 60.0, None, {}, "meter raised: boom")
    report = replace(report, epochs=tuple(epochs))
    rows = list(csv.DictReader(io.StringIO(epoch_csv_text(report))))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert {"gpu_j", "cpu_j", "ram_j", "projected_total_j", "projected_low_j", "stable"} <= set(rows[0])
    assert float(rows[0]["energy_kwh"]) == pytest.approx(report.epochs[0].energy_j / 3.6e6)  # type: ignore[operator]
    assert float(rows[3]["projected_total_j"]) == pytest.approx(report.projections[3].total_j)
    assert (
        rows[2]["energy_j"] == ""
        and rows[2]["missing"] == "True"
        and rows[2]["reason"] == "meter raised: boom"
    )


def test_csv_leaves_an_unmetered_gpu_empty_never_zero(tmp_path: Path) -> None:
    """A CPU-only run: the JSON names no GPU, so the CSV's gpu_j (and other_j) cells are empty, not 0.0."""
    report = example_report(num_epochs=3)
    epochs = tuple(
        replace(e, components_j={"gpu": 0.0, "cpu": 30.0, "ram": 5.0, "other": 0.0}, energy_j=35.0)
        for e in report.epochs
    )
    report = replace(report, epochs=epochs, components={"cpu": "estimated", "ram": "estimated"})
    write_report(tmp_path, report)
    rows = list(csv.DictReader(io.StringIO((tmp_path / EPOCHS_CSV_FILENAME).read_text())))
    assert [(r["gpu_j"], r["other_j"]) for r in rows] == [
        ("", "")
    ] * 3  # the column stays, the value is unknown
    assert [float(r["cpu_j"]) for r in rows] == [30.0] * 3
    loaded = load_report(tmp_path)
    assert "gpu" not in loaded.components
    # nor in the JSON's epochs: the GPU was not metered, so its energy is unknown, not 0.0
    assert [e.components_j for e in loaded.epochs] == [{"cpu": 30.0, "ram": 5.0}] * 3
    assert loaded == replace(report, epochs=loaded.epochs)
    assert epoch_csv_text(loaded) == (tmp_path / EPOCHS_CSV_FILENAME).read_text()


def test_nothing_measured_is_null_never_zero(tmp_path: Path) -> None:
    report = replace(
        example_report(num_epochs=2, status="partial"),
        epochs=(EpochRecord(0, 1.0, None, {}, "dead meter"),),
        totals=Totals(None, {}, None, 1.0, 0, 1),
        projections=(),
    )
    data = json.loads(write_report(tmp_path, report).read_text())
    assert data["totals"]["energy_j"] is None and data["totals"]["energy_kwh"] is None
    assert "measured: - " in format_table(load_report(tmp_path))


def test_missing_report_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="No energy report in"):
        load_report(tmp_path)
    with pytest.raises(ReportError, match="No such file or directory"):
        load_report(tmp_path / "nope")


def test_report_is_found_below_the_directory(tmp_path: Path) -> None:
    write_report(tmp_path / "lightning_logs" / "version_0", example_report())
    assert find_report(tmp_path) == tmp_path / "lightning_logs" / "version_0" / REPORT_FILENAME
    write_report(tmp_path / "lightning_logs" / "version_1", example_report())
    with pytest.raises(ReportError, match="2 energy reports below"):
        find_report(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"format": "lightning_energy.report", "version": 1, "epo', "corrupted or truncated"),
        ("", "corrupted or truncated"),
        ('{"hello": 1}', "not a lightning_energy report"),
        ('{"format": "lightning_energy.report", "version": 99, "epochs": [], "totals": {}}', "newer"),
        ('{"format": "lightning_energy.report", "version": 1, "totals": {}}', "'epochs'"),
        (
            '{"format": "lightning_energy.report", "version": 1, "epochs": [], "totals": {"energy_j": "x"}}',
            "energy_j",
        ),
    ],
    ids=["truncated", "empty", "foreign", "newer", "no-epochs", "bad-type"],
)
def test_bad_report_is_a_clear_error(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / REPORT_FILENAME).write_text(content)
    with pytest.raises(ReportError, match=match) as info:
        load_report(tmp_path)
    assert str(tmp_path / REPORT_FILENAME) in str(info.value)


def test_binary_garbage_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / REPORT_FILENAME).write_bytes(os.urandom(64) + b"\xff\xfe")
    with pytest.raises(ReportError, match="corrupted"):
        load_report(tmp_path)


def test_format_table_shows_epochs_projection_pre_and_co2_in_one_unit() -> None:
    text = format_table(example_report(num_epochs=5))
    assert "energy Wh" in text and "projected Wh" in text and "interval Wh" in text
    first_cells = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert [c for c in first_cells if c.isdigit()] == ["0", "1", "2", "3", "4"]
    assert "stable: one per-epoch energy level since epoch 3" in text
    assert "STEP first declared stable after epoch 3: " in text
    assert "dated back" not in text  # declared at the epoch the level began: nothing to explain
    assert "PRE estimate:" in text and "vs PRE" in text
    assert "CO2:" in text and " CO2e measured" in text and "PUE 1.20" in text
    assert "kWh" not in text.replace("g/kWh", "")  # one energy unit in the whole table
    assert " J " not in text


def test_header_of_a_max_steps_run_says_steps_and_epochs() -> None:
    report = replace(example_report(num_epochs=5), max_epochs=4.6875, max_steps=1200)
    head = format_table(report).splitlines()[0]
    assert "max_steps 1200 (4.69 epochs)" in head and "4.6875" not in head
    assert "max_steps 1200)" in format_table(replace(report, max_epochs=None)).splitlines()[0]
    # max_epochs ends the run first (whole epochs): the header names max_epochs
    assert "(max_epochs 10)" in format_table(replace(report, max_epochs=10.0)).splitlines()[0]


def test_report_explains_why_stable_since_and_first_declared_differ() -> None:
    report = example_report(num_epochs=10)
    history = tuple(
        replace(
            h, projection=replace(h.projection, stable=h.epoch >= 7, stable_since=2 if h.epoch >= 7 else None)
        )
        for h in report.projections
    )
    text = format_table(replace(report, projections=history))
    assert "one per-epoch energy level since epoch 2" in text
    assert "STEP first declared stable after epoch 7: " in text
    assert "(dated back to epoch 2, where the level began; declared only after epoch 7, once enough" in text


@pytest.mark.parametrize(
    ("co2_kg", "shown"),
    [
        (8.13e-08, "0.0813 mg"),
        (4.2e-5, "42.0 mg"),
        (0.0958e-3, "95.8 mg"),
        (0.0125, "12.5 g"),
        (3.456, "3.46 kg"),
    ],
)
def test_co2_reads_in_g_mg_or_kg_with_three_figures(co2_kg: float, shown: str) -> None:
    report = example_report(num_epochs=3)
    assert report.carbon is not None
    carbon = replace(report.carbon, co2_kg=co2_kg, projected_co2_kg=co2_kg * 2)
    text = format_table(replace(report, carbon=carbon))
    assert f"CO2: {shown} CO2e measured" in text
    assert "e-0" not in text
    row = next(line for line in compare_table([replace(report, carbon=carbon)]).splitlines() if "CO2" in line)
    unit, value = shown.split()[1], shown.split()[0]
    assert row.split() == ["CO2", unit, value]


def test_format_table_handles_missing_epochs_skipped_pre_and_no_carbon() -> None:
    report = example_report(num_epochs=3, status="partial")
    epochs = list(report.epochs)
    epochs[1] = EpochRecord(1, 60.0, None, {}, "meter raised: x")
    report = replace(
        report,
        epochs=tuple(epochs),
        pre=PreSummary(skipped="CPU-only training: PRE models GPU energy"),
        carbon=None,
        projections=(),
        warnings=("something odd",),
    )
    text = format_table(report)
    assert "missing" in text
    assert "PRE estimate: skipped (CPU-only training" in text
    assert "CO2: not reported" in text
    assert "  - something odd" in text
    assert "STEP projection" not in text


def test_pre_summary_rescales_to_the_final_budget() -> None:
    pre = PreSummary(total_j=400.0, low_j=320.0, high_j=520.0, total_epochs=4.0, devices=2)
    assert pre.scaled_to(2.0) == replace(pre, total_j=200.0, low_j=160.0, high_j=260.0, total_epochs=2.0)
    skipped = PreSummary(skipped="no GPU")
    assert skipped.scaled_to(10.0) is skipped and not skipped.available


def test_compare_table_puts_runs_side_by_side() -> None:
    text = compare_table([example_report(), example_report(num_epochs=4, status="partial")], names=["a", "b"])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "b"]
    assert any(line.startswith("status") and "complete" in line and "partial" in line for line in lines)
    assert any(line.startswith("energy Wh") for line in lines)
    with pytest.raises(ValueError, match="names"):
        compare_table([example_report()], names=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        compare_table([])


def test_first_stable_is_the_first_declaration_not_the_last() -> None:
    report = example_report(num_epochs=6)
    flags = [False, True, False, True, True, True]
    history = tuple(
        replace(h, projection=replace(h.projection, stable=f))
        for h, f in zip(report.projections, flags, strict=True)
    )
    report = replace(report, projections=history)
    assert report.first_stable is history[1]
    assert replace(report, projections=()).first_stable is None


def test_projection_points_from_an_old_report_take_defaults() -> None:
    point = ProjectionPoint.from_json({"epoch": 3, "total_j": 10.0, "stable": True})
    assert (point.low_j, point.high_j, point.reason, point.step) == (10.0, 10.0, "", None)


def test_report_json_survives_nan(tmp_path: Path) -> None:
    report = replace(example_report(num_epochs=2), hardware=Hardware(extra={"odd": float("nan")}))
    data = json.loads(write_report(tmp_path, report).read_text())
    assert data["hardware"] == {"odd": None}
    assert isinstance(load_report(tmp_path), RunReport)


def test_a_cpu_runs_report_names_no_gpu_in_its_epochs(tmp_path: Path) -> None:
    """Through the run model: the epochs of a CPU-only run carry cpu and ram, never gpu 0.0."""
    from lightning_energy.run import EnergyRun

    run = EnergyRun()
    run.finish_epoch(EpochRecord(0, 2.0, 35.0, {"gpu": 0.0, "cpu": 30.0, "ram": 5.0, "other": 0.0}))
    facts = TrainerFacts(components={"cpu": "estimated", "ram": "estimated"})
    assert run.write_report(tmp_path, "complete", facts) is None
    data = json.loads((tmp_path / "energy_report.json").read_text())
    assert data["epochs"][0]["components_j"] == {"cpu": 30.0, "ram": 5.0}
    assert run.report("complete", TrainerFacts(components={"cpu": "estimated"})).epochs[0].components_j == {
        "cpu": 30.0,
        "ram": 5.0,  # metered (non-zero) though unlabelled: kept
    }


def test_the_projection_line_says_upper_bound_whenever_the_run_stopped_before_its_budget() -> None:
    stopped = example_report(num_epochs=3, max_epochs=10)  # no EarlyStopping: interrupted, or max_time
    assert not stopped.upper_bound
    (line,) = [s for s in format_table(stopped).splitlines() if s.startswith("STEP projection:")]
    assert line.endswith("(an upper bound: the run stopped after 3 of 10 epochs)")
    finished = replace(example_report(num_epochs=10, max_epochs=10), upper_bound=True)  # EarlyStopping
    (line,) = [s for s in format_table(finished).splitlines() if s.startswith("STEP projection:")]
    assert line.endswith("(an upper bound for max_epochs=10: EarlyStopping may stop earlier)")
    plain = example_report(num_epochs=10, max_epochs=10)
    assert "upper bound" not in format_table(plain)


def test_the_carbon_section_is_the_intensity_plus_the_co2_figures(tmp_path: Path) -> None:
    intensity = CarbonIntensity(56.0, pue=1.2, source="codecarbon 3", year=2023, country_iso3="FRA")
    report = replace(example_report(num_epochs=2), carbon=CarbonSummary(intensity, 0.5, 1.5))
    data = json.loads(write_report(tmp_path, report).read_text())
    assert list(data["carbon"]) == [
        "g_per_kwh",
        "pue",
        "source",
        "year",
        "country_iso3",
        "country_name",
        "co2_kg",
        "projected_co2_kg",
    ]
    loaded = load_report(tmp_path).carbon
    assert loaded == CarbonSummary(intensity, 0.5, 1.5) and loaded.intensity is not intensity


def test_a_carbon_section_with_an_impossible_pue_is_a_report_error() -> None:
    with pytest.raises(ReportError, match=r"carbon.*pue"):
        CarbonSummary.from_json({"g_per_kwh": 56.0, "pue": 0.5})


def test_the_pre_section_wraps_pres_estimate_and_adds_its_newer_fields(tmp_path: Path) -> None:
    estimate = Estimate(
        100.0, 250.0, 0.4, 0.25, "NVIDIA A100 80GB PCIe", 3, "datasheet", 0.9, "bandwidth-bound", 0.7, True
    )
    pre = PreSummary(total_j=1000.0, low_j=700.0, high_j=1400.0, total_epochs=10.0, estimate=estimate)
    data = json.loads(write_report(tmp_path, replace(example_report(), pre=pre)).read_text())
    written = data["pre"]["estimate"]
    assert list(written)[:8] == [  # the 0.3.0 fields, in their order; then the added ones
        "epoch_energy_j",
        "epoch_seconds",
        "power_w",
        "gpu_name",
        "rel_sigma",
        "speed_source",
        "gpu_busy_share",
        "calibration_runs",
    ]
    assert written["rel_sigma"] == pytest.approx(estimate.rel_sigma)
    assert (written["regime"], written["bandwidth_share"], written["traffic_inferred"]) == (
        "bandwidth-bound",
        0.7,
        True,
    )
    loaded = load_report(tmp_path).pre
    assert loaded == pre and loaded is not None and loaded.estimate == estimate


def test_a_pre_section_missing_a_per_epoch_figure_keeps_the_run_figures() -> None:
    pre = PreSummary.from_json({"total_j": 10.0, "estimate": {"epoch_energy_j": 1.0, "gpu_name": "X"}})
    assert pre.total_j == 10.0 and pre.estimate is None and pre.available
    assert pre.to_json()["estimate"]["epoch_energy_j"] is None  # the same keys, written as unknown


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "finished"), ("status", None), ("status", 1)],
    ids=["word", "absent", "number"],
)
def test_a_status_outside_the_vocabulary_is_a_report_error(field: str, value: object) -> None:
    data = example_report_json()
    data[field] = value
    with pytest.raises(ReportError, match="'status' must be one of 'complete', 'partial', 'failed'"):
        RunReport.from_json(data)


def test_a_projection_method_outside_the_vocabulary_is_a_report_error() -> None:
    assert ProjectionPoint.from_json({"epoch": 0, "total_j": 1.0}).method == "level"  # absent: the default
    with pytest.raises(ReportError, match="'method' must be one of 'level'"):
        ProjectionPoint.from_json({"epoch": 0, "total_j": 1.0, "method": "magic"})


def test_a_history_point_keeps_steps_whole_projection(tmp_path: Path) -> None:
    from lightning_energy.step import StepProjector

    projector = StepProjector()
    for energy_j in (100.0, 101.0, 99.0, 100.5):
        projection = projector.update(energy_j, 10.0, total_epochs=8)
    point = ProjectionPoint(3, projection)
    assert (point.total_j, point.stable, point.method) == (
        projection.total_j,
        projection.stable,
        projection.method,
    )
    written = point.to_json()
    assert list(written)[:10] == [  # the 0.3.0 fields first, in their order
        "epoch",
        "step",
        "total_j",
        "low_j",
        "high_j",
        "stable",
        "stable_since",
        "epoch_energy_j",
        "method",
        "reason",
    ]
    assert written["epochs_seen"] == 4 and written["confidence"] == projection.confidence
    assert ProjectionPoint.from_json(json.loads(json.dumps(written))) == point


def test_a_history_point_of_an_older_report_reads_its_unknown_figures_as_nan() -> None:
    point = ProjectionPoint.from_json({"epoch": 2, "total_j": 10.0, "stable": True, "stable_since": 1})
    p = point.projection
    assert (p.epochs_seen, p.regime_start, p.remaining_epochs) == (3, 1, None)
    assert all(v != v for v in (p.measured_j, p.power_w, p.confidence))  # NaN: unknown
    written = {"epoch": 2, "total_j": 10.0, "stable_since": 1, "regime_start": 0, "epochs_seen": 0}
    again = ProjectionPoint.from_json(written).projection
    assert (again.regime_start, again.epochs_seen) == (0, 0)  # zeros are values, not "unknown"


def test_an_expected_point_keeps_the_whole_expected_total() -> None:
    from lightning_energy.report_model import ExpectedPoint
    from lightning_energy.step import ExpectedTotal

    expected = ExpectedTotal(900.0, 700.0, 1100.0, 9.0, 7.0, None, 1200.0)
    point = ExpectedPoint(4, expected)
    assert (point.total_j, point.stop_epoch_high) == (900.0, None)
    written = point.to_json()
    assert list(written) == [
        "epoch",
        "total_j",
        "low_j",
        "high_j",
        "stop_epoch",
        "stop_epoch_low",
        "stop_epoch_high",
        "bound_j",
    ]
    assert ExpectedPoint.from_json(json.loads(json.dumps(written))) == point
    old = ExpectedPoint.from_json({k: v for k, v in written.items() if k != "bound_j"})
    assert old.total_j == 900.0 and old.expected.bound_j != old.expected.bound_j  # NaN: unknown


def test_a_window_keeps_steps_whole_projection_and_writes_the_030_fields() -> None:
    from lightning_energy.report_model import WindowRecord
    from lightning_energy.step import StepProjector

    projector = StepProjector(unit_name="window")
    for energy_j in (10.0, 10.2, 9.9, 10.1, 10.0, 10.0):
        projection = projector.update(energy_j, 1.0, total_epochs=40)
    window = WindowRecord(2, 57, 12.5, 4, 10.0, projection)
    written = window.to_json()
    assert written == {  # the fields of 0.3.0, in their order, and nothing else
        "epoch": 2,
        "step": 57,
        "time_s": 12.5,
        "steps": 4,
        "energy_j": 10.0,
        "projected_total_j": projection.total_j,
        "projected_low_j": projection.low_j,
        "projected_high_j": projection.high_j,
        "stable": projection.stable,
    }
    assert list(written) == list(WindowRecord.from_json(written).to_json())
    text = json.dumps(written)
    assert json.dumps(WindowRecord.from_json(json.loads(text)).to_json()) == text  # byte for byte


def test_a_window_without_a_finite_projection_writes_nulls() -> None:
    from lightning_energy.report_model import WindowRecord
    from lightning_energy.step import StepProjector

    projection = StepProjector().update(1.0, 1.0, total_epochs=4)
    unmeasured = WindowRecord(0, 3, 1.0, 4, None)
    assert (unmeasured.total_j, unmeasured.stable) == (None, False)
    infinite = WindowRecord(0, 3, 1.0, 4, 1.0, replace(projection, total_j=math.inf, stable=True))
    written = infinite.to_json()
    assert [written[k] for k in ("projected_total_j", "projected_low_j", "projected_high_j")] == [None] * 3
    assert written["stable"] is True  # as STEP said, even without a finite total
    assert WindowRecord.from_json(written).to_json() == written
    assert WindowRecord.from_json({}).to_json()["projected_total_j"] is None
