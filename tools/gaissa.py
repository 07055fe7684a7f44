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
import statistics
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


#: GAISSA's training protocols, from the authors' code (replication packages named in the data README):
#:
#: * the five chesslive models (``seaa2023_ect/src/models``): ``INITIAL_EPOCHS = 10`` epochs with the base
#:   frozen (``base_model.trainable = False``: the backward pass runs through the small head only), then the
#:   whole model (``FINE_TUNE_AT = 0.0``) until early stopping;
#: * InceptionV3 (``dl-training-energy-estimation/src/models/dl/inception_v3.py``): ``FREEZE_AT = 1.0``,
#:   ``FINE_TUNING_EPOCHS = 0``: the base stays frozen; only the head (Flatten, two Dense layers with batch
#:   norm, softmax) is trained, with these widths per data set.
CHESSLIVE_FROZEN_EPOCHS = 10
INCEPTION_HEADS = {"caltech101": (2048, 1024, 101), "stanford_dogs": (2048, 2048, 120)}


def inception_head_flops(dataset: str, base_output_features: float) -> float | None:
    """Forward FLOPs of one sample through GAISSA's InceptionV3 head (2 per multiply-add); None for an
    unknown data set. Matches the published GFLOPs minus the base's to within 0.3 %."""
    widths = INCEPTION_HEADS.get(dataset)
    if widths is None:
        return None
    first, second, classes = widths
    return 2.0 * (base_output_features * first + first * second + second * classes)


@functools.lru_cache(maxsize=4)
def chesslive_epochs(folder: str) -> dict[str, float]:
    """Median trained epochs per chesslive architecture (``seaa_runs.csv``'s ``trained epochs``, the same
    experiments); empty when the file is absent."""
    path = Path(folder) / "seaa_runs.csv"
    if not path.is_file():
        return {}
    epochs: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                epochs.setdefault(row["architecture"], []).append(float(row["trained epochs"]))
            except (KeyError, ValueError):
                continue
    return {name: float(statistics.median(values)) for name, values in epochs.items() if values}


def trained_share(row: dict[str, str], image: int, forward_flops: float, folder: Path) -> float | None:
    """Share of the forward FLOPs the backward pass runs through, averaged over the run's epochs, from the
    authors' protocols (``CHESSLIVE_FROZEN_EPOCHS``, ``INCEPTION_HEADS``); None where unknown (the fit then
    estimates one share for the data set). GAISSA's descriptors carry no ``parameter_count``, so the share
    enters the model only through the backward pass's FLOPs and traffic: it is set to that share (for
    InceptionV3 the head holds most of the *parameters* but 3-4 % of the FLOPs). The frozen epochs'
    head is counted as 0 (its FLOPs are under 0.1 % of the base's)."""
    architecture = row["architecture_inferred"]
    if architecture == "inception_v3":
        sizes = _traffic_table().get(architecture)
        if not sizes:
            return None
        nearest = sizes[min(sizes, key=lambda size: abs(int(size) - image))]
        head = inception_head_flops(row.get("dataset_inferred", ""), nearest.get("output_features", 0.0))
        return None if head is None or head <= 0 else min(1.0, head / forward_flops)
    epochs = chesslive_epochs(str(folder)).get(architecture)
    if row.get("dataset_inferred") != "chesslive-occupancy" or epochs is None:
        return None
    return max(0.0, 1.0 - CHESSLIVE_FROZEN_EPOCHS / epochs)


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
    (``conv_flop_fraction`` 1). The trained share comes from the authors' protocols (``trained_share``:
    InceptionV3 trains its head only; the chesslive models train the head for 10 epochs, then everything);
    where it cannot be derived it stays None and the fit estimates one value for the data set.
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
            trainable_fraction=trained_share(row, image, values["GFLOPs"] * 1e9, csv_path.parent),
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
