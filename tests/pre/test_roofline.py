"""Memory traffic (counted by op class), the roofline table and the regime of a run."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from lightning_energy.errors import EstimationError
from lightning_energy.pre import DataDescriptor, ModelDescriptor, PreEstimator, RunDescriptor, lookup_gpu
from lightning_energy.pre.describe import count_traffic, describe_model, traffic_class
from lightning_energy.pre.roofline import (
    REGIMES,
    gpu_roofline,
    model_traffic,
    workload_descriptor,
    workload_names,
)
from lightning_energy.pre.throughput import measured_gpu_names


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("aten.addmm.default", "matmul"),
        ("aten.convolution.default", "matmul"),
        ("aten.bmm.default", "matmul"),
        ("aten.embedding.default", "embedding"),
        ("aten._scaled_dot_product_flash_attention_for_cpu.default", "attention"),
        ("aten.relu.default", "elementwise"),
        ("aten.native_batch_norm.default", "elementwise"),
        ("aten.split.Tensor", None),
        ("aten.unbind.int", None),
    ],
)
def test_operators_fall_in_their_class(op: str, expected: str | None) -> None:
    assert traffic_class(op) == expected


def test_traffic_counts_reads_and_writes_and_separates_parameters() -> None:
    linear = torch.nn.Linear(8, 4)
    counted = count_traffic(linear, torch.zeros(5, 8))
    # addmm reads x (5x8) and writes y (5x4); the bias (4) and the weight (8x4, through a view) are parameters
    assert counted.activation_bytes["matmul"] == 4 * (5 * 8 + 5 * 4)
    assert counted.parameter_bytes["matmul"] == 4 * (4 + 8 * 4)
    assert counted.activation_bytes["elementwise"] == 0 and counted.kernels == 1


def test_traffic_of_a_lookup_reads_only_the_rows_it_returns() -> None:
    table = torch.nn.Embedding(1000, 16)
    counted = count_traffic(table, torch.zeros(2, 3, dtype=torch.long))
    assert counted.parameter_bytes["embedding"] == 4 * 2 * 3 * 16  # not the 1000 x 16 table
    assert counted.activation_bytes["embedding"] == 8 * 6 + 4 * 6 * 16


def test_traffic_works_on_meta_tensors_and_with_backward() -> None:
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten())
    x = torch.zeros(2, 3, 16, 16, device="meta")
    forward = count_traffic(model, x)
    training = count_traffic(model, x, backward=True)
    assert forward.activation_bytes["elementwise"] > 0 and forward.activation_bytes["matmul"] > 0
    assert sum(training.activation_bytes.values()) > 1.5 * sum(forward.activation_bytes.values())


def test_describe_model_counts_traffic_and_kernels() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    d = describe_model(model, torch.zeros(4, 8))
    assert d.traffic_counted and d.forward_kernels == 3
    assert d.matmul_bytes_per_sample == 4 * (8 + 8 + 8 + 2)  # two addmm: read x, write y per sample
    assert d.elementwise_bytes_per_sample == 4 * (8 + 8)
    assert d.forward_bytes_per_sample == pytest.approx(4 * 42)


def test_old_descriptors_still_work_with_inferred_traffic() -> None:
    old = ModelDescriptor(forward_flops_per_sample=8.18e9, input_shape=(3, 224, 224), precision="16-mixed")
    assert not old.traffic_counted and old.forward_bytes_per_sample is None
    traffic = model_traffic(old)
    assert traffic.inferred and traffic.log_q90 > 0 and traffic.matmul > 0 and traffic.other > 0
    est = PreEstimator.default().predict(
        RunDescriptor(old, DataDescriptor(256, 1_281_167), lookup_gpu("NVIDIA H100 80GB HBM3"))
    )
    assert est.traffic_inferred and est.regime in REGIMES and 0 <= (est.bandwidth_share or 0) <= 1
    with pytest.raises(EstimationError, match="matmul_bytes_per_sample must be a finite number >= 0"):
        ModelDescriptor(1e9, (3, 8, 8), matmul_bytes_per_sample=-1.0)
    with pytest.raises(EstimationError, match="forward_kernels must be an integer >= 0"):
        ModelDescriptor(1e9, (3, 8, 8), forward_kernels=1.5)  # type: ignore[arg-type]


def test_every_measured_gpu_has_a_roofline_and_others_fall_back_with_an_error() -> None:
    for name in measured_gpu_names():
        for precision in ("32-true", "16-mixed"):
            roof = gpu_roofline(lookup_gpu(name), precision, matmul_tf32=True)
            assert roof.source == "measured" and roof.log_q90 == 0.0
            assert roof.conv_flops > 1e12 and roof.bandwidth_bs > 1e11
    sibling = gpu_roofline(lookup_gpu("T4"), "16-mixed")
    assert sibling.source == "same-generation datasheet" and sibling.log_q90 > 0
    unknown = dataclasses.replace(lookup_gpu("A40"), name="Mystery", from_table=False)
    mystery = gpu_roofline(unknown, "16-mixed")
    assert mystery.source == "power limit" and mystery.log_q90 > sibling.log_q90


def test_workload_descriptors_ship_for_the_ten_lambda_workloads() -> None:
    assert len(workload_names()) == 10
    resnet = workload_descriptor("resnet50")
    assert resnet.forward_flops_per_sample == pytest.approx(8.18e9, rel=0.01)
    assert resnet.input_shape == (3, 224, 224) and resnet.traffic_counted
    with pytest.raises(EstimationError, match="workload must be one of"):
        workload_descriptor("alexnet")


def test_a_memory_bound_model_ranks_gpus_by_bandwidth_not_flops() -> None:
    """Depthwise/shuffle-like model: few FLOPs, many bytes. Its time ratio between two GPUs follows their
    fitted bandwidths; a compute-bound model's follows their FLOP/s."""
    data = DataDescriptor(1024, 1_000_000)
    memory = ModelDescriptor(
        1e8,
        (3, 224, 224),
        precision="16-mixed",
        matmul_bytes_per_sample=2e7,
        elementwise_bytes_per_sample=2e8,
        embedding_bytes_per_sample=0.0,
        attention_bytes_per_sample=0.0,
    )
    compute = dataclasses.replace(
        memory,
        forward_flops_per_sample=1e11,
        input_shape=(3, 32, 32),  # little loading: the GPU's kernels dominate
        matmul_bytes_per_sample=1e6,
        elementwise_bytes_per_sample=1e6,
    )
    a, b = lookup_gpu("H100 SXM"), lookup_gpu("RTX 4090")
    model = PreEstimator.default()
    for descriptor, regime, key in (
        (memory, "bandwidth-bound", "bandwidth_bs"),
        (compute, "compute-bound", "conv_flops"),
    ):
        ea, eb = (model.predict(RunDescriptor(descriptor, data, g)) for g in (a, b))
        assert ea.regime == eb.regime == regime
        ratio = getattr(gpu_roofline(a, "16-mixed"), key) / getattr(gpu_roofline(b, "16-mixed"), key)
        assert math.log(eb.epoch_seconds / ea.epoch_seconds) == pytest.approx(math.log(ratio), abs=0.15)


