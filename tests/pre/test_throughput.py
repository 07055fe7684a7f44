from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import gpu_from_nvml, lookup_gpu
from lightning_energy.pre.throughput import family_speed, gpu_speed, measured_samples_per_s

REPO = Path(__file__).resolve().parents[2]


def test_measured_gpu_uses_the_table() -> None:
    a100 = lookup_gpu("A100 80GB SXM4")
    conv = family_speed(a100, "32-true", "conv")
    assert conv.source == "measured"
    # achieved training FLOP/s = 3 x ResNet-50 forward FLOPs x measured images/s
    samples = measured_samples_per_s("A100 80GB SXM4", "32-true", "conv")
    assert samples is not None and conv.training_flops == pytest.approx(3 * 8.18e9 * samples, rel=1e-3)
    # mixed precision is faster than FP32 on tensor-core GPUs; BF16 and FP16 share the fp16 entry
    assert family_speed(a100, "bf16-mixed", "conv").training_flops > conv.training_flops
    assert family_speed(a100, "16-mixed", "matmul") == family_speed(a100, "bf16-true", "matmul")


def test_family_mix_is_harmonic_and_bounded() -> None:
    h100 = lookup_gpu("H100 SXM")
    conv = family_speed(h100, "16-mixed", "conv").training_flops
    matmul = family_speed(h100, "16-mixed", "matmul").training_flops
    half = gpu_speed(h100, "16-mixed", 0.5).training_flops
    assert half == pytest.approx(1 / (0.5 / conv + 0.5 / matmul))
    assert min(conv, matmul) < half < max(conv, matmul)
    assert gpu_speed(h100, "16-mixed", 1.0).family_log_q90 == 0.0
    assert gpu_speed(h100, "16-mixed", 0.0).family_log_q90 > 0.0
    with pytest.raises(EstimationError, match="conv_share"):
        gpu_speed(h100, "16-mixed", 1.5)
    with pytest.raises(EstimationError, match="family"):
        family_speed(h100, "16-mixed", "rnn")


def test_fallbacks_are_marked_and_wider() -> None:
    measured = gpu_speed(lookup_gpu("A40"), "32-true", 1.0)
    sibling = gpu_speed(lookup_gpu("P100 PCIe"), "32-true", 1.0)  # Pascal: GTX 1080 Ti is measured
    with pytest.warns(UserWarning):
        unknown = gpu_from_nvml({"name": "NVIDIA B9000", "power_limit_w": 500.0, "memory_gb": 100.0})
    power_only = gpu_speed(unknown, "32-true", 1.0)
    no_sibling = gpu_speed(lookup_gpu("GTX 750 Ti"), "32-true", 1.0)  # Maxwell: none measured
    assert (measured.source, sibling.source, no_sibling.source, power_only.source) == (
        "measured",
        "same-generation datasheet",
        "datasheet",
        "power limit",
    )
    assert measured.log_q90 < sibling.log_q90 < no_sibling.log_q90
    assert measured.log_q90 < power_only.log_q90
    # a table GPU described by hand without a generation falls back to all measured GPUs
    custom = dataclasses.replace(lookup_gpu("A40"), name="My A40", architecture=None)
    assert gpu_speed(custom, "32-true", 1.0).source == "datasheet"


def test_fp32_matmuls_without_tf32_run_on_cuda_cores() -> None:
    """Lambda's FP32 runs on Ampere and newer used TF32; PyTorch's default keeps matmuls on CUDA cores."""
    a100, h100, v100, a40 = (lookup_gpu(n) for n in ("A100 40GB PCIe", "H100 SXM", "V100 PCIe", "A40"))
    for gpu in (a100, h100):
        tf32 = family_speed(gpu, "32-true", "matmul", matmul_tf32=True)
        default = family_speed(gpu, "32-true", "matmul")
        assert tf32.source == "measured" and default.source == "FP32 CUDA cores"
        assert default.training_flops < 0.6 * tf32.training_flops  # FP32 peak is a fraction of TF32's
        assert default.log_q90 > tf32.log_q90
        # convolutions keep TF32 (cuDNN's default) and 16-bit runs are unaffected; a pure CNN stays measured
        assert gpu_speed(gpu, "32-true", 1.0).source == "measured"
        assert gpu_speed(gpu, "32-true", 0.5).source == "FP32 CUDA cores"
        assert family_speed(gpu, "32-true", "conv") == family_speed(gpu, "32-true", "conv", matmul_tf32=False)
        assert family_speed(gpu, "16-mixed", "matmul") == family_speed(gpu, "16-mixed", "matmul", False)
    # no TF32 cores: nothing changes; GA102's doubled FP32 rate already beats its measured TF32 speed
    assert family_speed(v100, "32-true", "matmul") == family_speed(v100, "32-true", "matmul", True)
    assert family_speed(a40, "32-true", "matmul") == family_speed(a40, "32-true", "matmul", True)


def test_table_cites_sources_and_v100_beats_quadro_at_fp16() -> None:
    table = json.loads((REPO / "lightning_energy/pre/throughput.json").read_text())
    entry = table["measured"]["V100 SXM2"]["fp16"]["conv"]
    assert entry["sources"] and all(s.startswith("pytorch/results") for s in entry["sources"])
    v100 = family_speed(lookup_gpu("V100 SXM2"), "16-mixed", "conv").training_flops
    quadro = family_speed(lookup_gpu("Quadro RTX 6000"), "16-mixed", "conv").training_flops
    assert v100 > quadro  # Lambda: 834 vs 565 images/s


def test_shipped_table_is_what_the_script_builds(lambda_dir: Path, tmp_path: Path) -> None:
    from tools.build_throughput_table import main

    out = tmp_path / "throughput.json"
    assert main(["--data", str(lambda_dir), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(
        (REPO / "lightning_energy/pre/throughput.json").read_text()
    )
