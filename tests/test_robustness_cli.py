"""Issue 24, the CLIs and the loaders: damaged reports, states, coefficients and arguments give the project's
own errors, one line each, never a traceback (items 15-19 and a seeded property-style sweep)."""

from __future__ import annotations

import copy
import json
import math
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from report_examples import example_report_json

from lightning_energy import cli
from lightning_energy.accounting import EnergyLedger, EpochRecord
from lightning_energy.budget import Budget
from lightning_energy.errors import EnergyError
from lightning_energy.report import REPORT_FILENAME, ReportError, load_report, write_report
from lightning_energy.report_model import TrainerFacts
from lightning_energy.report_table import format_table
from lightning_energy.run import EnergyRun
from lightning_energy.step import StepProjector

ESTIMATE = [
    "estimate",
    "--gflops",
    "1",
    "--input-shape",
    "3,32,32",
    "--batch-size",
    "32",
    "--train-samples",
    "1000",
    "--epochs",
    "3",
    "--gpu",
    "T4",
]


def _one_error_line(err: str) -> str:
    """The single error line of a failed command (argparse's usage lines aside); no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line and not line.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    assert "error:" in lines[0]
    return lines[0]


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_FILENAME
    path.write_text(text, encoding="utf-8")
    return folder


# ----------------------------------------------------------------------------------------- items 15-16
@pytest.mark.parametrize(
    ("path", "token"),
    [
        (("totals", "duration_s"), "1e999"),
        (("epochs", 0, "epoch"), "1e999"),
        (("world_size",), "1e999"),
        (("world_size",), "NaN"),
        (("epochs", 0, "batches"), "NaN"),
        (("epochs", 0, "duration_s"), "-Infinity"),
        (("max_steps",), "1" + "0" * 400),
        (("totals", "measured_epochs"), "NaN"),
    ],
)
def test_a_report_with_non_finite_numbers_is_a_report_error_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: tuple[Any, ...], token: str
) -> None:
    data = example_report_json(num_epochs=3)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@"
    run = _write(tmp_path / "run", json.dumps(data).replace('"@@"', token))
    with pytest.raises(ReportError, match=str(path[-1])):
        load_report(run)
    assert cli.main(["report", str(run), "--no-plot"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(run / REPORT_FILENAME) in line


def test_a_report_of_absurd_nesting_or_digits_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError):
        load_report(_write(tmp_path / "a", "[" * 100_000 + "]" * 100_000))
    with pytest.raises(ReportError):
        load_report(
            _write(tmp_path / "b", '{"format": "lightning_energy.report", "version": ' + "9" * 5000 + "}")
        )


# ----------------------------------------------------------------------------------------- item 17
def test_a_model_module_that_raises_on_import_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "needs_cuda_model.py").write_text('raise RuntimeError("this model needs CUDA")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = [a for a in ESTIMATE if a not in ("--gflops", "1")] + ["--model", "needs_cuda_model:Net"]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "needs CUDA" in line and "needs_cuda_model" in line


def test_a_model_module_that_raises_on_import_is_one_line_at_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "needs_cuda_model.py").write_text('raise RuntimeError("this model needs CUDA")\n')
    argv = [a for a in ESTIMATE if a not in ("--gflops", "1")] + ["--model", "needs_cuda_model:Net"]
    done = subprocess.run(
        [sys.executable, "-m", "lightning_energy.cli", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "needs CUDA" in _one_error_line(done.stderr)


# ----------------------------------------------------------------------------------------- item 18
def test_huge_epochs_with_json_prints_json_or_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*ESTIMATE[:-4], "--epochs", "1e308", "--json", "--gpu", "T4"]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and not out
    assert "--epochs 1e+308" in _one_error_line(err)
    assert cli.main([*ESTIMATE[:-4], "--epochs", "1e6", "--json", "--gpu", "T4"]) == 0
    assert _strict_json(capsys.readouterr().out)["runs"][0]["total_j"] > 0


# ----------------------------------------------------------------------------------------- item 19
def _coefficients() -> dict[str, Any]:
    text = resources.files("lightning_energy.pre").joinpath("coefficients.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("section", ["time", "power", "interval"])
def test_coefficients_with_non_finite_values_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str, section: str
) -> None:
    data = _coefficients()
    first = next(iter(data[section]))
    data[section][first] = "@@"
    path = tmp_path / "coefficients.json"
    path.write_text(json.dumps(data).replace('"@@"', token))
    for extra in ([], ["--json"]):
        assert cli.main([*ESTIMATE, "--coefficients", str(path), *extra]) == 2
        out, err = capsys.readouterr()
        assert not out and "n/a" not in out
        assert "not a finite number" in _one_error_line(err)


# ---------------------------------------------------------------------------------- property-style sweep
BAD_NUMBERS: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    1e-320,
    -1.0,
    0,
    2.5,
    10**400,
    -(10**30),
    True,
    "12",
    None,
    [],
    {},
    [math.nan],
    {"x": math.inf},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in a JSON-like value (containers included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


def _mutate(data: Any, rng: random.Random, changes: int) -> Any:
    data = copy.deepcopy(data)
    for _ in range(changes):
        paths = list(_paths(data))
        if not paths:
            break
        path = rng.choice(paths)
        target = data
        for key in path[:-1]:
            target = target[key]
        if rng.random() < 0.1 and isinstance(target, dict):
            del target[path[-1]]
        else:
            target[path[-1]] = copy.deepcopy(rng.choice(BAD_NUMBERS))
    return data


def _dump(data: Any) -> str:
    """JSON as a damaged or hand-edited file may hold it: NaN/Infinity tokens and huge integers."""
    try:
        return json.dumps(data, allow_nan=True)
    except ValueError:  # an integer too long to print: cut to the most digits Python reads back
        return json.dumps(data, allow_nan=True, default=str)


def _only_own_errors(action: Callable[[], object]) -> None:
    """Run ``action``: it may succeed or raise an :class:`EnergyError`; anything else fails the test."""
    try:
        action()
    except EnergyError as err:
        assert str(err)


def test_property_load_report_and_the_report_cli_only_give_report_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(24)
    base = example_report_json(num_epochs=4)
    refused = 0
    for case in range(200):
        data = _mutate(base, rng, changes=rng.randint(1, 4))
        run = _write(tmp_path / f"r{case}", _dump(data))
        try:
            report = load_report(run)
        except ReportError as err:
            assert "\n" not in str(err)
            refused += 1
        else:
            format_table(report)  # whatever loads, prints
        plot = case % 25 == 0
        png = ["--png", str(tmp_path / "p.png")] if plot else ["--no-plot"]
        code = cli.main(["report", str(run), *png])
        err = capsys.readouterr().err
        if code != 0:
            _one_error_line(err)
        else:
            assert "Traceback" not in err
    assert 20 < refused < 200  # the sweep exercises both outcomes


def _state() -> dict[str, Any]:
    run = EnergyRun()
    run.set_budget(Budget(max_epochs=6, batches_per_epoch=8), window_batches=4)
    for epoch in range(3):
        for step in range(2):
            run.close_window(epoch=epoch, step=step, time_s=1.0, batches=4, energy_j=50.0, duration_s=1.0)
        run.finish_epoch(EpochRecord(epoch, 10.0, 100.0, {"gpu": 80.0, "cpu": 20.0}, None, 8))
    return run.state_dict()


def test_property_state_loaders_only_give_the_projects_errors(tmp_path: Path) -> None:
    rng = random.Random(7)
    base = _state()
    refused = 0
    for case in range(200):
        state = _mutate(base, rng, changes=rng.randint(1, 3))
        run = EnergyRun()
        try:
            run.load_state_dict(state)
        except EnergyError as err:
            refused += 1
            assert str(err)
        else:  # a state that loads is a usable state: the run continues and reports
            run.set_budget(Budget(max_epochs=8, batches_per_epoch=8), window_batches=4)
            run.close_window(epoch=3, step=0, time_s=1.0, batches=4, energy_j=50.0, duration_s=1.0)
            run.finish_epoch(EpochRecord(len(run.ledger.records) + 10, 10.0, 100.0, {"gpu": 100.0}, None, 8))
            report = run.report("complete", TrainerFacts())
            assert report.totals.energy_j is None or report.totals.energy_j >= 0
            write_report(tmp_path / f"s{case}", report)
            load_report(tmp_path / f"s{case}")
        ledger_state = state.get("ledger") if isinstance(state, dict) else None
        if isinstance(ledger_state, dict):
            _only_own_errors(lambda s=ledger_state: EnergyLedger().load_state_dict(s))
        projector_state = state.get("projector") if isinstance(state, dict) else None
        if isinstance(projector_state, dict):
            _only_own_errors(lambda s=projector_state: StepProjector().load_state_dict(s))
    assert 20 < refused < 200


def _argv(rng: random.Random) -> list[str]:
    values = ["nan", "inf", "-inf", "1e308", "1e999", "-1", "0", "1e-320", "3", "2.5", "9" * 30, "abc", ""]
    argv = list(ESTIMATE)
    for _ in range(rng.randint(1, 3)):
        option = rng.choice(
            ["--gflops", "--epochs", "--batch-size", "--train-samples", "--host-ram-gb", "--conv-fraction"]
        )
        argv += [option, rng.choice(values)]
    if rng.random() < 0.3:
        argv += ["--input-shape", rng.choice(["0", "-3", "1e9", "3,3", "9" * 30, "x"])]
    if rng.random() < 0.5:
        argv.append("--json")
    return argv


def test_property_the_estimate_cli_only_gives_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(18)
    coefficients = _coefficients()
    outcomes = {"ok": 0, "refused": 0}
    for case in range(200):
        argv = _argv(rng)
        if case % 4 == 0:
            path = tmp_path / f"c{case}.json"
            path.write_text(_dump(_mutate(coefficients, rng, changes=1)))
            argv += ["--coefficients", str(path)]
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse's own usage error (a bad number for an int option)
            code = int(exit_.code or 0)
            assert code == 2
        out, err = capsys.readouterr()
        if code == 0:
            outcomes["ok"] += 1
            if "--json" in argv:
                for row in _strict_json(out)["runs"]:
                    assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
            else:
                assert "n/a" not in out and "nan" not in out and "inf" not in out
        else:
            outcomes["refused"] += 1
            assert not out
            _one_error_line(err)
    assert outcomes["ok"] > 10 and outcomes["refused"] > 10