def test_shipped_roofline_is_what_the_script_builds(lambda_dir: Path, tmp_path: Path) -> None:
    from tools.build_roofline_table import main

    out = tmp_path / "roofline.json"
    assert main(["--data", str(lambda_dir), "--out", str(out)]) == 0
    shipped = (Path(__file__).resolve().parents[2] / "lightning_energy/pre/roofline.json").read_text()
    assert out.read_text() == shipped


def test_gaissa_runs_carry_the_counted_traffic_of_their_architecture() -> None:
    from tools.gaissa import traffic_fields

    mobilenet = traffic_fields("mobilenet_v2", 128, 6.4e7)
    vgg = traffic_fields("vgg16", 128, 1.0e10)
    assert mobilenet["forward_kernels"] > vgg["forward_kernels"]
    per_flop = {
        k: sum(v for n, v in f.items() if n.endswith("_bytes_per_sample")) / flops
        for k, f, flops in (("m", mobilenet, 6.4e7), ("v", vgg, 1.0e10))
    }
    assert per_flop["m"] > 10 * per_flop["v"]  # depthwise-separable: far more bytes per FLOP
    assert traffic_fields("unknown_net", 128, 1e9) == {}


def test_traffic_is_fp32_equivalent_and_describe_runs_one_forward_pass() -> None:
    calls = []

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return torch.relu(self.fc(x))

    net = Net()
    fp32 = count_traffic(net, torch.zeros(4, 8))
    half = count_traffic(net.to(torch.bfloat16), torch.zeros(4, 8, dtype=torch.bfloat16))
    assert half.activation_bytes == fp32.activation_bytes  # counted as the roofline expects (FP32)
    calls.clear()
    describe_model(net.float(), torch.zeros(4, 8))
    assert len(calls) == 1


def test_tf32_off_cap_is_one_rule_for_the_table_and_the_roofline() -> None:
    from lightning_energy.pre.throughput import CUDA_CORES, cuda_core_cap, family_speed

    a100 = lookup_gpu("A100 80GB SXM4")
    cap = cuda_core_cap(a100, "32-true", None)
    assert cap is not None and cap.flops > 0 and cap.log_q90 > 0
    roof = gpu_roofline(a100, "32-true", None, conv_share=0.0)
    speed = family_speed(a100, "32-true", "matmul", None)
    assert roof.matmul_flops == speed.training_flops == cap.flops
    assert roof.source == speed.source == CUDA_CORES
    # no cap with TF32 on, at 16 bit, for a convolution-only model, or on a GPU without TF32 cores
    assert cuda_core_cap(a100, "32-true", True) is None and cuda_core_cap(a100, "16-mixed", None) is None
    assert gpu_roofline(a100, "32-true", None, conv_share=1.0).matmul_flops > cap.flops
    assert cuda_core_cap(lookup_gpu("V100 SXM2"), "32-true", None) is None
