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
    return [line.split() for line in out.splitlines()[2:]]


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
        (["--gflops", "8", *COMMON, "--gpu", "B9000"], "gpu must be one of"),
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
