"""The PRE model: epoch time from a roofline of the GPU's *measured* training speeds, power from utilisation.

Epoch time (s)::

    passes      = train_samples * (1 + 2 * trainable_share) + val_samples        (forward-pass equivalents)
    byte_passes = train_samples * (1 + (r - 1) * trainable_share) + val_samples  (r: training/forward traffic)
    flop_s      = passes * FLOPs * (c / S_conv + (1 - c) / S_matmul) / efficiency
    efficiency  = s / (s + half_step_flop) * (REF + half_step_flop) / REF,   s = batch_size * forward FLOPs,
                  REF = REFERENCE_STEP_FLOP, the step size of the throughput references (efficiency 1 there)
    bytes_s     = byte_passes * (bytes_other / BW) + train_steps * trainable * parameter traffic / BW
    compute_s   = max(flop_s, byte_passes * bytes_matmul / BW) + bytes_s      (GPU kernels: the roofline)
    overhead_s  = (train_steps + val_steps / 3) * step_overhead_s    (optimizer, Python: per step, the same
                                                                      on every GPU)
                  + ((1 + 2 * trainable_share) * train_steps + val_steps) * forward_kernels * launch_s
                                    (kernel launches; launch_s fitted on Lambda's workloads; a frozen
                                     part of the model launches no backward kernels)
    host_s      = (train_samples + val_samples) * host_s_per_sample * (input_numel / 49152) ** numel_exponent
    epoch_s     = ((compute_s + overhead_s) ** k + host_s ** k) ** (1 / k)      k = overlap_exponent

A trained sample costs a forward and a backward pass (3 forward passes; 1 + 2 x the trained share of the
parameters when a backbone is frozen), a validation sample one. The per-step overhead and the host term
(data loading, per-sample framework work) do not scale with the GPU; 49152 = 3 x 128 x 128. Loading overlaps
the GPU's work (loader workers): k = 1 adds the two, a large k takes the larger; k is chosen by selection.

Mean GPU power (W), from the board power limit, the predicted utilisation and (through it) the precision::

    busy    = compute_s / epoch_s                      (share of the epoch the GPU runs kernels)
    step_s  = compute_s / steps                        (GPU time of one step: short steps are launch-bound)
    power_w = tdp_w * (idle + (1 - idle) * sigmoid(a0 + s * busy + a1 * log(busy) + a2 * log(step_s / 0.1)))

``s`` is the board class's shift (``class_shift``): 0 for a consumer/workstation board (the curve fitted on
GAISSA's consumer GPUs), the data-centre shift fitted on data-centre rows (Perseus, MLPerf) for a data-centre
board (``GpuDescriptor.power_class``). It is weighted by the busy share: the rows it is fitted on are all of
busy boards, and a board waiting on its host draws near its idle power whatever its class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.pre import roofline
from lightning_energy.pre.descriptors import DATA_CENTRE, RunDescriptor
from lightning_energy.pre.throughput import SpeedSource, gpu_speed

#: Forward FLOPs of one step of the throughput references (ResNet-50 x 256 images = 2.1e12, BERT-base x 32
#: sequences = 2.3e12): a step this large runs at the table's speed.
REFERENCE_STEP_FLOP = 2e12
NUMEL_REFERENCE = 49152.0
STEP_S_REFERENCE = 0.1

#: A run whose GPU is predicted busy at least this share of the epoch is called "GPU-bound" in reports and
#: benchmarks (a fixed, round split; nothing is tuned on it).
GPU_BOUND_SHARE = 0.8

#: Kernels a fully trained step launches per forward kernel (backward about twice the forward's, plus the
#: optimizer): a round figure, not fitted. A frozen part of the model (``trainable_share`` < 1) launches its
#: forward kernels only: a training step launches ``1 + (3 - 1) x trainable_share`` forward kernels' worth,
#: as its FLOPs are ``1 + 2 x trainable_share`` forward passes (until v5.3 every training step was charged 3,
#: which made a frozen-backbone fine-tune, GAISSA's InceptionV3, look launch-bound).
TRAINING_KERNELS_PER_FORWARD = 3.0

#: Per-step overhead of a validation step relative to a training step (forward only: about a third of the
#: kernels, no optimizer step).
VAL_STEP_OVERHEAD_SHARE = 1.0 / 3.0

TIME_PARAM_NAMES = (
    "log_half_step_flop",
    "log_step_overhead_s",
    "log_host_s_per_sample",
    "numel_exponent",
    "overlap_exponent",
)
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
    speed_source: tuple[SpeedSource, ...]
    conv_flops: np.ndarray
    matmul_flops: np.ndarray
    bandwidth_bs: np.ndarray
    bytes_matmul: np.ndarray
    bytes_other: np.ndarray
    parameter_bytes: np.ndarray
    traffic_log_q90: np.ndarray
    forward_kernels: np.ndarray
    #: 1.0 where the GPU is a data-centre board (``GpuDescriptor.power_class``), else 0.0
    data_centre: np.ndarray

    @property
    def speed_measured(self) -> np.ndarray:
        """True where the GPU's speed is measured (its error is then part of the model's own error)."""
        return np.array([source == "measured" for source in self.speed_source], dtype=bool)

    @classmethod
    def from_descriptors(cls, descriptors: Sequence[RunDescriptor]) -> Features:
        speeds = [
            gpu_speed(d.gpu, d.model.precision, d.model.conv_share, d.model.matmul_tf32) for d in descriptors
        ]
        roofs = [
            roofline.gpu_roofline(d.gpu, d.model.precision, d.model.matmul_tf32, d.model.conv_share)
            for d in descriptors
        ]
        traffic = [roofline.model_traffic(d.model) for d in descriptors]
        per_parameter = float(roofline.constants()["parameter_bytes_per_step"])

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
            speed_log_q90=col([r.log_q90 for r in roofs]),
            family_log_q90=col([s.family_log_q90 for s in speeds]),
            conv_share=col([d.model.conv_share for d in descriptors]),
            tdp_w=col([d.gpu.tdp_w for d in descriptors]),
            speed_source=tuple(r.source for r in roofs),
            conv_flops=col([r.conv_flops for r in roofs]),
            matmul_flops=col([r.matmul_flops for r in roofs]),
            bandwidth_bs=col([r.bandwidth_bs for r in roofs]),
            bytes_matmul=col([t.matmul for t in traffic]),
            bytes_other=col([t.other for t in traffic]),
            parameter_bytes=col([(d.model.parameter_count or 0) * per_parameter for d in descriptors]),
            traffic_log_q90=col([t.log_q90 for t in traffic]),
            forward_kernels=col([d.model.forward_kernels or 0 for d in descriptors]),
            data_centre=col([float(d.gpu.power_class == DATA_CENTRE) for d in descriptors]),
        )

    def class_shift(self, data_centre_shift: float) -> np.ndarray:
        """Per run, the utilisation-logit shift of its board class: ``data_centre_shift`` on data-centre
        boards, 0 on consumer/workstation boards."""
        return self.data_centre * float(data_centre_shift)


@dataclass(frozen=True)
class TimeParts:
    """Predicted per-epoch times (s), one entry per run; ``flop_s``/``bytes_s``: the compute- and the
    bandwidth-bound parts of the roofline (``compute_s`` is their roofline combination)."""

    compute_s: np.ndarray
    overhead_s: np.ndarray
    host_s: np.ndarray
    epoch_s: np.ndarray
    steps: np.ndarray
    flop_s: np.ndarray
    bytes_s: np.ndarray

    @property
    def busy_share(self) -> np.ndarray:
        """Share of the epoch the GPU runs kernels."""
        return self.compute_s / self.epoch_s

    @property
    def bandwidth_share(self) -> np.ndarray:
        """Share of the GPU's kernel time bound by memory bandwidth rather than FLOP/s."""
        return self.bytes_s / self.compute_s

    def regimes(self) -> tuple[roofline.Regime, ...]:
        """Per run: host-bound (loading, launches and Python outweigh the GPU's kernels), else bandwidth- or
        compute-bound by the larger side of the roofline."""
        out: list[roofline.Regime] = []
        for compute, overhead, host, share in zip(
            self.compute_s, self.overhead_s, self.host_s, self.bandwidth_share, strict=True
        ):
            if max(host, overhead) > compute:
                out.append(roofline.HOST)
            else:
                out.append(roofline.BANDWIDTH if share > 0.5 else roofline.COMPUTE)
        return tuple(out)


