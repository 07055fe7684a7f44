"""MLPerf Training whole-server power of 8 x H100 SXM nodes, as GPU power-only rows for the PRE power fit.

Research/fitting code (not part of the runtime package).
``../shared/data/mlperf/mlperf_training_power_runs.csv`` gives the mean power of whole servers while
training (``mean_node_power_W``: GPUs, CPUs, memory, fans, NICs and, for AC, power-supply losses).
**A server is not a GPU**: a row's GPU power is a *modelled* share of it::

    dc_w      = mean_node_power_W                      (DC rows)
              = mean_node_power_W x conversion_eff     (AC rows with a published efficiency; other AC rows
                                                        are skipped: SMC published the same runs as DC)
    gpu_w     = (dc_w - NON_GPU_DC_W) / accel_per_node

``NON_GPU_DC_W`` is a **stated** constant, not fitted (nothing in the data separates the GPUs from the rest
of the server): 1.6 kW for two server CPUs under a training load (~2 x 300 W), DRAM (~0.15 kW), the fans of
an 8-GPU baseboard at full load (~0.4 kW), NICs, NVSwitches and storage (~0.45 kW). Its uncertainty,
``NON_GPU_DC_SD_W`` = 0.5 kW, is a ~10 % (1 sd) uncertainty on the GPU power of a 6.7 kW node; a row enters
the power fit with the weight ``POWER_ROW_LOG_SD / hypot(POWER_ROW_LOG_SD, that sd in log)`` (~0.9), i.e.
counted a little less than a measured GPU.
Only single-node runs are used: across nodes the GPUs wait for the network (per-node power falls from
~6.8 to ~5.0-6.3 kW), which a single-GPU descriptor does not describe.

Descriptors: MLPerf publishes neither the models' FLOPs nor their traffic here, so each benchmark gets the
nearest Lambda workload (``PROXY``), at 16-bit mixed precision and its per-GPU batch (global batch / GPUs).
As with Perseus, the rows teach the power curve how much of its limit a busy H100 draws, not the per-model
differences (which the server figures barely show: 6.7-7.0 kW DC for every single-node benchmark).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path

from lightning_energy.errors import EstimationError
from lightning_energy.pre import DataDescriptor, RunDescriptor, lookup_gpu
from lightning_energy.pre.roofline import workload_descriptor
from tools.perseus import PowerRun, read_rows

FILENAME = "mlperf_training_power_runs.csv"
#: The Lambda workload standing in for each MLPerf benchmark (descriptors are not published).
PROXY = {
    "bert": "bert_large_squad",
    "dlrm_dcnv2": "ncf",
    "gpt3": "bert_large_squad",
    "llama2_70b_lora": "bert_large_squad",
    "resnet": "resnet50",
    "ssd": "ssd",
    "unet3d": "resnet50",
}
GPU_NAME = "H100 SXM"
#: Stated (not fitted) DC power of everything in a node but its GPUs, and its 1-sd uncertainty (docstring).
NON_GPU_DC_W = 1600.0
NON_GPU_DC_SD_W = 500.0
#: Log-power residual sd a measured GPU row is counted at (GAISSA's in-sample power error is ~0.2 in log).
POWER_ROW_LOG_SD = 0.2
#: Iterations of a pseudo-epoch (the power prediction does not depend on the epoch's length).
STEPS = 100


def default_mlperf_dir(repo: Path) -> Path:
    """``$LIGHTNING_ENERGY_MLPERF`` or ``../shared/data/mlperf`` beside the repository."""
    env = os.environ.get("LIGHTNING_ENERGY_MLPERF")
    return Path(env) if env else repo.parent / "shared" / "data" / "mlperf"


def gpu_share_log_sd(dc_w: float) -> float:
    """1-sd uncertainty (log) of the GPU power attributed to a node drawing ``dc_w`` (DC)."""
    return NON_GPU_DC_SD_W / (dc_w - NON_GPU_DC_W)


def load_mlperf_power(folder: Path) -> list[PowerRun]:
    """One row per (benchmark, submitter) of single-node H100 runs: the mean modelled GPU power of its runs
    (module docstring); raises EstimationError naming the file and field when the data are malformed."""
    path = Path(folder) / FILENAME
    rows = read_rows(path, "MLPerf")
    groups: dict[tuple[str, str], list[tuple[float, int, int]]] = defaultdict(list)
    for line, row in enumerate(rows, start=2):
        try:
            if int(row["n_nodes"]) != 1 or "H100-SXM" not in row["accel"].replace(" ", "-"):
                continue
            if row["meas_type"] == "DC":
                dc = float(row["mean_node_power_W"])
            elif row["conversion_eff"]:
                dc = float(row["mean_node_power_W"]) * float(row["conversion_eff"])
            else:
                continue
            groups[row["benchmark"], row["submitter"]].append(
                (dc, int(row["accel_per_node"]), int(row["global_batch_size"]) // int(row["n_accel"]))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EstimationError(f"{path}: line {line}: bad or missing field: {exc!r}") from exc
    gpu = lookup_gpu(GPU_NAME)
    out = []
    for (benchmark, _), values in sorted(groups.items()):
        if benchmark not in PROXY:
            raise EstimationError(f"{path}: benchmark {benchmark!r} has no proxy workload")
        dc = math.fsum(v[0] for v in values) / len(values)
        per_node, batch = values[0][1], max(values[0][2], 1)
        descriptor = RunDescriptor(
            workload_descriptor(PROXY[benchmark], "16-mixed"), DataDescriptor(batch, batch * STEPS), gpu
        )
        weight = POWER_ROW_LOG_SD / math.hypot(POWER_ROW_LOG_SD, gpu_share_log_sd(dc))
        gpu_w = (dc - NON_GPU_DC_W) / per_node
        out.append(PowerRun(descriptor, gpu_w, GPU_NAME, benchmark, gpu.tdp_w, weight=weight))
    return out
