"""Synthetic training runs for the STEP benchmark: many realistic kinds, several seeds each.

Every run is a series of per-unit (epoch) energies in J. ``make(kind, seed)`` is deterministic. The kinds
cover what real runs do to the per-epoch energy: warm-up tails, schedules, resizing, caches, unfreezing,
throttling and thermal drift, autocorrelated cloud noise, stalls, validation and checkpoint epochs, very
short and very long runs, late step changes and a budget that ends mid-epoch.

The split into a tuning and a reporting part is fixed: within every kind the seeds are ordered by the
SHA-256 of ``"kind/seed"`` and the first half goes to reporting (:func:`split`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from lightning_energy.step.hints import KnownChange

SEEDS_PER_KIND = 12


@dataclass(frozen=True)
class Scenario:
    """One synthetic run."""

    kind: str
    seed: int
    energy_j: np.ndarray  # energy of each unit (the last may be partial)
    work: np.ndarray  # share of a full unit each entry covers (1, or < 1 for a partial last unit)
    val_every_told: int | None  # the validation period given to the projector (None: not told)
    changes: tuple[KnownChange, ...] = ()  # regime changes the Trainer would announce (told to the projector)

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.seed:02d}"

    @property
    def total_j(self) -> float:
        return float(self.energy_j.sum())

    @property
    def total_units(self) -> float:
        return float(self.work.sum())


def _noise(rng: np.random.Generator, n: int, rel_sd: float, rho: float = 0.0) -> np.ndarray:
    """AR(1) noise with marginal relative sd ``rel_sd`` (independent when ``rho`` is 0)."""
    e = rng.standard_normal(n)
    if rho > 0:
        out = np.empty(n)
        out[0] = e[0]
        scale = np.sqrt(1.0 - rho**2)
        for t in range(1, n):
            out[t] = rho * out[t - 1] + scale * e[t]
        e = out
    return rel_sd * e


def _base(rng: np.random.Generator, n: int) -> np.ndarray:
    level = 10 ** rng.uniform(1.5, 4.5)
    rho = rng.uniform(0.0, 0.4) if rng.random() < 0.4 else 0.0
    return level * (1.0 + _noise(rng, n, rng.uniform(0.002, 0.012), rho))


def _ramp(n: int, at: int, width: int) -> np.ndarray:
    """0 before ``at``, rising linearly to 1 over ``width`` units."""
    e = np.arange(n)
    return np.clip((e - at + 1) / max(width, 1), 0.0, 1.0)


def _mild_warmup(rng: np.random.Generator, n: int) -> np.ndarray:
    """The first epoch is usually a little more expensive (compilation, autotuning)."""
    factor = np.ones(n)
    factor[0] += rng.uniform(0.0, 0.5)
    return factor


def make(kind: str, seed: int) -> Scenario:
    """The run ``seed`` of scenario ``kind`` (one of :data:`KINDS`)."""
    digest = hashlib.sha256(f"{kind}/{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    n = int(rng.integers(30, 151))
    if kind == "short":
        n = int(rng.integers(3, 9))
    elif kind == "long":
        n = int(rng.integers(300, 501))
    e = np.arange(n)
    x = _base(rng, n) * _mild_warmup(rng, n)
    told: int | None = None
    changes: list[KnownChange] = []
    work = np.ones(n)
    if kind == "steady":
        pass
    elif kind == "warmup_heavy":
        x *= 1.0 + rng.uniform(0.5, 2.5) * np.exp(-e / rng.uniform(0.5, 2.0))
    elif kind == "warmup_tail":
        x *= 1.0 + rng.uniform(0.03, 0.12) * np.exp(-e / rng.uniform(3.0, 12.0))
    elif kind == "lr_schedule":
        amp = rng.uniform(0.01, 0.04) * rng.choice([-1.0, 1.0])
        if rng.random() < 0.5:  # cosine schedule: a slow swing of the per-epoch cost
            x *= 1.0 + amp * (0.5 * (1.0 + np.cos(np.pi * e / n)) - 0.5)
        else:  # step decays at 1/3 and 2/3 of the run (a MultiStepLR: announced)
            x *= 1.0 + amp * ((e >= n // 3).astype(float) + (e >= 2 * n // 3))
            changes += [KnownChange(n // 3, "lr_step"), KnownChange(2 * n // 3, "lr_step")]
    elif kind == "progressive_resizing":
        stages = int(rng.integers(2, 4))
        for s in range(1, stages):  # each stage reloads the dataloaders at a larger size: announced
            x[int(s * n / stages) :] *= rng.uniform(1.3, 2.0)
            changes.append(KnownChange(int(s * n / stages), "reload_dataloaders"))
    elif kind == "cache_warmup":
        c = int(rng.integers(1, 4))
        x[:c] *= rng.uniform(1.3, 3.0)
    elif kind == "unfreezing":
        k = int(rng.integers(5, 31))
        frozen = rng.uniform(0.5, 0.85)
        x *= frozen + (1.0 - frozen) * _ramp(n, k, int(rng.integers(1, 3)))
        changes.append(KnownChange(k, "unfreeze"))  # BackboneFinetuning(unfreeze_backbone_at_epoch=k)
    elif kind == "throttling":
        at = int(rng.uniform(0.2, 0.8) * n)
        x *= 1.0 - rng.uniform(0.1, 0.3) * _ramp(n, at, int(rng.integers(1, 6)))
    elif kind == "thermal_drift":
        x *= 1.0 + rng.uniform(-0.08, 0.08) * (1.0 - np.exp(-e / rng.uniform(10.0, 60.0)))
    elif kind == "cloud_ar1":
        x *= 1.0 + _noise(rng, n, rng.uniform(0.01, 0.04), rng.uniform(0.5, 0.9))
    elif kind == "stalls_spikes":
        hits = rng.random(n) < rng.uniform(0.01, 0.04)
        hits[0] = False
        x[hits] *= rng.uniform(1.5, 5.0, size=int(hits.sum()))
    elif kind in ("validation_told", "validation_untold"):
        every = int(rng.integers(2, 6))
        x[(e + 1) % every == 0] *= rng.uniform(1.1, 1.6)
        told = every if kind == "validation_told" else None
    elif kind == "checkpoint_untold":
        every = int(rng.choice([5, 10]))
        x[(e + 1) % every == 0] *= rng.uniform(1.2, 2.0)
    elif kind == "short":
        x *= 1.0 + rng.uniform(0.0, 1.0) * np.exp(-e / rng.uniform(0.5, 1.0))
    elif kind == "long":
        x *= 1.0 + _noise(rng, n, rng.uniform(0.002, 0.01), 0.3)
        hits = rng.random(n) < 0.005
        x[hits] *= rng.uniform(1.5, 3.0, size=int(hits.sum()))
    elif kind == "late_step":
        at = int(rng.uniform(0.6, 0.9) * n)
        x[at:] *= rng.choice([rng.uniform(0.7, 0.9), rng.uniform(1.1, 1.3)])
    elif kind == "partial_last":
        x *= 1.0 + rng.uniform(0.0, 0.5) * np.exp(-e / 1.5)
        work[-1] = 0.5
        x[-1] *= 0.5
    else:
        raise ValueError(f"unknown scenario kind {kind!r}; known: {', '.join(KINDS)}")
    return Scenario(kind, seed, np.maximum(x, 0.0), work, told, tuple(changes))


KINDS = (
    "steady",
    "warmup_heavy",
    "warmup_tail",
    "lr_schedule",
    "progressive_resizing",
    "cache_warmup",
    "unfreezing",
    "throttling",
    "thermal_drift",
    "cloud_ar1",
    "stalls_spikes",
    "validation_told",
    "validation_untold",
    "checkpoint_untold",
    "short",
    "long",
    "late_step",
    "partial_last",
)


def rank_key(name: str) -> str:
    """The fixed ordering of the split: SHA-256 of the name."""
    return hashlib.sha256(name.encode()).hexdigest()


def split(seeds: int = SEEDS_PER_KIND) -> tuple[list[Scenario], list[Scenario]]:
    """(tuning, reporting) runs: within each kind, the half of the seeds first by :func:`rank_key` reports."""
    tuning: list[Scenario] = []
    reporting: list[Scenario] = []
    for kind in KINDS:
        ordered = sorted(range(seeds), key=lambda s, k=kind: rank_key(f"{k}/{s}"))  # type: ignore[misc]
        half = len(ordered) // 2
        reporting += [make(kind, s) for s in sorted(ordered[:half])]
        tuning += [make(kind, s) for s in sorted(ordered[half:])]
    return tuning, reporting
