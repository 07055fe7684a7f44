"""Load the GAISSA ``pre_runs.csv`` (del Rey et al.) as labelled runs for fitting and benchmarking.

Research tooling: not part of the runtime package. The data stay in ``../shared/data/gaissa`` (never copied
into the repository).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from pathlib import Path
from typing import Any

from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import (
    TRAFFIC_FIELDS,
    DataDescriptor,
    LabelledRun,
    ModelDescriptor,
    RunDescriptor,
)
from lightning_energy.pre.gpus import find_gpu

#: Bytes per FLOP by op class of each architecture (tools/gaissa_models.py), or None where absent.
TRAFFIC_JSON = Path(__file__).resolve().parent / "gaissa_traffic.json"


@functools.lru_cache(maxsize=1)
def _traffic_table() -> dict[str, dict[str, dict[str, float]]]:
    if not TRAFFIC_JSON.is_file():
        return {}
    table: dict[str, dict[str, dict[str, float]]] = json.loads(TRAFFIC_JSON.read_text(encoding="utf-8"))[
        "architectures"
    ]
    return table


def traffic_fields(architecture: str, image: int, forward_flops: float) -> dict[str, Any]:
    """The ModelDescriptor traffic fields of a GAISSA run: the re-implementation's bytes per FLOP by class
    (at the nearest counted input size) x the run's published FLOPs; empty for an unknown architecture."""
    sizes = _traffic_table().get(architecture)
    if not sizes:
        return {}
    nearest = min(sizes, key=lambda size: abs(int(size) - image))
    ratios = sizes[nearest]
    fields: dict[str, Any] = {
        name: ratios[name.removesuffix("_bytes_per_sample")] * forward_flops for name in TRAFFIC_FIELDS
    }
    fields["forward_kernels"] = int(ratios["forward_kernels"])
    return fields


#: Environment variable overriding where tests and benchmarks look for the GAISSA data directory.
GAISSA_ENV = "LIGHTNING_ENERGY_GAISSA"

REQUIRED_COLUMNS = (
    "gpu_model_inferred",
    "architecture_inferred",
    "batch_size",
    "total_ram_GB",
    "training_size",
    "validation_size",
    "GFLOPs",
    "image_size",
    "avg_epoch_energy_kJ_target_full",
    "avg_gpu_power_W_target",
)
_POSITIVE_COLUMNS = REQUIRED_COLUMNS[2:]


def default_gaissa_dir(repo_root: str | os.PathLike[str] | None = None) -> Path:
    """``$LIGHTNING_ENERGY_GAISSA`` or ``<repo root>/../shared/data/gaissa``."""
    override = os.environ.get(GAISSA_ENV)
    if override:
        return Path(override)
    root = Path(repo_root) if repo_root is not None else Path(__file__).resolve().parents[1]
    return root.parent / "shared" / "data" / "gaissa"


def _csv_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / "pre_runs.csv" if p.is_dir() else p


def load_gaissa_runs(path: str | os.PathLike[str]) -> list[LabelledRun]:
    """Labelled runs from ``pre_runs.csv`` (or a directory holding it).

    Per-epoch energy is ``avg_epoch_energy_kJ_target_full`` (GPU + modelled RAM) in J, power is
    ``avg_gpu_power_W_target``. The Keras runs are FP32, inputs are square RGB images, all CNNs
    (``conv_flop_fraction`` 1). The share of trained parameters is not published (transfer learning with a
    frozen base, then fine-tuning): it stays None and the fit estimates one value for the data set.
    Raises EstimationError naming the file, row and column for a missing column or a non-positive value.
    """
    csv_path = _csv_path(path)
    if not csv_path.is_file():
        raise EstimationError(f"path must be pre_runs.csv or a directory holding it, got {str(path)!r}")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise EstimationError(
                f"{csv_path}: missing column(s) {missing}; required: {list(REQUIRED_COLUMNS)}"
            )
        runs = [_row_to_run(row, csv_path, line) for line, row in enumerate(reader, start=2)]
    if not runs:
        raise EstimationError(f"{csv_path}: no rows")
    return runs


def _row_to_run(row: dict[str, str], csv_path: Path, line: int) -> LabelledRun:
    values: dict[str, float] = {}
    for column in _POSITIVE_COLUMNS:
        try:
            value = float(row[column])
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise EstimationError(
                f"{csv_path} line {line}: column {column!r} must be > 0, got {row[column]!r}"
            )
        values[column] = value
    gpu_name = row["gpu_model_inferred"]
    gpu = find_gpu(gpu_name)
    if gpu is None:
        raise EstimationError(
            f"{csv_path} line {line}: column 'gpu_model_inferred' {gpu_name!r} not in GPU table"
        )
    image = int(values["image_size"])
    batch = int(values["batch_size"])
    descriptor = RunDescriptor(
        model=ModelDescriptor(
            forward_flops_per_sample=values["GFLOPs"] * 1e9,
            input_shape=(3, image, image),
            precision="32-true",
            conv_flop_fraction=1.0,
            **traffic_fields(row["architecture_inferred"], image, values["GFLOPs"] * 1e9),
        ),
        data=DataDescriptor(
            batch_size=batch,
            train_samples=int(values["training_size"]),
            val_samples=int(values["validation_size"]),
        ),
        gpu=gpu,
        host_ram_gb=values["total_ram_GB"],
    )
    return LabelledRun(
        descriptor=descriptor,
        epoch_energy_j=values["avg_epoch_energy_kJ_target_full"] * 1e3,
        power_w=values["avg_gpu_power_W_target"],
        gpu_name=gpu.name,
        architecture=row["architecture_inferred"],
        dataset=row.get("dataset_inferred", "unknown"),
    )
