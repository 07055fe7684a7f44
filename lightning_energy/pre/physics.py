"""Physics-shaped part of the PRE model: epoch time from work over effective throughput, power by utilisation.

Epoch time (s)::

    compute_s = (3 * train_samples + val_samples) * forward_flops_per_sample / (peak_flops * efficiency)
    efficiency = max_efficiency * step_work / (step_work + half_work)
    step_work = batch_size * forward_flops_per_sample
    host_s = (train_samples + val_samples) * host_s_per_sample * (input_numel / 49152) ** numel_exponent
    epoch_seconds = compute_s + host_s

Mean GPU power (W)::

    power_w = tdp_w * (idle + (1 - idle) * sigmoid(a0 + a1 * log(compute_s / epoch_seconds)
                                                     + a2 * log(step_work / 1e10)))

A training sample costs 3 forward passes (forward + backward), a validation sample one. The host term is
data loading and per-sample framework overhead; it does not scale with the GPU. 49152 = 3 x 128 x 128.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.pre.descriptors import RunDescriptor

#: Assumed cap on the end-to-end speed-up of 16-bit mixed precision over FP32 (not in the fitting data).
MIXED_SPEEDUP_CAP = 3.0
_HALF_PRECISIONS = ("16-mixed", "bf16-mixed", "16-true", "bf16-true")

TIME_PARAM_NAMES = ("log_max_efficiency", "log_half_work_flop", "log_host_s_per_sample", "numel_exponent")
TIME_PRIOR = np.array([np.log(0.4), np.log(1e10), np.log(3e-4), 0.5])
TIME_PRIOR_SD = np.array([1.0, 2.0, 1.5, 0.5])
TIME_LOWER = np.array([np.log(0.02), np.log(1e7), np.log(1e-7), 0.0])
TIME_UPPER = np.array([0.0, np.log(1e13), np.log(1e-1), 1.5])

POWER_PARAM_NAMES = (
    "logit_idle_fraction",
    "util_bias",
    "util_per_log_compute_fraction",
    "util_per_log_step_work",
)
POWER_PRIOR = np.array([-1.5, 1.0, 1.0, 0.3])
POWER_PRIOR_SD = np.array([1.0, 2.0, 1.0, 0.5])


def effective_peak_flops(descriptor: RunDescriptor) -> float:
    """Peak FLOP/s the run can use: FP32 peak, or for 16-bit precisions a capped tensor-core speed-up."""
    gpu = descriptor.gpu
    peak = gpu.peak_fp32_tflops * 1e12
    if descriptor.model.precision in _HALF_PRECISIONS and gpu.peak_tensor_tflops is not None:
        speedup = min(gpu.peak_tensor_tflops / gpu.peak_fp32_tflops, MIXED_SPEEDUP_CAP)
        peak *= max(speedup, 1.0)
    return peak


@dataclass(frozen=True)
class Features:
    """Column arrays of the quantities the model uses, one entry per run."""

    batch_size: np.ndarray
    flops_per_sample: np.ndarray
    train_samples: np.ndarray
    val_samples: np.ndarray
    input_numel: np.ndarray
    host_ram_gb: np.ndarray
    peak_flops: np.ndarray
    bandwidth_bps: np.ndarray
    tdp_w: np.ndarray

    @classmethod
    def from_descriptors(cls, descriptors: Sequence[RunDescriptor]) -> Features:
        def col(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=float)

        return cls(
            batch_size=col([d.data.batch_size for d in descriptors]),
            flops_per_sample=col([d.model.forward_flops_per_sample for d in descriptors]),
            train_samples=col([d.data.train_samples for d in descriptors]),
            val_samples=col([d.data.val_samples for d in descriptors]),
            input_numel=col([d.model.input_numel for d in descriptors]),
            host_ram_gb=col([d.host_ram_gb for d in descriptors]),
            peak_flops=col([effective_peak_flops(d) for d in descriptors]),
            bandwidth_bps=col([d.gpu.memory_bandwidth_gbs * 1e9 for d in descriptors]),
            tdp_w=col([d.gpu.tdp_w for d in descriptors]),
        )

    def log_matrix(self) -> np.ndarray:
        """Log features for the residual kernel (val_samples + 1 so that 0 is allowed)."""
        return np.log(
            np.column_stack(
                [
                    self.batch_size,
                    self.flops_per_sample,
                    self.train_samples,
                    self.val_samples + 1.0,
                    self.input_numel,
                    self.host_ram_gb,
                    self.peak_flops,
                    self.bandwidth_bps,
                    self.tdp_w,
                ]
            )
        )


def time_parts(theta: np.ndarray, f: Features) -> tuple[np.ndarray, np.ndarray]:
    """(compute_s, host_s) per run."""
    log_eff, log_half_work, log_host, numel_exponent = theta
    step_work = f.batch_size * f.flops_per_sample
    efficiency = np.exp(log_eff) * step_work / (step_work + np.exp(log_half_work))
    work = (3.0 * f.train_samples + f.val_samples) * f.flops_per_sample
    compute_s = work / (f.peak_flops * efficiency)
    host_s = (
        (f.train_samples + f.val_samples) * np.exp(log_host) * (f.input_numel / 49152.0) ** numel_exponent
    )
    return compute_s, host_s


def power_w(phi: np.ndarray, theta: np.ndarray, f: Features) -> np.ndarray:
    """Mean GPU power per run."""
    logit_idle, a0, a1, a2 = phi
    compute_s, host_s = time_parts(theta, f)
    compute_fraction = compute_s / (compute_s + host_s)
    step_work = f.batch_size * f.flops_per_sample
    idle = 1.0 / (1.0 + np.exp(-logit_idle))
    z = a0 + a1 * np.log(compute_fraction) + a2 * np.log(step_work / 1e10)
    utilisation = 1.0 / (1.0 + np.exp(-z))
    return f.tdp_w * (idle + (1.0 - idle) * utilisation)


def fit_physics(f: Features, epoch_seconds: np.ndarray, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares in log space with weak Gaussian priors on the parameters; returns (theta, phi)."""
    from scipy.optimize import least_squares

    n = len(epoch_seconds)
    prior_weight = 0.05 * np.sqrt(n)
    log_t = np.log(epoch_seconds)
    log_p = np.log(power)

    def time_residuals(theta: np.ndarray) -> np.ndarray:
        fit = np.log(np.sum(time_parts(theta, f), axis=0)) - log_t
        return np.concatenate([fit, prior_weight * (theta - TIME_PRIOR) / TIME_PRIOR_SD])

    theta = least_squares(time_residuals, TIME_PRIOR, bounds=(TIME_LOWER, TIME_UPPER)).x

    def power_residuals(phi: np.ndarray) -> np.ndarray:
        fit = np.log(power_w(phi, theta, f)) - log_p
        return np.concatenate([fit, prior_weight * (phi - POWER_PRIOR) / POWER_PRIOR_SD])

    phi = least_squares(power_residuals, POWER_PRIOR).x
    return theta, phi