def time_parts(theta: np.ndarray, f: Features, log_host_shift: np.ndarray | float = 0.0) -> TimeParts:
    """Compute, per-step overhead, host and epoch time per run (see the module docstring).

    ``log_host_shift`` (per run or one value; default 0) is added to the log per-step overhead and the log
    host cost per sample: a machine whose host is ``exp(shift)`` times slower than the fitted one
    (``lightning_energy.pre.machine``). Kernel launches are not shifted."""
    log_half, log_overhead, log_host, numel_exponent, overlap = theta
    log_overhead = log_overhead + log_host_shift
    log_host = log_host + log_host_shift
    half = np.exp(log_half)
    step_flop = f.batch_size * f.flops_per_sample
    efficiency = step_flop / (step_flop + half) * (REFERENCE_STEP_FLOP + half) / REFERENCE_STEP_FLOP
    passes = f.train_samples * (1.0 + 2.0 * f.trainable_share) + f.val_samples
    r = float(roofline.constants()["training_traffic_factor"])
    byte_passes = f.train_samples * (1.0 + (r - 1.0) * f.trainable_share) + f.val_samples
    per_flop = f.conv_share / f.conv_flops + (1.0 - f.conv_share) / f.matmul_flops
    flop_s = passes * f.flops_per_sample * per_flop / efficiency
    train_steps = np.ceil(f.train_samples / f.batch_size)
    bytes_s = (
        byte_passes * f.bytes_other + train_steps * f.trainable_share * f.parameter_bytes
    ) / f.bandwidth_bs
    matmul_s = np.maximum(flop_s, byte_passes * f.bytes_matmul / f.bandwidth_bs)
    compute_s = matmul_s + bytes_s
    val_steps = np.ceil(f.val_samples / f.batch_size)
    kernels_per_train_step = 1.0 + (TRAINING_KERNELS_PER_FORWARD - 1.0) * f.trainable_share
    launches = (kernels_per_train_step * train_steps + val_steps) * f.forward_kernels
    overhead_s = (train_steps + VAL_STEP_OVERHEAD_SHARE * val_steps) * np.exp(
        log_overhead
    ) + launches * float(roofline.constants()["launch_s"])
    host_s = (
        (f.train_samples + f.val_samples)
        * np.exp(log_host)
        * (f.input_numel / NUMEL_REFERENCE) ** numel_exponent
    )
    device_s = compute_s + overhead_s
    epoch_s = (device_s**overlap + host_s**overlap) ** (1.0 / overlap)
    steps = np.maximum(train_steps + val_steps, 1.0)
    bandwidth_s = compute_s - np.minimum(flop_s, compute_s)
    return TimeParts(compute_s, overhead_s, host_s, epoch_s, steps, flop_s, bandwidth_s)


