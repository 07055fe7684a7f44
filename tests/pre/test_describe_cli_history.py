from __future__ import annotations

import argparse
import random
import sys
import threading
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_energy.errors import EstimationError
from lightning_energy.pre import RunHistory, add_estimate_parser, estimate_for_fit, run_estimate
from lightning_energy.pre.__main__ import main as pre_main
from lightning_energy.pre.describe import count_forward_flops, describe_model

from .synthetic import synthetic_descriptors

H100_INFO = {"name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0, "memory_gb": 79.6, "uuid": "GPU-x"}


def test_flops_of_known_model_match_hand_count() -> None:
    mlp = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    assert count_forward_flops(mlp, torch.zeros(4, 10)) == 4 * 2 * (10 * 20 + 20 * 5)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Dropout(0.5))
    descriptor = describe_model(conv, torch.zeros(2, 3, 8, 8), precision="bf16-mixed")
    assert descriptor.forward_flops_per_sample == 2 * (8 * 8) * 8 * (3 * 9)
    assert descriptor.input_shape == (3, 8, 8) and descriptor.precision == "bf16-mixed"
    assert descriptor.parameter_count == 8 * 3 * 9 + 8 + 2 * 8


def test_counting_preserves_rng_and_modes() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    model.train()
    model[2].eval()
    running = model[2].running_mean.clone()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    count_forward_flops(model, torch.randn(3, 4))
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    torch.randn(3, 4)  # the only draw the test itself made
    assert after == (torch.rand(1).item(), np.random.rand(), random.random())
    assert model.training and model[1].training and not model[2].training
    assert torch.equal(model[2].running_mean, running)


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(16, 2)
        self.results: list[object] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _EstimateOnFitStart(L.Callback):
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rng = torch.get_rng_state()
        pl_module.results.append(estimate_for_fit(trainer, pl_module, gpu_info=H100_INFO, total_epochs=2))
        pl_module.results.append(torch.equal(rng, torch.get_rng_state()))


def test_estimate_for_fit_in_a_real_fit() -> None:
    data = TensorDataset(torch.randn(100, 16), torch.randint(0, 2, (100,)))
    model = _Tiny()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_EstimateOnFitStart()],
    )
    trainer.fit(model, DataLoader(data, batch_size=32, shuffle=True), DataLoader(data, batch_size=50))
    fit_estimate, rng_untouched = model.results
    assert rng_untouched
    d = fit_estimate.descriptor  # type: ignore[attr-defined]
    assert d.model.forward_flops_per_sample == 2 * 16 * 2 and d.model.input_shape == (16,)
    assert (d.data.batch_size, d.data.train_samples, d.data.val_samples, d.data.steps_per_epoch) == (
        32,
        100,
        100,
        4,
    )
    assert d.gpu.name == "H100 SXM" and d.host_ram_gb > 0
    assert fit_estimate.low_j < fit_estimate.total_j < fit_estimate.high_j  # type: ignore[attr-defined]
    assert fit_estimate.to_dict()["total_epochs"] == 2  # type: ignore[attr-defined]
    assert "kWh" in fit_estimate.summary()  # type: ignore[attr-defined]
    with pytest.raises(EstimationError, match="total_epochs"):
        estimate_for_fit(trainer, model, gpu_info=H100_INFO, total_epochs=0)


def _estimate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_estimate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["estimate", *argv])
    return run_estimate(args)


def test_cli_ranks_gpus_cheapest_first(capsys: pytest.CaptureFixture[str]) -> None:
    common = [
        "--input-shape",
        "3,224,224",
        "--batch-size",
        "64",
        "--train-samples",
        "50000",
        "--epochs",
        "10",
    ]
    assert _estimate(["--gflops", "8", *common, "--gpu", "H100 SXM", "--gpu", "T4", "--gpu", "RTX 3090"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 3
    energies = [float(r[-4]) for r in rows]
    assert energies == sorted(energies)
    assert (
        _estimate(
            [
                "--model",
                "torch.nn:Linear",
                "--model-args",
                '{"in_features": 512, "out_features": 10}',
                "--input-shape",
                "512",
                "--batch-size",
                "8",
                "--train-samples",
                "100",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    assert "1.024e-05 GFLOPs" in capsys.readouterr().out
    assert _estimate(["--gflops", "8", *common, "--gpu", "B9000"]) == 2
    assert "gpu must be one of" in capsys.readouterr().err
    assert _estimate(["--gflops", "-1", *common]) == 2


def test_module_fit_command_writes_coefficients(gaissa_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    assert pre_main(["fit", "--data", str(gaissa_dir), "--out", str(out)]) == 0
    text = out.read_text()
    assert '"time"' in text and "chesslive" not in text and len(text) < 50_000


def test_history_round_trip_and_concurrent_appends(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    descriptors = synthetic_descriptors(("T4",))[:8]

    def worker(k: int) -> None:
        history = RunHistory(path)
        for d in descriptors:
            history.append(d, epoch_energy_j=100.0 + k, power_w=50.0, epoch_seconds=2.0, epochs=3)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = RunHistory(path).runs()
    assert len(runs) == 32 and len(RunHistory(path)) == 32
    assert {r.descriptor for r in runs} == set(descriptors)
    assert runs[0].epochs == 3 and runs[0].epoch_seconds == pytest.approx(runs[0].epoch_energy_j / 50.0)
    assert not list(tmp_path.glob("*.lock"))
    with pytest.raises(EstimationError, match="power_w must be"):
        RunHistory(path).append(descriptors[0], epoch_energy_j=1.0, power_w=0.0, epoch_seconds=1.0, epochs=1)


def test_default_history_path_is_in_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lightning_energy.pre.history import default_history_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_history_path().name == "history.sqlite"
    assert "lightning_energy" in str(default_history_path())


def test_cli_finds_a_model_module_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "my_tiny_model.py").write_text(
        "import torch\n\nclass Tiny(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(8, 2)\n"
        "    def forward(self, x):\n        return self.fc(x)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    argv = ["--model", "my_tiny_model:Tiny", "--input-shape", "8", "--batch-size", "4"]
    assert _estimate([*argv, "--train-samples", "100", "--epochs", "2", "--gpu", "T4"]) == 0
    assert "T4" in capsys.readouterr().out
