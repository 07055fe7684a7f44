"""The stop forecast's simulation: futures of the fitted curve run through the stopping rule (pure numpy).

:func:`raw_stop_samples` fits the learning-curve families to the run
(:func:`~lightning_energy.step.stop_fit.fitted`), draws futures of the curve with noise
(:mod:`lightning_energy.step.curves`; :mod:`lightning_energy.step.stop_noise`) and runs the stopping rule
on each (:func:`~lightning_energy.step.stop_rule.simulate_chunk`), a chunk of evaluations at a time, up to
the :func:`horizon`. The stops it returns are the curve model's own, before the length prior, the
correction and the calibration (:mod:`lightning_energy.step.stop_calibration`).
"""

from __future__ import annotations

import numpy as np

from lightning_energy.step.curves import CurveFit, draw_curves, future_values
from lightning_energy.step.stop_fit import fitted
from lightning_energy.step.stop_noise import (
    memory_values,
    noise_scale,
    resolution,
    start_memory,
    with_series_noise,
)
from lightning_energy.step.stop_params import StopParams
from lightning_energy.step.stop_rule import Paths, RuleState, StopRule, simulate_chunk

CHUNK = 32  # evaluations simulated at once; doubled until every future stopped or the horizon


def horizon(rule: StopRule, seen: int, params: StopParams) -> int:
    """Evaluations simulated beyond ``seen``: up to ``max_evaluations``, else up to ``horizon_factor x seen``
    evaluations in all (at least ``min_horizon`` more), at most ``max_horizon`` in all unless that leaves
    fewer than ``seen`` more or fewer than ``min_horizon`` more than the rule's patience.

    ``max_horizon`` bounds the cost of simulating far ahead of a short run; a long run (thousands of
    evaluations) is still simulated as far ahead again as it has run (the cost stays of the order of its
    fit's) and far enough for its patience to run out, so that its forecast does not shrink to "cannot
    tell" as it nears ``max_horizon``."""
    if rule.max_evaluations is not None:
        return max(rule.max_evaluations - seen, 0)
    total = max(int(params.horizon_factor * seen), seen + params.min_horizon)
    cap = max(params.max_horizon, 2 * seen, seen + params.min_horizon + (rule.patience or 0))
    return min(total, cap) - seen


def raw_stop_samples(
    rule: StopRule, state: RuleState, z: np.ndarray, params: StopParams, seed: int
) -> tuple[np.ndarray, list[CurveFit]] | None:
    """Simulated stop evaluations (``inf``: beyond the horizon) and the fits; ``None`` with too few points."""
    seen = state.evaluations
    if z.size < params.min_evaluations:
        return None
    noise = max(params.noise_floor * noise_scale(z), resolution(z))
    fits = fitted(z, params, noise)
    if not fits:
        return None
    if params.series_noise:
        fits = with_series_noise(fits, z)
    rng = np.random.default_rng([seed, seen])
    curves = draw_curves(fits, z.size, params.draws, rng)
    memory = start_memory(curves, z) if params.noise_memory else None
    paths = Paths.start(state, params.draws)
    steps = horizon(rule, seen, params)
    chunk = CHUNK
    while paths.evaluations < seen + steps and paths.running.any():
        size = min(chunk, seen + steps - paths.evaluations)
        if memory is None:
            block = future_values(curves, paths.evaluations, size, rng)
        else:
            block = memory_values(curves, memory, paths.evaluations, size, rng)
        simulate_chunk(rule, paths, block)
        chunk *= 2
    return paths.stop_at, fits