def epoch_seconds(theta: np.ndarray, f: Features) -> np.ndarray:
    """Predicted epoch time per run."""
    return time_parts(theta, f).epoch_s


def power_w(phi: np.ndarray, theta: np.ndarray, f: Features, data_centre_shift: float = 0.0) -> np.ndarray:
    """Predicted mean GPU power per run (``data_centre_shift``: the data-centre class shift)."""
    return power_from_parts(phi, time_parts(theta, f), f.tdp_w, f.class_shift(data_centre_shift))


def idle_power_w(phi: np.ndarray, tdp_w: np.ndarray) -> np.ndarray:
    """Power of the board while it runs no kernel (the curve's floor)."""
    return tdp_w / (1.0 + np.exp(-phi[0]))


def logistic(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))``; a very negative ``z`` gives 0 without a numpy overflow warning."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def power_from_parts(
    phi: np.ndarray, parts: TimeParts, tdp_w: np.ndarray, class_shift: np.ndarray | float = 0.0
) -> np.ndarray:
    """Mean GPU power from the time parts: the busy share and the GPU time of one step; ``class_shift``
    (per run or one value; ``Features.class_shift``) times the busy share is added to the utilisation
    logit."""
    logit_idle, a0, a1, a2 = phi
    step_s = parts.compute_s / parts.steps
    idle = logistic(logit_idle)
    z = (
        a0
        + class_shift * parts.busy_share
        + a1 * np.log(parts.busy_share)
        + a2 * np.log(step_s / STEP_S_REFERENCE)
    )
    utilisation = logistic(z)
    return tdp_w * (idle + (1.0 - idle) * utilisation)
