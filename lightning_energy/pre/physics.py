"""The PRE model: epoch time from work over the GPU's *measured* training speed, power from utilisation.

Epoch time (s)::

    work_flop   = (train_samples * (1 + 2 * trainable_share) + val_samples) * forward_flops_per_sample
    speed       = achieved training FLOP/s of the GPU at this precision for this model's conv/matmul mix
                  (throughput.json: measured, or a datasheet fallback)
    efficiency  = s / (s + half_step_flop) * (REF + half_step_flop) / REF,   s = batch_size * forward FLOPs,
                  REF = REFERENCE_STEP_FLOP, the step size of the throughput references (efficiency 1 there)
    compute_s   = work_flop / (speed * efficiency)
    host_s      = (train_samples + val_samples) * host_s_per_sample * (input_numel / 49152) ** numel_exponent
    epoch_s     = compute_s + host_s

A trained sample costs a forward and a backward pass (3 forward passes; 1 + 2 x the trained share of the
parameters when a backbone is frozen), a validation sample one. The host term (data loading, framework
overhead per sample) does not scale with the GPU; 49152 = 3 x 128 x 128.

Mean GPU power (W), from the board power limit, the predicted utilisation and (through it) the precision::

    busy    = compute_s / epoch_s                      (share of the epoch the GPU computes)
    step_s  = compute_s / steps                        (GPU time of one step: short steps are launch-bound)
    power_w = tdp_w * (idle + (1 - idle) * sigmoid(a0 + a1 * log(busy) + a2 * log(step_s / 0.1)))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.pre.descriptors import RunDescriptor
from lightning_energy.pre.throughput import gpu_speed

#: Forward FLOPs of one step of the throughput references (ResNet-50 x 256 images = 2.1e12, BERT-base x 32
#: sequences = 2.3e12): a step this large runs at the table's speed.
REFERENCE_STEP_FLOP = 2e12
NUMEL_REFERENCE = 49152.0
STEP_S_REFERENCE = 0.1

TIME_PARAM_NAMES = ("log_half_step_flop", "log_host_s_per_sample", "numel_exponent")
POWER_PARAM_NAMES = ("logit_idle_fraction", "util_bias", "util_per_log_busy", "util_per_log_step_s")


@dataclass(frozen=True)
class Features:
    """Column arrays of the quantities the model uses, one entry per run."""

    batch_size: np.ndarray
    flops_per_sample: np.ndarray
    train_samples: np.ndarray
    val_samples: np.ndarray
    input_numel: np.ndarray
    trainable_share: np.ndarray
    speed_flops: np.ndarray
    speed_log_q90: np.ndarray
    family_log_q90: np.ndarray
    conv_share: np.ndarray
    tdp_w: np.ndarray
    speed_source: tuple[str, ...]

    @property
    def speed_measured(self) -> np.ndarray:
        """True where the GPU's speed is measured (its error is then part of the model's own error)."""
        return np.array([source == "measured" for source in self.speed_source], dtype=bool)

    @classmethod
    def from_descriptors(cls, descriptors: Sequence[RunDescriptor]) -> Features:
        speeds = [gpu_speed(d.gpu, d.model.precision, d.model.conv_share) for d in descriptors]

        def col(values: Sequence[float]) -> np.ndarray:
            return np.asarray(values, dtype=float)

        return cls(
            batch_size=col([d.data.batch_size for d in descriptors]),
            flops_per_sample=col([d.model.forward_flops_per_sample for d in descriptors]),
            train_samples=col([d.data.train_samples for d in descriptors]),
            val_samples=col([d.data.val_samples for d in descriptors]),
            input_numel=col([d.model.input_numel for d in descriptors]),
            trainable_share=col([d.model.trainable_share for d in descriptors]),
            speed_flops=col([s.training_flops for s in speeds]),
            speed_log_q90=col([s.log_q90 for s in speeds]),
            family_log_q90=col([s.family_log_q90 for s in speeds]),
            conv_share=col([d.model.conv_share for d in descriptors]),
            tdp_w=col([d.gpu.tdp_w for d in descriptors]),
            speed_source=tuple(s.source for s in speeds),
        )


def time_parts(theta: np.ndarray, f: Features) -> tuple[np.ndarray, np.ndarray]:
    """(compute_s, host_s) per run."""
    log_half, log_host, numel_exponent = theta
    half = np.exp(log_half)
    step_flop = f.batch_size * f.flops_per_sample
    efficiency = step_flop / (step_flop + half) * (REFERENCE_STEP_FLOP + half) / REFERENCE_STEP_FLOP
    work = (f.train_samples * (1.0 + 2.0 * f.trainable_share) + f.val_samples) * f.flops_per_sample
    compute_s = work / (f.speed_flops * efficiency)
    host_s = (
        (f.train_samples + f.val_samples)
        * np.exp(log_host)
        * (f.input_numel / NUMEL_REFERENCE) ** numel_exponent
    )
    return compute_s, host_s


def epoch_seconds(theta: np.ndarray, f: Features) -> np.ndarray:
    """Predicted epoch time per run."""
    compute_s, host_s = time_parts(theta, f)
    return compute_s + host_s


def power_w(phi: np.ndarray, theta: np.ndarray, f: Features) -> np.ndarray:
    """Predicted mean GPU power per run."""
    logit_idle, a0, a1, a2 = phi
    compute_s, host_s = time_parts(theta, f)
    busy = compute_s / (compute_s + host_s)
    steps = np.ceil(f.train_samples / f.batch_size) + np.ceil(f.val_samples / f.batch_size)
    step_s = compute_s / np.maximum(steps, 1.0)
    idle = 1.0 / (1.0 + np.exp(-logit_idle))
    z = a0 + a1 * np.log(busy) + a2 * np.log(step_s / STEP_S_REFERENCE)
    utilisation = 1.0 / (1.0 + np.exp(-z))
    return f.tdp_w * (idle + (1.0 - idle) * utilisation)
