from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from lightning_energy.pre import add_estimate_parser, run_estimate

COMMON = ["--input-shape", "3,224,224", "--batch-size", "64", "--train-samples", "50000", "--epochs", "10"]
TINY_MODEL = (
    "import torch\n\nclass Tiny(torch.nn.Module):\n"
    "    def __init__(self, width: int = 2):\n        super().__init__()\n"
    "        self.fc = torch.nn.Linear(8, width)\n"
    "    def forward(self, x):\n        return self.fc(x)\n"
)


def _estimate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_estimate_parser(parser.add_subparsers(dest="command"))
    return run_estimate(parser.parse_args(["estimate", *argv]))


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[2:] if line.split() and line.split()[0].isdigit()]


def test_cli_ranks_gpus_cheapest_first_with_three_significant_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gpus = ["--gpu", "H100 SXM", "--gpu", "T4", "--gpu", "NVIDIA A40", "--gpu", "Tesla P100-PCIE-16GB"]
    assert _estimate(["--gflops", "8", *COMMON, *gpus]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 4 and [r[0] for r in rows] == ["1", "2", "3", "4"]
    assert _estimate(["--gflops", "8", *COMMON, *gpus, "--json"]) == 0
    energies = [run["total_j"] for run in json.loads(capsys.readouterr().out)["runs"]]
    assert energies == sorted(energies) and len(energies) == 4
    assert "0.0000" not in out and "measured" in out and "same-generation datasheet" in out


def test_cli_tf32_flag_speeds_up_fp32_matmuls_on_tensor_core_gpus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bert = ["--gflops", "70.7", "--input-shape", "384", "--batch-size", "32", "--train-samples", "88641"]
    assert _estimate([*bert, "--epochs", "2", "--gpu", "A100 40GB PCIe", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)["runs"][0]
    assert _estimate([*bert, "--epochs", "2", "--gpu", "A100 40GB PCIe", "--json", "--tf32"]) == 0
    tf32 = json.loads(capsys.readouterr().out)["runs"][0]
    assert default["speed_source"] == "FP32 CUDA cores" and tf32["speed_source"] == "measured"
    assert tf32["epoch_seconds"] < 0.5 * default["epoch_seconds"]
    assert _estimate([*bert, "--epochs", "2", "--gpu", "A100 40GB PCIe"]) == 0
    assert "TF32 matmuls off (--tf32 if you enable them)" in capsys.readouterr().out


def test_cli_json_and_tiny_runs(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--gflops",
        "1e-6",
        "--input-shape",
        "4",
        "--batch-size",
        "2",
        "--train-samples",
        "4",
        "--epochs",
        "1",
    ]
    assert _estimate([*argv, "--gpu", "A10"]) == 0
    out = capsys.readouterr().out
    assert " J" in out.splitlines()[1] and "0.0000" not in out
    assert _estimate([*argv, "--gpu", "A10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    run = data["runs"][0]
    assert run["gpu_name"] == "A10" and run["total_low_j"] < run["total_j"] < run["total_high_j"]
    assert data["conv_flop_fraction"] == 0.0


def test_cli_counts_a_module_class(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "torch.nn:Linear", "--model-args", '{"in_features": 512, "out_features": 10}']
    assert (
        _estimate(
            [*argv, "--input-shape", "512", "--batch-size", "8", "--train-samples", "100", "--epochs", "1"]
        )
        == 0
    )
    assert "10.2 kFLOPs/sample" in capsys.readouterr().out


def test_cli_loads_a_file_and_a_module_of_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "my_tiny_model.py").write_text(TINY_MODEL)
    (tmp_path / "local_model.py").write_text(TINY_MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    rest = [
        "--input-shape",
        "8",
        "--batch-size",
        "4",
        "--train-samples",
        "100",
        "--epochs",
        "2",
        "--gpu",
        "T4",
    ]
    assert _estimate(["--model", "models/my_tiny_model.py:Tiny", "--model-args", '{"width": 4}', *rest]) == 0
    assert "64.0 FLOPs/sample" in capsys.readouterr().out
    assert _estimate(["--model", "local_model:Tiny", *rest]) == 0
    assert "T4" in capsys.readouterr().out
    assert _estimate(["--model", "models/missing.py:Tiny", *rest]) == 2
    assert "no such file" in capsys.readouterr().err
    assert _estimate(["--model", "models/my_tiny_model.py:Nope", *rest]) == 2
    assert "no 'Nope'" in capsys.readouterr().err


def test_cli_reads_a_lightning_cli_config_with_jsonargparse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "seed_everything: 1\ntrainer:\n  max_epochs: 3\n"
        "model:\n  class_path: torch.nn.Linear\n  init_args:\n    in_features: 8\n    out_features: 4\n"
        "data:\n  batch_size: 4\n"
    )
    rest = [
        "--input-shape",
        "8",
        "--batch-size",
        "4",
        "--train-samples",
        "100",
        "--epochs",
        "2",
        "--gpu",
        "T4",
    ]
    assert _estimate(["--config", str(config), *rest]) == 0
    assert "64.0 FLOPs/sample" in capsys.readouterr().out
    # a config for a fixed model class: its init args, the class from --model
    (tmp_path / "tiny.py").write_text(TINY_MODEL)
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("model:\n  width: 3\n")
    assert _estimate(["--model", f"{tmp_path}/tiny.py:Tiny", "--config", str(fixed), *rest]) == 0
    assert "48.0 FLOPs/sample" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  class_path: torch.nn.Linear\n  init_args:\n    in_features: eight\n")
    assert _estimate(["--config", str(bad), *rest]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lightning-energy estimate: error: --config") and err.count("\n") == 1


def test_cli_token_model_gets_integer_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lm.py").write_text(
        "import torch\n\nclass LM(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.embed = torch.nn.Embedding(50, 16)\n        self.out = torch.nn.Linear(16, 50)\n"
        "    def forward(self, tokens):\n        return self.out(self.embed(tokens))\n"
    )
    rest = [
        "--input-shape",
        "12",
        "--batch-size",
        "4",
        "--train-samples",
        "100",
        "--epochs",
        "1",
        "--gpu",
        "A40",
    ]
    assert _estimate(["--model", f"{tmp_path}/lm.py:LM", *rest, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model_gflops"] == pytest.approx(2 * 12 * 16 * 50 / 1e9)
    assert data["conv_flop_fraction"] == 0.0
    assert _estimate(["--model", f"{tmp_path}/lm.py:LM", *rest, "--input-dtype", "float"]) == 2
    assert "forward failed" in capsys.readouterr().err


def test_cli_user_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--gflops", "8", *COMMON, "--gpu", "B9000"], "not in the GPU table"),
        (["--gflops", "-1", *COMMON], "--gflops must be > 0"),
        ([*COMMON], "give the model"),
        (["--gflops", "8", "--model", "torch.nn:Linear", *COMMON], "cannot be combined"),
        (
            ["--model", "torch.nn:Linear", "--model-args", "[1]", *COMMON],
            "--model-args must be a JSON object",
        ),
        (["--model", "torch.nn:Linear", *COMMON], "Linear(**{}) failed"),
        (["--model", "no_such_module_xyz:Net", *COMMON], "cannot import"),
        (["--gflops", "8", *COMMON[:-1], "0"], "--epochs must be > 0"),
    ):
        assert _estimate(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


def test_cli_help_reads_well_and_explains_gflops(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_estimate_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["estimate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "90%%" not in text and "90% intervals" in text and "GPU energy only" in text
    assert "2 per multiply-accumulate" in text and "8.2 GFLOPs = 4.1 GMACs" in text


@pytest.mark.parametrize("shape", ["3,x,224", "3,,224", "3,224,", "3.5,224", "3,-224", "0,224", "abc"])
def test_cli_rejects_a_malformed_input_shape(shape: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--gflops", "8", "--input-shape", shape, "--batch-size", "8", "--train-samples", "80"]
    assert _estimate([*argv, "--epochs", "1", "--gpu", "A10"]) == 2
    err = capsys.readouterr().err
    assert "--input-shape" in err and repr(shape) in err and err.count("\n") == 1


@pytest.mark.parametrize("shape", ["3,224,224", "3x224x224", "(3, 224, 224)"])
def test_cli_accepts_the_usual_shape_spellings(shape: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--gflops", "8", "--input-shape", shape, "--batch-size", "8", "--train-samples", "80"]
    assert _estimate([*argv, "--epochs", "1", "--gpu", "A10"]) == 0
    assert "input (3, 224, 224)" in capsys.readouterr().out


def test_cli_unknown_gpu_says_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert _estimate(["--gflops", "8", *COMMON, "--gpu", "A100"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" in err and err.count("\n") == 1
    assert err.count("A100") == 5 and "A10'" not in err and "GTX 750 Ti" not in err


def test_cli_wrong_input_shape_reports_the_real_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tiny.py").write_text(TINY_MODEL)  # a Linear(8, ...): a float input of 8 features
    rest = ["--input-shape", "7", "--batch-size", "4", "--train-samples", "100", "--epochs", "1"]
    assert _estimate(["--model", f"{tmp_path}/tiny.py:Tiny", *rest, "--gpu", "T4"]) == 2
    err = capsys.readouterr().err
    # the float attempt's shape mismatch is shown first, not only the integer fallback's dtype error
    assert "zero float batch: RuntimeError" in err and "1x7 and 8x2" in err and err.count("\n") == 1
    assert err.index("float batch") < err.index("integer (token ids) batch")


def test_cli_missing_class_names_the_file_not_an_internal_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tiny.py").write_text(TINY_MODEL)
    argv = ["--model", f"{tmp_path}/tiny.py:Nope", "--input-shape", "8", "--batch-size", "4"]
    assert _estimate([*argv, "--train-samples", "100", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "_lightning_energy_model" not in err and str(tmp_path / "tiny.py") in err


def test_cli_says_what_is_counted_and_when_the_ranking_is_not_decided(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gpus = ["--gpu", "A100 40GB PCIe", "--gpu", "H100 PCIe", "--gpu", "A40", "--gpu", "GTX 750 Ti"]
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus]) == 0
    out = capsys.readouterr().out
    assert "counted: GPU energy only" in out
    assert "not decided: these" in out and "within the uncertainty" in out
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    close = data["within_uncertainty"]
    runs = {r["gpu_name"]: r for r in data["runs"]}
    top = data["runs"][0]
    assert close[0] == top["gpu_name"] and len(close) >= 2
    for name, run in runs.items():
        overlaps = run["low_j"] <= top["high_j"] and top["low_j"] <= run["high_j"]
        assert (name in close) == overlaps
    assert data["counted"].startswith("GPU energy only")


def test_cli_sorts_by_time(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = ["--gpu", "T4", "--gpu", "H100 SXM", "--gpu", "A10", "--gpu", "L4"]
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus, "--sort", "time", "--json"]) == 0
    seconds = [r["epoch_seconds"] for r in json.loads(capsys.readouterr().out)["runs"]]
    assert seconds == sorted(seconds)
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus, "--json"]) == 0
    energies = [r["epoch_energy_j"] for r in json.loads(capsys.readouterr().out)["runs"]]
    assert energies == sorted(energies) and seconds != energies


def test_cli_shows_the_regime_and_why_the_top_pick_wins(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = ["--gpu", "A100 40GB PCIe", "--gpu", "H100 PCIe", "--gpu", "RTX 4090"]
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus]) == 0
    out = capsys.readouterr().out
    assert "bound" in out.splitlines()[1]
    rows = _rows(out)
    assert all({"compute", "bandwidth", "host"} & set(row) for row in rows)
    why = [line for line in out.splitlines() if line.startswith("why ")]
    assert len(why) == 1 and rows[0][1] in why[0] and "% less energy" in why[0]
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["why"] == why[0]
    assert {run["regime"] for run in data["runs"]} <= {"compute-bound", "bandwidth-bound", "host-bound"}


def test_cli_shows_each_gpus_board_class(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = ["--gpu", "A100 40GB PCIe", "--gpu", "RTX 4090"]
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus]) == 0
    out = capsys.readouterr().out
    assert "board" in out.splitlines()[1]
    classes = {row[1] + " " + row[2]: row for row in _rows(out)}
    assert "data-centre" in classes["A100 40GB"] and "consumer" in classes["RTX 4090"]
    assert _estimate(["--gflops", "8.18", *COMMON, *gpus, "--json"]) == 0
    runs = {run["gpu_name"]: run["board_class"] for run in json.loads(capsys.readouterr().out)["runs"]}
    assert runs == {"A100 40GB PCIe": "data-centre", "RTX 4090": "consumer"}
