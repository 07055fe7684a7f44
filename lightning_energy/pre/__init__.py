"""PRE: estimate a training run's energy before it starts (numpy only; torch only in ``describe``)."""

from lightning_energy.pre.cli import add_estimate_parser, run_estimate
from lightning_energy.pre.describe import FitEstimate, estimate_for_fit
from lightning_energy.pre.descriptors import (
    DataDescriptor,
    GpuDescriptor,
    LabelledRun,
    ModelDescriptor,
    RunDescriptor,
)
from lightning_energy.pre.gpus import find_gpu, gpu_from_nvml, gpu_names, lookup_gpu
from lightning_energy.pre.history import RecordedRun, RunHistory, calibrated_estimator
from lightning_energy.pre.model import Estimate, PreEstimator

__all__ = [
    "DataDescriptor",
    "Estimate",
    "FitEstimate",
    "GpuDescriptor",
    "LabelledRun",
    "ModelDescriptor",
    "PreEstimator",
    "RecordedRun",
    "RunDescriptor",
    "RunHistory",
    "add_estimate_parser",
    "calibrated_estimator",
    "estimate_for_fit",
    "find_gpu",
    "gpu_from_nvml",
    "gpu_names",
    "lookup_gpu",
    "run_estimate",
]
