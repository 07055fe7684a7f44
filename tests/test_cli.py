"""The ``lightning-energy`` command: report, compare, clear errors, delegation to PRE."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_examples import example_report, example_report_json

from lightning_energy import cli
from lightning_energy.report import REPORT_FILENAME, write_report


@pytest.fixture
def run_a(tmp_path: Path) -> Path:
    write_report(tmp_path / "run_a", example_report())
    return tmp_path / "run_a"


@pytest.fixture
def run_b(tmp_path: Path) -> Path:
    write_report(tmp_path / "run_b", example_report(num_epochs=4, status="partial"))
    return tmp_path / "run_b"


def test_report_one_run_prints_table_and_writes_png(run_a: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(run_a)]) == 0
    out = capsys.readouterr().out
    assert "STEP projection" in out and "PRE estimate" in out
    assert (run_a / cli.REPORT_PNG).read_bytes()[:4] == b"\x89PNG"
    assert f"plot: {run_a / cli.REPORT_PNG}" in out


def test_report_accepts_the_json_file_and_no_plot(run_a: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(run_a / REPORT_FILENAME), "--no-plot"]) == 0
    assert "energy Wh" in capsys.readouterr().out
    assert not (run_a / cli.REPORT_PNG).exists()


def test_report_several_runs_compares(
    run_a: Path, run_b: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "out" / "cmp.png"
    assert cli.main(["report", str(run_a), str(run_b), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["run_a", "run_b"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_report_without_report_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "No energy report in" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_report_corrupted_is_a_clear_error(run_a: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_a / REPORT_FILENAME
    path.write_text(path.read_text()[:200])  # truncated, as by a crash mid-write of an older tool
    assert cli.main(["report", str(run_a)]) == 1
    err = capsys.readouterr().err
    assert "corrupted or truncated" in err and str(path) in err


def test_report_with_unexpected_content_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = example_report_json()
    report["epochs"] = ["not", "a", "dict"]
    (tmp_path / REPORT_FILENAME).write_text(json.dumps(report))
    assert cli.main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "malformed" in err and "Traceback" not in err


def test_missing_matplotlib_still_prints_the_table(
    run_a: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import lightning_energy.plot as plot

    def no_matplotlib(*args: object, **kwargs: object) -> None:
        raise ImportError(plot.PLOT_INSTALL_HINT)

    monkeypatch.setattr(plot, "plot_report", no_matplotlib)
    assert cli.main(["report", str(run_a)]) == 0
    captured = capsys.readouterr()
    assert "energy Wh" in captured.out and "pip install lightning-energy[plot]" in captured.err
    assert cli.main(["report", str(run_a), "--png", str(run_a / "x.png")]) == 1


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "report" in capsys.readouterr().out


def test_estimate_is_delegated_to_pre(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["estimate", "--help"])
    assert info.value.code == 0
    assert "--batch-size" in capsys.readouterr().out


def test_fitting_is_not_a_user_command(capsys: pytest.CaptureFixture[str]) -> None:
    # refitting PRE overwrites the shipped coefficients: a maintainer's tool, not the user's CLI
    with pytest.raises(SystemExit) as info:
        cli.main(["fit", "--data", "x"])
    assert info.value.code == 2
    assert "invalid choice: 'fit'" in capsys.readouterr().err


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_energy.cli", "report", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "No such file or directory" in result.stderr and "Traceback" not in result.stderr
