from __future__ import annotations

import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import (
    DataDescriptor,
    GpuDescriptor,
    ModelDescriptor,
    RunDescriptor,
    find_gpu,
    gpu_from_nvml,
    gpu_names,
    lookup_gpu,
)
from lightning_energy.pre.gpus import gpu_sources

REQUIRED_GPUS = (
    "GTX 750 Ti",
    "RTX 3070",
    "RTX 3090",
    "RTX 4090",
    "T4",
    "V100 SXM2",
    "A10",
    "A100 40GB PCIe",
    "A100 40GB SXM4",
    "A100 80GB PCIe",
    "A100 80GB SXM4",
    "L4",
    "L40S",
    "H100 SXM",
    "H100 PCIe",
    "H200",
)


def test_model_descriptor_validates_and_normalizes() -> None:
    m = ModelDescriptor(1e9, (3, 32, 32), precision=16)
    assert m.precision == "16-mixed" and m.input_numel == 3 * 32 * 32
    # new fields are optional and inferred: images are convolution-heavy, tokens/features matmul-heavy
    assert (m.conv_share, m.trainable_share) == (1.0, 1.0)
    assert ModelDescriptor(1e9, (384,)).conv_share == 0.0
    assert ModelDescriptor(1e9, (384,), conv_flop_fraction=0.25, trainable_fraction=0.5).conv_share == 0.25
    with pytest.raises(EstimationError, match="conv_flop_fraction"):
        ModelDescriptor(1e9, (3,), conv_flop_fraction=1.5)
    with pytest.raises(EstimationError, match="trainable_fraction"):
        ModelDescriptor(1e9, (3,), trainable_fraction=True)  # type: ignore[arg-type]
    assert ModelDescriptor(1e9, (384,)).matmul_tf32 is None  # PyTorch's default (off)
    with pytest.raises(EstimationError, match="matmul_tf32"):
        ModelDescriptor(1e9, (384,), matmul_tf32=1)  # type: ignore[arg-type]
    with pytest.raises(EstimationError, match="forward_flops_per_sample"):
        ModelDescriptor(0.0, (3, 32, 32))
    with pytest.raises(EstimationError, match="input_shape"):
        ModelDescriptor(1e9, (3, -1))
    with pytest.raises(EstimationError, match="precision must be one of"):
        ModelDescriptor(1e9, (3,), precision="64-true")


def test_data_descriptor_steps_and_errors() -> None:
    d = DataDescriptor(batch_size=32, train_samples=100, val_samples=33)
    assert (d.steps_per_epoch, d.val_steps_per_epoch) == (4, 2)
    with pytest.raises(EstimationError, match="batch_size must be"):
        DataDescriptor(batch_size=0, train_samples=100)
    with pytest.raises(EstimationError, match="train_samples"):
        DataDescriptor(batch_size=4, train_samples=-3)


def test_run_descriptor_round_trip() -> None:
    run = RunDescriptor(
        ModelDescriptor(2e9, (3, 8, 8)), DataDescriptor(8, 80), lookup_gpu("T4"), host_ram_gb=64
    )
    assert RunDescriptor.from_dict(run.to_dict()) == run
    # a dict written before the optional fields existed still loads
    old = run.to_dict()
    del old["model"]["conv_flop_fraction"], old["gpu"]["architecture"]  # type: ignore[attr-defined]
    assert RunDescriptor.from_dict(old).model == run.model
    with pytest.raises(EstimationError, match="host_ram_gb"):
        RunDescriptor(run.model, run.data, run.gpu, host_ram_gb=0)
    with pytest.raises(EstimationError, match="expected keys"):
        RunDescriptor.from_dict({"model": run.to_dict()["model"]})


def test_gpu_table_covers_required_gpus_with_sources() -> None:
    for name in REQUIRED_GPUS:
        gpu = lookup_gpu(name)
        assert gpu.peak_fp32_tflops > 0 and gpu.memory_bandwidth_gbs > 0 and gpu.tdp_w > 0 and gpu.cuda_cores
        assert gpu_sources(name) and all(source.strip() for source in gpu_sources(name))
        assert gpu.architecture
    assert set(REQUIRED_GPUS) <= set(gpu_names())


def test_lookup_by_nvml_names() -> None:
    assert lookup_gpu("NVIDIA H100 80GB HBM3").name == "H100 SXM"
    assert lookup_gpu("NVIDIA GeForce RTX 3090").name == "RTX 3090"
    assert lookup_gpu("nvidia a100-sxm4-80gb").name == "A100 80GB SXM4"
    assert lookup_gpu("NVIDIA A100-PCIE-40GB").tdp_w == 250
    assert lookup_gpu("A100 40GB").name == "A100 40GB SXM4"  # the name of earlier versions
    assert lookup_gpu("Tesla T4").tdp_w == 70
    # the NVML names of the GPUs the issue names (data-centre and workstation parts)
    for nvml, name in (
        ("NVIDIA A40", "A40"),
        ("Tesla V100-PCIE-32GB", "V100 PCIe"),
        ("Quadro RTX 6000", "Quadro RTX 6000"),
        ("Tesla P100-PCIE-16GB", "P100 PCIe"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ):
        assert lookup_gpu(nvml).name == name
    assert find_gpu("NVIDIA B9000") is None
    with pytest.raises(EstimationError, match="not in the GPU table"):
        lookup_gpu("NVIDIA B9000")


def test_unknown_gpu_from_nvml_warns_and_estimates() -> None:
    with pytest.warns(UserWarning, match="not in the lightning_energy GPU table"):
        gpu = gpu_from_nvml({"name": "NVIDIA B9000", "power_limit_w": 1000.0, "memory_gb": 192.0})
    assert isinstance(gpu, GpuDescriptor) and not gpu.from_table
    assert gpu.memory_gb == 192.0 and gpu.tdp_w == 1000.0 and gpu.peak_fp32_tflops > 0
    known = gpu_from_nvml({"name": "NVIDIA H100 80GB HBM3", "power_limit_w": 700.0, "memory_gb": 79.6})
    assert known.from_table and known.name == "H100 SXM"
    with pytest.raises(EstimationError, match="power_limit_w"):
        gpu_from_nvml({"name": "NVIDIA B9000", "power_limit_w": 0, "memory_gb": 1})
