"""Roofline of a GPU for PyTorch training: achieved FLOP/s and achieved memory bandwidth (``roofline.json``).

``tools/build_roofline_table.py`` fits, per GPU and precision, the achieved convolution FLOP/s, matmul FLOP/s
and memory bandwidth that explain Lambda's measured throughput of ten workloads (ResNet-50, SSD, BERT base
and large, GNMT, NCF, Tacotron2, WaveGlow, Transformer-XL base and large; their FLOPs and bytes per item
counted by ``tools/lambda_workloads.py``), with one launch latency per kernel shared by all GPUs. The time
of one training sample is, per op class::

    matmul/conv   max(3 x FLOPs x (c / S_conv + (1 - c) / S_matmul),  r x bytes_matmul / BW)
    elementwise, embedding, attention:                                  r x bytes_class / BW

plus the parameter traffic of a step (weights, gradients, optimizer state) / BW, where ``r`` is the measured
training/forward traffic ratio of the workloads. A GPU the table does not hold gets its datasheet peaks x the
median achieved/peak ratios of measured GPUs of its generation (or of all), with the nested
left-one-GPU-out error of that rule as its interval term.

A model descriptor without counted traffic gets bytes inferred from its FLOPs (the median bytes per FLOP of
the workloads of its family) and the spread of that rule as an extra interval term.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, get_args

from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import TRAFFIC_FIELDS, GpuDescriptor, ModelDescriptor
from lightning_energy.pre.throughput import (
    CUDA_CORES,
    DATASHEET,
    MEASURED,
    POWER_LIMIT,
    SAME_GENERATION,
    SpeedSource,
    cuda_core_cap,
    precision_bucket,
    worse_source,
)

#: Regimes a run can be predicted in (``Estimate.regime``).
Regime = Literal["compute-bound", "bandwidth-bound", "host-bound"]
COMPUTE: Final = "compute-bound"
BANDWIDTH: Final = "bandwidth-bound"
HOST: Final = "host-bound"
REGIMES: tuple[Regime, ...] = get_args(Regime)


def read_regime(value: object) -> Regime | None:
    """``value`` when it is one of :data:`REGIMES`, else ``None`` (not said): reading a report written by
    another version never fails on it."""
    for regime in REGIMES:
        if value == regime:
            return regime
    return None


@functools.lru_cache(maxsize=1)
def _table() -> Mapping[str, Any]:
    text = resources.files("lightning_energy.pre").joinpath("roofline.json").read_text(encoding="utf-8")
    table: Mapping[str, Any] = json.loads(text)
    return table


def constants() -> Mapping[str, float]:
    """Global constants of the fit: ``training_traffic_factor``, ``parameter_bytes_per_step``,
    ``launch_s`` (per kernel)."""
    values: Mapping[str, float] = _table()["constants"]
    return values


@dataclass(frozen=True)
class Roofline:
    """Achieved training speeds of one GPU at one precision: FLOP/s per family, bandwidth in bytes/s (of
    FP32-counted traffic), the 90 % log error of the GPU's speed (0 when measured) and its source."""

    conv_flops: float
    matmul_flops: float
    bandwidth_bs: float
    log_q90: float
    source: SpeedSource


def peak_flops(gpu: GpuDescriptor, bucket: str) -> float:
    """The datasheet peak the fallback ratios are relative to: FP32 peak, or the dense tensor peak at 16 bit
    (FP32 peak x 2 without tensor cores)."""
    if bucket == "fp32" or gpu.peak_tensor_tflops is None:
        return gpu.peak_fp32_tflops * 1e12 * (1.0 if bucket == "fp32" else 2.0)
    return gpu.peak_tensor_tflops * 1e12


