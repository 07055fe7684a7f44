"""Generated learning curves of shapes that do not saturate from the start, for the stop forecaster.

The ten kinds of :mod:`tools.stop_data` mostly saturate from their first evaluation. Real curves also
jump and then creep (BERT's masked-LM accuracy), rise late (a sigmoid), warm up (the loss rises before it
falls), stop in steps (a step learning-rate schedule) or drop late. These six kinds form their own source
(``"shapes"``), split by kind on its own like the others (:func:`tools.stop_data.parts`): half of them tune,
half report, so that the families which model such shapes are chosen, or not, on shapes the reporting part
does not hold. ``shaped(kind, seed)`` is deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from lightning_energy.step.stop_rule import StopRule
from tools.stop_data import SEEDS_PER_KIND, Curve, run_setup, stopped

SHAPE_KINDS = (
    "jump_creep",
    "delayed_rise",
    "warmup_loss",
    "staircase_accuracy",
    "slow_sigmoid_loss",
    "two_phase_loss",
)


def _step(n: np.ndarray, mid: float, width: float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * (n - mid) / width))


def shaped(kind: str, seed: int) -> Curve:
    """A generated run of ``kind`` (one of :data:`SHAPE_KINDS`; deterministic)."""
    rng, bound, n, patience = run_setup(f"shapes/{kind}/{seed}")
    u = rng.uniform
    noise = u(0.001, 0.006)
    if kind == "jump_creep":  # accuracy: a plateau, a jump, then a slow power-law creep to the target
        base, top, at, width = u(0.2, 0.4), u(0.7, 0.9), u(2, 0.15 * bound), u(0.3, 1.5)
        creep, p = u(0.03, 0.1), u(0.3, 0.8)
        clean = base + (top - base - creep * np.maximum(n - at, 1.0) ** -p) * _step(n, at, width)
        reach = u(at + 4, 0.7 * bound)
        rule = StopRule("max", stopping_threshold=top - creep * (reach - at) ** -p, max_evaluations=bound)
    elif kind == "delayed_rise":  # accuracy: a late sigmoid rise, stopped by patience
        top, mid, width = u(0.6, 0.9), u(5, 0.4 * bound), u(2, 10)
        clean = 0.1 + (top - 0.1) * _step(n, mid, width)
        rule = StopRule("max", patience=patience + 5, min_delta=u(0.2, 1.0) * noise, max_evaluations=bound)
    elif kind == "warmup_loss":  # loss: rises during the warm-up, then a power-law fall to a threshold
        a, b, c, hump, tau = u(0.5, 2.0), u(1.0, 3.0), u(0.3, 1.2), u(0.3, 1.0), u(2, 6)
        clean = a + b * n**-c + hump * a * (n / tau) * np.exp(1.0 - n / tau)
        noise *= a
        reach = u(3 * tau + 4, 0.7 * bound)
        rule = StopRule("min", stopping_threshold=a + b * reach**-c, max_evaluations=bound)
    elif kind == "staircase_accuracy":  # accuracy: plateaus lifted by learning-rate steps, then patience
        top, drop, tau = u(0.5, 0.8), u(0.2, 0.4), u(2, 8)
        clean = top - drop * np.exp(-n / tau)
        for at in sorted(rng.integers(8, max(bound // 2, 9), size=2)):
            clean = clean + u(0.03, 0.08) * _step(n, float(at), u(0.5, 2.0))
        rule = StopRule("max", patience=patience + 3, min_delta=u(0.2, 1.0) * noise, max_evaluations=bound)
    elif kind == "slow_sigmoid_loss":  # loss: a broad sigmoid fall to a threshold
        a, gap, mid, width = u(0.5, 1.5), u(0.5, 2.0), u(5, 0.4 * bound), u(3, 12)
        clean = a + gap * (1.0 - _step(n, mid, width))
        noise *= a
        rule = StopRule("min", stopping_threshold=a + gap * u(0.02, 0.2), max_evaluations=bound)
    elif kind == "two_phase_loss":  # loss: a power law, then a second fall (learning-rate decay), patience
        a, b, c = u(0.5, 2.0), u(1.0, 3.0), u(0.3, 1.0)
        at, width, gap = u(10, 0.6 * bound), u(1, 4), u(0.05, 0.2)
        clean = a + b * n**-c - gap * a * _step(n, at, width)
        noise *= a
        rule = StopRule("min", patience=patience, min_delta=u(0, 0.5) * noise, max_evaluations=bound)
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    values = clean + noise * rng.standard_normal(bound)
    if not math.isfinite(float(values.sum())):
        raise ArithmeticError(f"{kind}/{seed}: non-finite generated curve")
    return Curve("shapes", kind, f"{kind}/{seed:02d}", stopped(values, rule), rule, bound)


def shaped_curves() -> list[Curve]:
    """Every run of every shape kind (all kinds x seeds)."""
    return [shaped(kind, seed) for kind in SHAPE_KINDS for seed in range(SEEDS_PER_KIND)]
