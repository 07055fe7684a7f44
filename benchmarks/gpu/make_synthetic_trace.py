"""Write ``tests/data/traces/synthetic_steady.json``: a small, deterministic, *synthetic* replay trace.

It mimics a steady GPU run (30 epochs of 20 s, gpu0 about 300 W with small seeded noise, host CPU/RAM
estimated) in the trace format of :mod:`lightning_energy.meters.trace`. It is not a measurement: real traces
come from ``benchmarks/gpu/visit.py`` on a GPU (see docs/validation.md).

    python benchmarks/gpu/make_synthetic_trace.py [--out PATH]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from lightning_energy.meters import Trace, TraceReading, write_trace

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "traces" / "synthetic_steady.json"
EPOCHS = 30
EPOCH_S = 20.0
GAP_S = 0.5  # between epoch end and the next epoch start
GPU_W = 300.0
CPU_W = 60.0
RAM_W = 12.0


def make_trace(seed: int = 0, epochs: int = EPOCHS) -> Trace:
    """The synthetic trace; ``epochs`` other than 30 for tests of short recordings."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    rng = random.Random(seed)
    joules = {"gpu0": 0.0, "cpu": 0.0, "ram": 0.0}
    readings: list[TraceReading] = []
    samples: list[tuple[float, float]] = []
    t_s = 100.0
    for epoch in range(epochs):
        readings.append(
            TraceReading(t_s=round(t_s, 3), joules=_rounded(joules), event="epoch_start", epoch=epoch)
        )
        for second in range(int(EPOCH_S)):
            gpu_w = GPU_W * (1.0 + rng.gauss(0.0, 0.02))
            samples.append((round(t_s, 3), round(gpu_w, 2)))
            joules["gpu0"] += gpu_w
            joules["cpu"] += CPU_W
            joules["ram"] += RAM_W
            t_s += 1.0
            if second % 5 == 4 and second < EPOCH_S - 1:  # live-bar reads inside the epoch
                readings.append(TraceReading(t_s=round(t_s, 3), joules=_rounded(joules)))
        readings.append(
            TraceReading(t_s=round(t_s, 3), joules=_rounded(joules), event="epoch_end", epoch=epoch)
        )
        for name, power_w in (("gpu0", 80.0), ("cpu", CPU_W), ("ram", RAM_W)):
            joules[name] += power_w * GAP_S
        t_s += GAP_S
    return Trace(
        meta={
            "synthetic": True,
            "workload": "synthetic_steady",
            "epochs": epochs,
            "epoch_s": EPOCH_S,
            "generator": "benchmarks/gpu/make_synthetic_trace.py",
            "seed": seed,
        },
        labels={"gpu0": "measured", "cpu": "estimated", "ram": "estimated"},
        hardware={
            "gpus": [
                {
                    "index": 0,
                    "name": "Synthetic GPU",
                    "uuid": "GPU-00000000-0000-0000-0000-000000000000",
                    "pci_bus_id": "00000000:00:00.0",
                    "power_limit_w": 400.0,
                    "memory_gb": 80.0,
                    "energy_counter": True,
                    "mig": False,
                }
            ],
            "driver": "synthetic",
        },
        readings=readings,
        power_samples=samples,
    )


def _rounded(joules: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 3) for name, value in joules.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = write_trace(make_trace(args.seed), args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
