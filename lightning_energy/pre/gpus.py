"""The GPU table (``gpus.json``, datasheet figures with sources) and lookup by the names NVML reports.

Measured training speed per GPU is in ``throughput.json`` (see :mod:`lightning_energy.pre.throughput`).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import statistics
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from lightning_energy.errors import EstimationError
from lightning_energy.hardware import GpuInfo
from lightning_energy.pre.descriptors import (
    CONSUMER,
    DATA_CENTRE,
    BoardClass,
    GpuDescriptor,
    infer_board_class,
)

_NOISE_WORDS = ("nvidia", "geforce", "tesla")
#: ``form_factor`` of ``gpus.json`` -> board class: SXM modules and passively cooled PCIe cards (built for a
#: server's airflow) are data-centre boards, fan-cooled cards consumer/workstation boards.
FORM_FACTOR_CLASS: dict[str, BoardClass] = {
    "SXM": DATA_CENTRE,
    "PCIe passive": DATA_CENTRE,
    "PCIe active": CONSUMER,
}


def _normalize(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", name.lower())
    words = [w for w in text.split() if w not in _NOISE_WORDS]
    return " ".join(words)


@dataclass(frozen=True)
class _GpuRow:
    """One row of ``gpus.json``: the datasheet descriptor, its other names and its sources."""

    gpu: GpuDescriptor
    aliases: tuple[str, ...]
    sources: tuple[str, ...]


def _number(row: Mapping[str, object], key: str) -> float:
    value = row[key]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise EstimationError(f"gpus.json: {row.get('name')!r} {key} must be a number, got {value!r}")
    return float(value)


def _strings(row: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = row[key]
    if not isinstance(value, list):
        raise EstimationError(f"gpus.json: {row.get('name')!r} {key} must be a list, got {value!r}")
    return tuple(str(item) for item in value)


def board_class_of(row: Mapping[str, object]) -> BoardClass:
    """The board class of a ``gpus.json`` row, from its ``form_factor`` (``FORM_FACTOR_CLASS``)."""
    form = row.get("form_factor")
    if form not in FORM_FACTOR_CLASS:
        raise EstimationError(
            f"gpus.json: {row.get('name')!r} form_factor must be one of {sorted(FORM_FACTOR_CLASS)}, "
            f"got {form!r}"
        )
    return FORM_FACTOR_CLASS[str(form)]


def _row(row: Mapping[str, object]) -> _GpuRow:
    tensor = row["peak_tensor_tflops"]
    gpu = GpuDescriptor(
        name=str(row["name"]),
        memory_gb=_number(row, "memory_gb"),
        tdp_w=_number(row, "tdp_w"),
        peak_fp32_tflops=_number(row, "peak_fp32_tflops"),
        memory_bandwidth_gbs=_number(row, "memory_bandwidth_gbs"),
        peak_tensor_tflops=None if tensor is None else _number(row, "peak_tensor_tflops"),
        cuda_cores=int(_number(row, "cuda_cores")),
        sm_count=int(_number(row, "sm_count")),
        architecture=str(row["architecture"]),
        board_class=board_class_of(row),
    )
    return _GpuRow(gpu, _strings(row, "aliases"), _strings(row, "sources"))


@functools.lru_cache(maxsize=1)
def _table() -> tuple[_GpuRow, ...]:
    text = resources.files("lightning_energy.pre").joinpath("gpus.json").read_text(encoding="utf-8")
    return tuple(_row(row) for row in json.loads(text)["gpus"])


def gpu_names() -> list[str]:
    """Names of the GPUs in the table, in table order."""
    return [row.gpu.name for row in _table()]


def gpu_sources(name: str) -> list[str]:
    """Datasheet URLs behind a table entry."""
    row = _find_row(name)
    if row is None:
        raise EstimationError(f"gpu must be one of {gpu_names()}, got {name!r}")
    return list(row.sources)


def _find_row(name: str) -> _GpuRow | None:
    wanted = _normalize(name)
    for row in _table():
        if wanted in {_normalize(n) for n in (row.gpu.name, *row.aliases)}:
            return row
    return None


def find_gpu(name: str) -> GpuDescriptor | None:
    """The table entry for a table name or an NVML name (case and punctuation ignored), or None."""
    row = _find_row(name)
    return None if row is None else row.gpu


def suggest_gpus(name: str, limit: int = 5) -> list[str]:
    """Table names close to ``name``: those holding all its words (``A100``: the four A100s), else the
    closest spellings (difflib ratio >= 0.6), best first, at most ``limit``."""
    wanted = _normalize(name)
    words = set(wanted.split())
    containing: list[str] = []
    scored: list[tuple[float, str]] = []
    for row in _table():
        names = [_normalize(n) for n in (row.gpu.name, *row.aliases)]
        if words and any(words <= set(n.split()) for n in names):
            containing.append(row.gpu.name)
        best = max(difflib.SequenceMatcher(None, wanted, n).ratio() for n in names)
        if best >= 0.6:
            scored.append((best, row.gpu.name))
    if containing:
        return containing[:limit]
    scored.sort(key=lambda item: -item[0])
    return [table_name for _, table_name in scored[:limit]]


def lookup_gpu(name: str) -> GpuDescriptor:
    """Like :func:`find_gpu` but raises EstimationError naming the closest GPUs when ``name`` is unknown."""
    gpu = find_gpu(name)
    if gpu is None:
        close = suggest_gpus(name)
        hint = f"did you mean {', '.join(repr(n) for n in close)}? " if close else ""
        raise EstimationError(
            f"gpu {name!r} is not in the GPU table; {hint}"
            "`lightning-energy estimate` without --gpu ranks all of them; the table names and the names "
            "NVML reports are both accepted"
        )
    return gpu


def gpu_from_nvml(info: GpuInfo | Mapping[str, object]) -> GpuDescriptor:
    """A GPU descriptor from what NVML reports (``name``, ``power_limit_w``, ``memory_gb``; a
    :class:`~lightning_energy.hardware.GpuInfo` or a meter's mapping).

    Known GPUs come from the table. An unknown GPU gets a warning and a descriptor whose throughput and
    bandwidth are scaled from its power limit by the table's median FLOPS/W and bandwidth/W
    (``from_table=False``; the estimator widens its interval for it), and the board class its name implies
    (``descriptors.infer_board_class``; consumer unless it names a data-centre family).
    """
    gpu_info = info if isinstance(info, GpuInfo) else GpuInfo.from_json(info)
    name = gpu_info.name
    if not isinstance(name, str) or not name.strip():
        raise EstimationError(f"gpu_info['name'] must be a non-empty string, got {name!r}")
    gpu = find_gpu(name)
    if gpu is not None:
        return gpu
    power_w, memory_gb = gpu_info.power_limit_w, gpu_info.memory_gb
    if power_w is None or power_w <= 0:
        raise EstimationError(
            f"gpu_info['power_limit_w'] must be > 0 for an unknown GPU {name!r}, got {power_w!r}"
        )
    if memory_gb is None or memory_gb <= 0:
        raise EstimationError(
            f"gpu_info['memory_gb'] must be > 0 for an unknown GPU {name!r}, got {memory_gb!r}"
        )
    gpus = [row.gpu for row in _table()]
    tflops_per_w = statistics.median(g.peak_fp32_tflops / g.tdp_w for g in gpus)
    gbs_per_w = statistics.median(g.memory_bandwidth_gbs / g.tdp_w for g in gpus)
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
        board_class=infer_board_class(name),
    )
