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

TRUE_THETA = np.array([np.log(0.5), np.log(5e9), np.log(2e-4), 0.6])
TRUE_PHI = np.array([-1.2, 0.5, 1.0, 0.2])


def synthetic_descriptors(
    gpus: tuple[str, ...] = ("RTX 3070", "RTX 3090", "A100 40GB"),
) -> list[RunDescriptor]:
    out = []
    for gpu, batch, gflops, image in itertools.product(gpus, (16, 64, 256), (0.1, 1.0, 5.0), (64, 128, 224)):
        out.append(
            RunDescriptor(
                model=ModelDescriptor(gflops * 1e9 * (image / 128) ** 2, (3, image, image)),
                data=DataDescriptor(batch, 20000, 5000),
                gpu=lookup_gpu(gpu),
                host_ram_gb=32.0,
            )
        )
    return out


def synthetic_runs(descriptors: list[RunDescriptor], noise: float = 0.0, seed: int = 0) -> list[LabelledRun]:
    f = physics.Features.from_descriptors(descriptors)
    seconds = np.sum(physics.time_parts(TRUE_THETA, f), axis=0)
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
