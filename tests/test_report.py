"""The run report: atomic writing, CSV, loading with clear errors, text tables."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from lightning_energy import report as report_mod
from lightning_energy.report import (
    EPOCHS_CSV_FILENAME,
    REPORT_FILENAME,
    ReportError,
    energy_unit,
    example_report,
    find_report,
    load_report,
    pre_run_totals_j,
    write_epoch_csv,
    write_report,
)
from lightning_energy.report_table import compare_table, format_table


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    report = example_report()
    path = write_report(tmp_path / "run", report)
    assert path == tmp_path / "run" / REPORT_FILENAME
    assert (tmp_path / "run" / EPOCHS_CSV_FILENAME).is_file()
    assert load_report(tmp_path / "run") == json.loads(json.dumps(report))
    assert load_report(path)["version"] == 1
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_write_makes_values_json_safe(tmp_path: Path) -> None:
    report: dict[str, Any] = {
        **example_report(),
        "extra": {"nan": math.nan, "tuple": (1, 2), "path": tmp_path},
    }
    del report["format"], report["version"]  # filled in by write_report
    loaded = load_report(write_report(tmp_path, report))
    assert loaded["format"] == "lightning_energy.report"
    assert loaded["extra"] == {"nan": None, "tuple": [1, 2], "path": str(tmp_path)}


def test_write_is_atomic_when_serialising_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_report(tmp_path, example_report(num_epochs=3))
    before = (tmp_path / REPORT_FILENAME).read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(report_mod.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, example_report(num_epochs=5))
    assert (tmp_path / REPORT_FILENAME).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [EPOCHS_CSV_FILENAME, REPORT_FILENAME]


def test_write_rejects_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="report must be a mapping"):
        write_report(tmp_path, [1, 2])  # type: ignore[arg-type]


def test_epoch_csv_has_one_row_per_epoch_with_projection(tmp_path: Path) -> None:
    report = example_report(num_epochs=4)
    report["epochs"][2].update(energy_j=None, power_w=None, missing=True, reason="meter raised: boom")
    path = write_epoch_csv(tmp_path / "e.csv", report)
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert {"gpu_j", "cpu_j", "ram_j", "projected_total_j", "projected_low_j", "stable"} <= set(rows[0])
    assert float(rows[0]["energy_kwh"]) == pytest.approx(report["epochs"][0]["energy_j"] / 3.6e6)
    assert float(rows[3]["projected_total_j"]) == pytest.approx(report["projection"]["history"][3]["total_j"])
    assert (
        rows[2]["energy_j"] == ""
        and rows[2]["missing"] == "True"
        and rows[2]["reason"] == "meter raised: boom"
    )


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
    ],
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


def test_format_table_shows_epochs_projection_pre_and_co2() -> None:
    report = example_report(num_epochs=5)
    text = format_table(report)
    assert "energy Wh" in text and "projected Wh" in text and "interval Wh" in text
    first_cells = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert [c for c in first_cells if c.isdigit()] == ["0", "1", "2", "3", "4"]
    assert "stable since epoch 3" in text
    assert "STEP first declared stable after epoch 3: " in text
    assert "PRE estimate:" in text and "vs PRE" in text
    assert "CO2:" in text and "kg CO2e" in text and "PUE 1.2" in text


def test_format_table_handles_missing_epochs_skipped_pre_and_no_carbon() -> None:
    report = example_report(num_epochs=3, status="partial")
    report["epochs"][1].update(energy_j=None, power_w=None, missing=True, reason="meter raised: x")
    report["pre"] = {"skipped": "CPU-only training: PRE models GPU energy"}
    report["carbon"] = None
    report["projection"]["history"] = []
    report["warnings"] = ["something odd"]
    text = format_table(report)
    assert "missing" in text
    assert "PRE estimate: skipped (CPU-only training" in text
    assert "CO2: not reported" in text
    assert "  - something odd" in text
    assert "STEP projection" not in text


def test_pre_totals_are_the_whole_run() -> None:
    report = example_report()
    report["pre"].update(total_j=400.0, low_j=320.0, high_j=520.0, devices=4)
    assert pre_run_totals_j(report) == (400.0, 320.0, 520.0)
    del report["pre"]["low_j"], report["pre"]["high_j"]
    assert pre_run_totals_j(report) == (400.0, 400.0, 400.0)
    report["pre"] = None
    assert pre_run_totals_j(report) is None


def test_energy_unit_scales() -> None:
    assert energy_unit(10.0) == ("J", 1.0)
    assert energy_unit(7200.0) == ("Wh", 3600.0)
    assert energy_unit(7.2e6) == ("kWh", 3.6e6)


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
    from lightning_energy.report import first_stable

    report = example_report(num_epochs=6)
    history = report["projection"]["history"]
    for entry, stable in zip(history, [False, True, False, True, True, True], strict=True):
        entry["stable"] = stable
    assert first_stable(report) is history[1]
    report["projection"]["history"] = []
    assert first_stable(report) is None
