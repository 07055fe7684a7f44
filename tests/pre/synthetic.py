"""Synthetic runs from known physics for the PRE tests."""

from __future__ import annotations

import itertools

import numpy as np

from lightning_energy.pre import (
    DataDescriptor,
    LabelledRun,
    ModelDescriptor,
    RunDescriptor,
    lookup_gpu,
    physics,
)

#: half-step FLOPs, per-step overhead (s), host s/sample, numel exponent, overlap exponent
TRUE_THETA = np.array([np.log(5e10), np.log(3e-3), np.log(5e-5), 0.6, 2.0])
TRUE_PHI = np.array([-1.2, 0.8, 1.0, 0.3])


def synthetic_descriptors(
    gpus: tuple[str, ...] = ("RTX 3070", "RTX 3090", "A100 40GB PCIe"),
    trainable: float | None = 1.0,
) -> list[RunDescriptor]:
    out = []
    for gpu, batch, gflops, image in itertools.product(gpus, (16, 64, 256), (0.1, 1.0, 5.0), (64, 128, 224)):
        out.append(
            RunDescriptor(
                model=ModelDescriptor(
                    gflops * 1e9 * (image / 128) ** 2, (3, image, image), trainable_fraction=trainable
                ),
                data=DataDescriptor(batch, 20000, 5000),
                gpu=lookup_gpu(gpu),
                host_ram_gb=32.0,
            )
        )
    return out


def synthetic_runs(
    descriptors: list[RunDescriptor], noise: float = 0.0, seed: int = 0, trainable: float = 1.0
) -> list[LabelledRun]:
    """Runs whose time and power follow the model exactly (times log-normal noise); ``trainable`` is the
    true trained share of descriptors that leave it unknown."""
    f = physics.Features.from_descriptors(descriptors)
    f = physics.Features(
        **{
            **f.__dict__,
            "trainable_share": np.array(
                [
                    trainable if d.model.trainable_fraction is None else d.model.trainable_share
                    for d in descriptors
                ]
            ),
        }
    )
    seconds = physics.epoch_seconds(TRUE_THETA, f)
    power = physics.power_w(TRUE_PHI, TRUE_THETA, f)
    rng = np.random.default_rng(seed)
    seconds = seconds * np.exp(noise * rng.standard_normal(len(seconds)))
    power = power * np.exp(noise * rng.standard_normal(len(power)))
    return [
        LabelledRun(
            d,
            float(s * p),
            float(p),
            d.gpu.name,
            architecture=f"gflops{d.model.forward_flops_per_sample:.2g}",
        )
        for d, s, p in zip(descriptors, seconds, power, strict=True)
    ]
