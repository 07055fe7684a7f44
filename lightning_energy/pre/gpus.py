"""The GPU table (``gpus.json``, datasheet figures with sources) and lookup by the names NVML reports.

Measured training speed per GPU is in ``throughput.json`` (see :mod:`lightning_energy.pre.throughput`).
"""

from __future__ import annotations

import functools
import json
import re
import statistics
import warnings
from collections.abc import Mapping
from importlib import resources

from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import GpuDescriptor

_NOISE_WORDS = ("nvidia", "geforce", "tesla")


def _normalize(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", name.lower())
    words = [w for w in text.split() if w not in _NOISE_WORDS]
    return " ".join(words)


@functools.lru_cache(maxsize=1)
def _table() -> tuple[dict[str, object], ...]:
    text = resources.files("lightning_energy.pre").joinpath("gpus.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["gpus"])


def _descriptor(row: Mapping[str, object]) -> GpuDescriptor:
    tensor = row["peak_tensor_tflops"]
    return GpuDescriptor(
        name=str(row["name"]),
        memory_gb=float(row["memory_gb"]),  # type: ignore[arg-type]
        tdp_w=float(row["tdp_w"]),  # type: ignore[arg-type]
        peak_fp32_tflops=float(row["peak_fp32_tflops"]),  # type: ignore[arg-type]
        memory_bandwidth_gbs=float(row["memory_bandwidth_gbs"]),  # type: ignore[arg-type]
        peak_tensor_tflops=None if tensor is None else float(tensor),  # type: ignore[arg-type]
        cuda_cores=int(row["cuda_cores"]),  # type: ignore[call-overload]
        sm_count=int(row["sm_count"]),  # type: ignore[call-overload]
        architecture=str(row["architecture"]),
    )


def gpu_names() -> list[str]:
    """Names of the GPUs in the table, in table order."""
    return [str(row["name"]) for row in _table()]


def gpu_sources(name: str) -> list[str]:
    """Datasheet URLs behind a table entry."""
    row = _find_row(name)
    if row is None:
        raise EstimationError(f"gpu must be one of {gpu_names()}, got {name!r}")
    return [str(url) for url in row["sources"]]  # type: ignore[attr-defined]


def _find_row(name: str) -> dict[str, object] | None:
    wanted = _normalize(name)
    for row in _table():
        names = [str(row["name"]), *[str(alias) for alias in row["aliases"]]]  # type: ignore[attr-defined]
        if wanted in {_normalize(n) for n in names}:
            return row
    return None


def find_gpu(name: str) -> GpuDescriptor | None:
    """The table entry for a table name or an NVML name (case and punctuation ignored), or None."""
    row = _find_row(name)
    return None if row is None else _descriptor(row)


def lookup_gpu(name: str) -> GpuDescriptor:
    """Like :func:`find_gpu` but raises EstimationError listing the known GPUs when ``name`` is unknown."""
    gpu = find_gpu(name)
    if gpu is None:
        raise EstimationError(f"gpu must be one of {gpu_names()} (or their NVML names), got {name!r}")
    return gpu


def gpu_from_nvml(info: Mapping[str, object]) -> GpuDescriptor:
    """A GPU descriptor from what NVML reports (``name``, ``power_limit_w``, ``memory_gb``).

    Known GPUs come from the table. An unknown GPU gets a warning and a descriptor whose throughput and
    bandwidth are scaled from its power limit by the table's median FLOPS/W and bandwidth/W
    (``from_table=False``; the estimator widens its interval for it).
    """
    name = info.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EstimationError(f"gpu_info['name'] must be a non-empty string, got {name!r}")
    gpu = find_gpu(name)
    if gpu is not None:
        return gpu
    power_w = info.get("power_limit_w")
    memory_gb = info.get("memory_gb")
    if not isinstance(power_w, (int, float)) or power_w <= 0:
        raise EstimationError(
            f"gpu_info['power_limit_w'] must be > 0 for an unknown GPU {name!r}, got {power_w!r}"
        )
    if not isinstance(memory_gb, (int, float)) or memory_gb <= 0:
        raise EstimationError(
            f"gpu_info['memory_gb'] must be > 0 for an unknown GPU {name!r}, got {memory_gb!r}"
        )
    rows = _table()
    tflops_per_w = statistics.median(float(r["peak_fp32_tflops"]) / float(r["tdp_w"]) for r in rows)  # type: ignore[arg-type]
    gbs_per_w = statistics.median(float(r["memory_bandwidth_gbs"]) / float(r["tdp_w"]) for r in rows)  # type: ignore[arg-type]
    warnings.warn(
        f"GPU {name!r} is not in the lightning_energy GPU table; estimating its throughput from its power "
        f"limit ({power_w:.0f} W), so the PRE estimate is rough and its interval wider. "
        f"Known GPUs: {gpu_names()}",
        stacklevel=2,
    )
    return GpuDescriptor(
        name=name,
        memory_gb=float(memory_gb),
        tdp_w=float(power_w),
        peak_fp32_tflops=float(power_w) * tflops_per_w,
        memory_bandwidth_gbs=float(power_w) * gbs_per_w,
        from_table=False,
    )
