"""Achieved training speed of a GPU for a model (``throughput.json``, from tools/build_throughput_table.py).

The table holds *measured* PyTorch training throughput (Lambda ``deeplearning-benchmark``) per GPU, precision
(fp32 = FP32/TF32, fp16 = FP16/AMP) and workload family: ``conv`` (ResNet-50) and ``matmul`` (BERT-base),
as achieved training FLOP/s (3 forward passes per sample). A model sits between the families by the share of
its FLOPs in convolutions; its speed is the harmonic mix (the time of each part adds).

A GPU without measurements gets its datasheet capability index (FP32 peak and memory bandwidth, see
``capability``) x the median achieved/capability ratio of measured GPUs of the same generation (or of all
measured GPUs), and a GPU unknown to the GPU table its power limit x the median
achieved FLOP/s per watt; each level carries the 90 % log error of its rule (left-one-GPU-out on the table).
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
from lightning_energy.pre.descriptors import GpuDescriptor

FAMILIES = ("conv", "matmul")
#: Where a GPU's speed comes from, best first. "FP32 CUDA cores": FP32 matmuls with TF32 off on a GPU whose
#: measured FP32 speed used TF32 (its FP32 peak x the achieved/peak ratio of GPUs without TF32).
SpeedSource = Literal["measured", "FP32 CUDA cores", "same-generation datasheet", "datasheet", "power limit"]
MEASURED: Final = "measured"
CUDA_CORES: Final = "FP32 CUDA cores"
SAME_GENERATION: Final = "same-generation datasheet"
DATASHEET: Final = "datasheet"
POWER_LIMIT: Final = "power limit"
SOURCES: tuple[SpeedSource, ...] = get_args(SpeedSource)
#: a source read from a file written by another version, outside :data:`SOURCES`
UNKNOWN_SOURCE: Final = "unknown"


def read_speed_source(value: object) -> SpeedSource | Literal["unknown"]:
    """``value`` when it is one of :data:`SOURCES` (absent: ``"measured"``, as 0.3.0 reports wrote no
    source for measured GPUs), else ``"unknown"``: reading a report or a history file never fails on it."""
    if value is None:
        return MEASURED
    for source in SOURCES:
        if value == source:
            return source
    return UNKNOWN_SOURCE


@functools.lru_cache(maxsize=1)
def _table() -> Mapping[str, Any]:
    text = resources.files("lightning_energy.pre").joinpath("throughput.json").read_text(encoding="utf-8")
    table: Mapping[str, Any] = json.loads(text)
    return table


def precision_bucket(precision: str) -> str:
    """``fp32`` for ``32-true``, else ``fp16`` (16-bit mixed or true, FP16 or BF16)."""
    return "fp32" if precision == "32-true" else "fp16"


@dataclass(frozen=True)
class FamilySpeed:
    """Achieved training FLOP/s of one GPU for one family and precision, with its 90 % log error."""

    training_flops: float
    log_q90: float
    source: SpeedSource


@dataclass(frozen=True)
class GpuSpeed:
    """Achieved training FLOP/s of a GPU for a model (family mix), its 90 % log error and its source.

    ``family_log_q90``: the 90 % log error of carrying the matmul reference (BERT) over to other
    matmul/attention/recurrent workloads (measured on the table's other workloads), times the model's matmul
    share; the GAISSA runs that fit the model are all CNNs, so this part is not in the model's own error.
    """

    training_flops: float
    log_q90: float
    source: SpeedSource
    family_log_q90: float


def family_speed(
    gpu: GpuDescriptor, precision: str, family: str, matmul_tf32: bool | None = None
) -> FamilySpeed:
    """Achieved training FLOP/s of ``gpu`` for ``family`` at ``precision`` (measured or fallback).

    ``matmul_tf32`` (None = PyTorch's default, off): at ``32-true`` on a GPU with TF32 cores, FP32 matmuls
    with TF32 off run on the CUDA cores, slower than the TF32 runs the table measured.
    """
    speed = _table_speed(gpu, precision, family)
    cap = cuda_core_cap(gpu, precision, matmul_tf32) if family == "matmul" else None
    if cap is None or cap.flops >= speed.training_flops:
        return speed
    q = math.hypot(cap.log_q90, 0.0 if speed.source == MEASURED else speed.log_q90)
    return FamilySpeed(cap.flops, q, worse_source(speed.source, CUDA_CORES))


@dataclass(frozen=True)
class CudaCoreCap:
    """FP32 matmul FLOP/s on a GPU's CUDA cores (TF32 off) and the 90 % log error of that rule."""

    flops: float
    log_q90: float


def cuda_core_cap(gpu: GpuDescriptor, precision: str, matmul_tf32: bool | None) -> CudaCoreCap | None:
    """The ceiling on FP32 matmul speed when TF32 is off (PyTorch's default, ``matmul_tf32`` None or False)
    on a GPU with TF32 cores: its FP32 peak x the achieved/peak ratio of GPUs without TF32. None where it
    does not apply: another precision, TF32 on, or a GPU without TF32 cores (its measured FP32 speed
    already ran on CUDA cores). The one rule for both the throughput table and the roofline."""
    if precision_bucket(precision) != "fp32" or matmul_tf32:
        return None
    cuda = _table()["fallback"]["fp32"]["matmul"]["cuda_cores"]
    if gpu.architecture not in cuda["tf32_architectures"]:
        return None
    return CudaCoreCap(
        gpu.peak_fp32_tflops * 1e12 * float(cuda["ratio_to_peak_fp32"]), float(cuda["log_q90"])
    )


def worse_source(a: SpeedSource, b: SpeedSource) -> SpeedSource:
    """The less direct of two speed sources (``SOURCES`` is ordered best first)."""
    return SOURCES[max(SOURCES.index(a), SOURCES.index(b))]


def _table_speed(gpu: GpuDescriptor, precision: str, family: str) -> FamilySpeed:
    """Speed from the table as measured (TF32 on for FP32 on Ampere and newer), or its fallback."""
    if family not in FAMILIES:
        raise EstimationError(f"family must be one of {FAMILIES}, got {family!r}")
    bucket = precision_bucket(precision)
    table = _table()
    fallback = table["fallback"][bucket][family]
    measured = table["measured"].get(gpu.name, {}).get(bucket, {}).get(family) if gpu.from_table else None
    if measured is not None:
        return FamilySpeed(
            float(measured["training_tflops"]) * 1e12, float(fallback["measured_log_q90"]), MEASURED
        )
    if gpu.from_table:
        by_arch = fallback["ratio_to_capability_by_architecture"]
        source: SpeedSource
        if gpu.architecture in by_arch:
            ratio, q, source = (
                by_arch[gpu.architecture],
                fallback["same_architecture_log_q90"],
                SAME_GENERATION,
            )
        else:
            ratio, q, source = (
                fallback["ratio_to_capability_all"],
                fallback["other_architecture_log_q90"],
                DATASHEET,
            )
        index = capability(gpu, float(fallback["capability_exponent"]))
        return FamilySpeed(index * 1e12 * float(ratio), float(q), source)
    flops = gpu.tdp_w * float(fallback["tflops_per_tdp_w"]) * 1e12
    return FamilySpeed(flops, float(fallback["power_log_q90"]), POWER_LIMIT)


def capability(gpu: GpuDescriptor, exponent: float) -> float:
    """Datasheet capability index: ``peak_fp32_tflops ** exponent x (bandwidth in TB/s) ** (1 - exponent)``.

    Training mixes compute-bound and memory-bound kernels; the exponent is chosen per precision and family
    when the table is built (tools/build_throughput_table.py), by the left-one-GPU-out error of the rule.
    """
    return gpu.peak_fp32_tflops**exponent * (gpu.memory_bandwidth_gbs / 1000.0) ** (1.0 - exponent)


def gpu_speed(
    gpu: GpuDescriptor, precision: str, conv_share: float, matmul_tf32: bool | None = None
) -> GpuSpeed:
    """Speed of ``gpu`` for a model with ``conv_share`` of its FLOPs in convolutions (harmonic mix).

    Convolutions use TF32 at FP32 on Ampere and newer as PyTorch does by default (cuDNN's allow_tf32).
    """
    if not 0.0 <= conv_share <= 1.0:
        raise EstimationError(f"conv_share must be in [0, 1], got {conv_share!r}")
    conv = family_speed(gpu, precision, "conv")
    matmul = family_speed(gpu, precision, "matmul", matmul_tf32)
    flops = 1.0 / (conv_share / conv.training_flops + (1.0 - conv_share) / matmul.training_flops)
    q = conv_share * conv.log_q90 + (1.0 - conv_share) * matmul.log_q90
    used = [speed for speed, share in ((conv, conv_share), (matmul, 1.0 - conv_share)) if share > 0.0]
    worst = max(SOURCES.index(speed.source) for speed in used)
    transfer = float(_table()["fallback"][precision_bucket(precision)]["matmul"]["transfer_log_q90"])
    return GpuSpeed(flops, q, SOURCES[worst], (1.0 - conv_share) * transfer)


def reference_workloads() -> Mapping[str, Mapping[str, Any]]:
    """The reference workload of each family: name, unit and forward FLOPs per sample."""
    references: Mapping[str, Mapping[str, Any]] = _table()["references"]
    return references


def measured_samples_per_s(gpu_name: str, precision: str, family: str) -> float | None:
    """The table's measured samples/s of the reference workload, or None where it has no measurement."""
    entry = _table()["measured"].get(gpu_name, {}).get(precision_bucket(precision), {}).get(family)
    return None if entry is None else float(entry["samples_per_s"])


def measured_gpu_names() -> list[str]:
    """GPUs with measured throughput."""
    return list(_table()["measured"])