def gpu_roofline(
    gpu: GpuDescriptor, precision: str, matmul_tf32: bool | None = None, conv_share: float = 0.0
) -> Roofline:
    """The achieved roofline of ``gpu`` at ``precision`` (measured, or a datasheet fallback).

    At FP32 with TF32 off for matmuls (PyTorch's default) on a GPU with TF32 cores, the matmul FLOP/s are
    those of its CUDA cores (FP32 peak x the achieved ratio of GPUs without TF32), unless the model has no
    matmul FLOPs (``conv_share`` 1)."""
    bucket = precision_bucket(precision)
    table = _table()
    entry = table["gpus"].get(gpu.name, {}).get(bucket) if gpu.from_table else None
    if entry is not None:
        roof = Roofline(
            float(entry["conv_tflops"]) * 1e12,
            float(entry["matmul_tflops"]) * 1e12,
            float(entry["bandwidth_gbs"]) * 1e9,
            0.0,
            MEASURED,
        )
    else:
        fallback = table["fallback"][bucket]
        same = fallback["by_architecture"].get(gpu.architecture) if gpu.from_table else None
        source: SpeedSource
        if same is not None:
            ratios, q, source = same, float(fallback["same_architecture_log_q90"]), SAME_GENERATION
        elif gpu.from_table:
            ratios, q, source = fallback["all"], float(fallback["other_architecture_log_q90"]), DATASHEET
        else:
            ratios, q, source = fallback["all"], float(fallback["power_limit_log_q90"]), POWER_LIMIT
        peak = peak_flops(gpu, bucket)
        roof = Roofline(
            peak * float(ratios["conv_per_peak"]),
            peak * float(ratios["matmul_per_peak"]),
            gpu.memory_bandwidth_gbs * 1e9 * float(ratios["bandwidth_per_datasheet"]),
            q,
            source,
        )
    cap = cuda_core_cap(gpu, precision, matmul_tf32) if conv_share < 1.0 else None
    if cap is None or cap.flops >= roof.matmul_flops:
        return roof
    q = math.hypot(cap.log_q90, roof.log_q90)
    return Roofline(roof.conv_flops, cap.flops, roof.bandwidth_bs, q, worse_source(roof.source, CUDA_CORES))


@dataclass(frozen=True)
class Traffic:
    """Forward activation bytes of one sample by op class (FP32-counted), whether they were inferred from the
    FLOPs, and the 90 % log error of that inference (0 when counted)."""

    matmul: float
    other: float
    inferred: bool
    log_q90: float


def model_traffic(model: ModelDescriptor) -> Traffic:
    """The descriptor's counted traffic, or bytes inferred from its FLOPs (see the module docstring)."""
    if model.traffic_counted:
        other = sum(float(getattr(model, name)) for name in TRAFFIC_FIELDS[1:])
        return Traffic(float(model.matmul_bytes_per_sample or 0.0), other, False, 0.0)
    rule = _table()["inference"]
    c = model.conv_share
    per_flop = math.exp(
        c * math.log(float(rule["conv"]["bytes_per_flop"]))
        + (1.0 - c) * math.log(float(rule["matmul"]["bytes_per_flop"]))
    )
    share = float(rule["matmul_class_share"])
    total = model.forward_flops_per_sample * per_flop
    q = c * float(rule["conv"]["log_q90"]) + (1.0 - c) * float(rule["matmul"]["log_q90"])
    return Traffic(total * share, total * (1.0 - share), True, q)


@functools.lru_cache(maxsize=1)
def _workloads() -> Mapping[str, Any]:
    text = resources.files("lightning_energy.pre").joinpath("workloads.json").read_text(encoding="utf-8")
    workloads: Mapping[str, Any] = json.loads(text)["workloads"]
    return workloads


def workload_names() -> list[str]:
    """Lambda's benchmark workloads whose descriptors ship in ``workloads.json``."""
    return list(_workloads())


def workload_descriptor(
    name: str, precision: str = "32-true", matmul_tf32: bool | None = None
) -> ModelDescriptor:
    """The ModelDescriptor of one *sample* of a Lambda workload (``resnet50``: an image, ``bert_base_squad``:
    a 384-token sequence, ``gnmt``: a 50-token sentence pair, ...) with its counted traffic."""
    workloads = _workloads()
    if name not in workloads:
        raise EstimationError(f"workload must be one of {list(workloads)}, got {name!r}")
    w = workloads[name]
    items = float(w["items_per_sample"])
    b = {k: float(v) * items for k, v in w["forward_bytes_per_item"].items()}
    return ModelDescriptor(
        forward_flops_per_sample=float(w["forward_flops_per_item"]) * items,
        input_shape=tuple(int(s) for s in w["input_shape"]),
        precision=precision,
        parameter_count=int(w["parameter_count"]),
        conv_flop_fraction=float(w["conv_flop_fraction"]),
        matmul_tf32=matmul_tf32,
        matmul_bytes_per_sample=b["matmul"],
        elementwise_bytes_per_sample=b["elementwise"],
        embedding_bytes_per_sample=b["embedding"],
        attention_bytes_per_sample=b["attention"],
        forward_kernels=round(float(w["kernels_per_training_step"]) / 3.0),  # a training step: ~3x forward
    )


def validate_table(table: Mapping[str, Any]) -> None:
    """Raise EstimationError when a roofline table lacks a section the runtime reads."""
    for key in ("constants", "gpus", "fallback", "inference"):
        if key not in table:
            raise EstimationError(f"roofline table: missing section {key!r}")
