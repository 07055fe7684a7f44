from __future__ import annotations

import random

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_energy.errors import EstimationError
from lightning_energy.pre import FitEstimate, RunDescriptor, estimate_for_fit
from lightning_energy.pre.describe import count_forward_flop_breakdown, count_forward_flops, describe_model
from lightning_energy.report_model import PreSummary

H100_INFO = {"name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0, "memory_gb": 79.6, "uuid": "GPU-x"}


def test_flops_of_known_model_match_hand_count() -> None:
    mlp = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    assert count_forward_flops(mlp, torch.zeros(4, 10)) == 4 * 2 * (10 * 20 + 20 * 5)
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Dropout(0.5))
    descriptor = describe_model(conv, torch.zeros(2, 3, 8, 8), precision="bf16-mixed")
    assert descriptor.forward_flops_per_sample == 2 * (8 * 8) * 8 * (3 * 9)
    assert descriptor.input_shape == (3, 8, 8) and descriptor.precision == "bf16-mixed"
    assert descriptor.parameter_count == 8 * 3 * 9 + 8 + 2 * 8
    assert descriptor.conv_flop_fraction == 1.0 and descriptor.trainable_fraction == 1.0


def test_op_breakdown_places_a_model_between_the_families() -> None:
    conv_flops = 2 * (8 * 8) * 4 * (3 * 9)
    linear_flops = 2 * (4 * 8 * 8) * 10
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    split = count_forward_flop_breakdown(model, torch.zeros(1, 3, 8, 8))
    assert (split.total, split.conv) == (conv_flops + linear_flops, conv_flops)
    assert split.conv_fraction == pytest.approx(conv_flops / (conv_flops + linear_flops))


def test_token_model_gets_flops_and_the_matmul_family() -> None:
    """A sequence model fed token ids: embedding (no FLOPs) + attention + MLP, counted per sample."""
    seq, width = 16, 32

    class TinyTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, width)
            self.layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=64, batch_first=True)
            self.head = nn.Linear(width, 2)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.head(self.layer(self.embed(tokens)))

    model = TinyTransformer()
    descriptor = describe_model(model, torch.zeros(2, seq, dtype=torch.long))
    projections = 2 * seq * (4 * width * width + 2 * width * 64 + width * 2)
    attention = 2 * 2 * seq * seq * width
    assert descriptor.forward_flops_per_sample == pytest.approx(projections + attention, rel=0.05)
    assert descriptor.conv_flop_fraction == 0.0 and descriptor.input_shape == (seq,)
    model.embed.weight.requires_grad_(False)
    frozen = describe_model(model, torch.zeros(1, seq, dtype=torch.long))
    assert frozen.trainable_fraction is not None and frozen.trainable_fraction < 1.0
    # the run's TF32 setting for FP32 matmuls is recorded as it is when the model is described
    assert descriptor.matmul_tf32 is torch.backends.cuda.matmul.allow_tf32
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        assert describe_model(model, torch.zeros(1, seq, dtype=torch.long)).matmul_tf32 is True
    finally:
        torch.set_float32_matmul_precision(before)


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


class _EstimateOnTrainStart(L.Callback):
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
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
        callbacks=[_EstimateOnTrainStart()],
    )
    trainer.fit(model, DataLoader(data, batch_size=32, shuffle=True), DataLoader(data, batch_size=50))
    fit_estimate, rng_untouched = model.results
    assert rng_untouched and isinstance(fit_estimate, FitEstimate) and isinstance(fit_estimate, PreSummary)
    d = fit_estimate.descriptor
    assert d is not None
    assert d.model.forward_flops_per_sample == 2 * 16 * 2 and d.model.input_shape == (16,)
    assert d.model.conv_flop_fraction == 0.0
    assert (d.data.batch_size, d.data.train_samples, d.data.val_samples, d.data.steps_per_epoch) == (
        32,
        100,
        100,
        4,
    )
    assert d.gpu.name == "H100 SXM" and d.host_ram_gb > 0
    assert fit_estimate.low_j < fit_estimate.total_j < fit_estimate.high_j
    assert fit_estimate.to_json()["total_epochs"] == 2 and fit_estimate.devices == 1
    with pytest.raises(EstimationError, match="total_epochs"):
        estimate_for_fit(trainer, model, gpu_info=H100_INFO, total_epochs=0)


def test_fit_estimate_budget_and_summary() -> None:
    from lightning_energy.fit_estimate import summary
    from lightning_energy.pre import DataDescriptor, ModelDescriptor, PreEstimator, lookup_gpu

    d = RunDescriptor(
        ModelDescriptor(8.18e9, (3, 224, 224)), DataDescriptor(256, 1_281_167), lookup_gpu("A40")
    )
    est = PreSummary.of_fit(d, PreEstimator.default().predict(d), total_epochs=90, devices=2)
    assert est.estimate is not None and est.descriptor == d
    shorter = est.scaled_to(2.5)
    assert shorter is not est and shorter.total_epochs == 2.5 and est.total_epochs == 90
    assert shorter.total_j == pytest.approx(est.total_j * 2.5 / 90)
    assert shorter.low_j < shorter.total_j < shorter.high_j
    assert est.total_j == pytest.approx(2 * 90 * est.estimate.epoch_energy_j)
    line = summary(est)
    assert "A40" in line and "kWh" in line and "90 epochs" in line
    assert "0.0000" not in line
    tiny = RunDescriptor(ModelDescriptor(1e3, (4,)), DataDescriptor(4, 8), lookup_gpu("A40"))
    small = summary(PreSummary.of_fit(tiny, PreEstimator.default().predict(tiny), total_epochs=1))
    assert " J " in small or " J;" in small or " J (" in small  # a tiny run in joules, not "0.0000 kWh"
    for bad in (0, -1, float("inf"), True):
        with pytest.raises(EstimationError, match="total_epochs"):
            PreSummary.of_fit(d, est.estimate, bad)  # type: ignore[arg-type]
    with pytest.raises(EstimationError, match="devices"):
        PreSummary.of_fit(d, est.estimate, 1, devices=0)
