"""Perseus (SOSP'24) NVML power of data-centre GPUs in training, as power-only rows for the PRE power fit.

Research/fitting code (not part of the runtime package). ``../shared/data/perseus/sosp24_{A100,A40}_zeus_
global.csv`` hold, per model, batch and power limit, the time and the NVML energy of one training iteration
summed over the pipeline's GPUs (4 x A100 80GB PCIe, 8 x A40; every GPU at the same limit in these files).
A row's measured mean power per GPU is ``energy / time / stages``.

PRE predicts power from the descriptor of a run (its busy share and step time). Perseus publishes the
partitioning but not the models' descriptors, so each model gets the descriptor of the nearest Lambda
workload (``PROXY``: the transformer LMs BERT-large's, Wide-ResNet-101 ResNet-50's), at 16-bit mixed
precision and its micro-batch size, on the GPU with its board limit set to the row's power limit. What the
rows can teach the power curve is therefore how much of its limit a busy data-centre board draws, not the
per-model differences (A40 on T5-3B draws 0.54 of its limit, the other models 0.78-0.87): an approximation,
stated wherever the rows are used. What the partitioning does say is how long each stage idles in the
pipeline's fill and drain (``pipeline_bubble``: 3-18 % here); a row carries it as ``idle_share``, and the
power fit predicts ``(1 - idle_share) x P(descriptor) + idle_share x idle power``.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from lightning_energy.errors import EstimationError
from lightning_energy.pre import DataDescriptor, RunDescriptor, lookup_gpu
from lightning_energy.pre.roofline import workload_descriptor

#: The Lambda workload standing in for each Perseus model (descriptors are not published).
PROXY = {
    "bert-huge-uncased": "bert_large_squad",
    "bloom-3b": "bert_large_squad",
    "gpt3-xl": "bert_large_squad",
    "gpt3-2.7b": "bert_large_squad",
    "t5-3b": "bert_large_squad",
    "wide-resnet101_8": "resnet50",
}
FILES = (
    ("A100 80GB PCIe", "sosp24_A100_zeus_global.csv", 4),
    ("A40", "sosp24_A40_zeus_global.csv", 8),
)
#: Iterations of a pseudo-epoch (the power prediction does not depend on the epoch's length).
STEPS = 100


@dataclass(frozen=True)
class PowerRun:
    """One measured mean board power with the descriptor PRE predicts it from."""

    descriptor: RunDescriptor
    power_w: float
    gpu_name: str
    model_name: str
    power_limit_w: float
    #: weight of the row in the power fit (1: a measured GPU; less where the GPU's power is modelled)
    weight: float = 1.0
    #: share of the time the GPU idles for a known reason outside the descriptor (a pipeline's bubble)
    idle_share: float = 0.0


def default_perseus_dir(repo: Path) -> Path:
    """``$LIGHTNING_ENERGY_PERSEUS`` or ``../shared/data/perseus`` beside the repository."""
    env = os.environ.get("LIGHTNING_ENERGY_PERSEUS")
    return Path(env) if env else repo.parent / "shared" / "data" / "perseus"


def read_rows(path: Path, source: str) -> list[dict[str, str]]:
    """The rows of a CSV file; raises EstimationError naming ``source`` and the file when unreadable."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise EstimationError(f"cannot read {source} data {str(path)!r}: {exc}") from exc


def pipeline_bubble(stages: int, microbatches: int) -> float:
    """Share of an iteration a pipeline stage idles (fill and drain of a GPipe/1F1B schedule):
    ``(stages - 1) / (microbatches + stages - 1)``."""
    return (stages - 1) / (microbatches + stages - 1)


def load_perseus_power(folder: Path) -> list[PowerRun]:
    """Rows with every GPU at one power limit, one per (GPU, model, batch, limit); raises EstimationError
    naming the file and field when the data are missing or malformed."""
    runs = []
    for gpu_name, filename, stages in FILES:
        path = Path(folder) / filename
        rows = read_rows(path, "Perseus")
        for line, row in enumerate(rows, start=2):
            try:
                limits = {float(row[f"power_limit_{i}"]) for i in range(stages)}
                if len(limits) != 1:
                    continue
                limit = limits.pop()
                watts = float(row["energy"]) / float(row["time"]) / stages
                model = row["model_name"]
                micro = int(row["microbatch_size"])
                bubble = pipeline_bubble(int(row["pp"]), int(row["num_microbatches"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise EstimationError(f"{path}: line {line}: bad or missing field: {exc!r}") from exc
            if model not in PROXY:
                raise EstimationError(f"{path}: line {line}: model {model!r} has no proxy workload")
            gpu = dataclasses.replace(lookup_gpu(gpu_name), tdp_w=limit)
            descriptor = RunDescriptor(
                workload_descriptor(PROXY[model], "16-mixed"), DataDescriptor(micro, micro * STEPS), gpu
            )
            runs.append(PowerRun(descriptor, watts, gpu_name, model, limit, idle_share=bubble))
    return runs
