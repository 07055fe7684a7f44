"""Per-machine host effect: how much slower (or faster) one machine's host side runs than the fitted one.

No descriptor carries the host (CPU, framework, data pipeline), so the per-step overhead and the host cost
per sample (``theta[1:3]``, ``physics.time_parts``) are one pooled value for every machine. Runs already
seen on a machine say how its host compares: a shared log factor ``u`` on both host parts, estimated from
those runs' epoch times and shrunk towards 0 (the pooled value) by a ridge penalty::

    u = argmin  sum_runs (log t_predicted(u) - log t_measured)**2  +  ridge * u**2

A GPU-bound run hardly moves with ``u`` (its host parts are hidden behind the kernels), so it barely
informs it; a step-bound run moves by up to ``u``. The ridge (in units of "runs whose time moves fully
with ``u``") is chosen by nested selection in ``tools/pre_machine.py``; an unseen machine gets ``u = 0``.
``lightning_energy.pre.model.PreEstimator.calibrated_on`` estimates it from a user's run history.
"""

from __future__ import annotations

import math

import numpy as np

from lightning_energy.errors import EstimationError
from lightning_energy.pre import physics

#: The effect is kept within a factor 10 either way (a host 10x slower than the fitted one is not a
#: host-speed difference but a broken pipeline, which no shrinkage should chase).
MAX_LOG_FACTOR = math.log(10.0)
_STEP = 1e-4


def host_effect(theta: np.ndarray, f: physics.Features, log_t: np.ndarray, ridge: float) -> float:
    """The shrunk log host factor ``u`` of one machine from its runs (features ``f``, measured log epoch
    times ``log_t``); 0 when ``ridge`` is infinite or there are no runs. Gauss-Newton on the penalised
    least squares of the module docstring (the epoch time is smooth and monotone in ``u``)."""
    if not ridge >= 0:
        raise EstimationError(f"ridge must be >= 0 or inf, got {ridge!r}")
    log_t = np.asarray(log_t, dtype=float)
    if len(log_t) != len(f.batch_size):
        raise EstimationError(f"log_t must have one entry per run ({len(f.batch_size)}), got {len(log_t)}")
    if math.isinf(ridge) or not len(log_t):
        return 0.0
    u = 0.0
    for _ in range(8):
        base = np.log(physics.time_parts(theta, f, u).epoch_s)
        slope = (np.log(physics.time_parts(theta, f, u + _STEP).epoch_s) - base) / _STEP
        gradient = float(slope @ (base - log_t)) + ridge * u
        curvature = float(slope @ slope) + ridge
        if curvature <= 0:
            return 0.0
        step = gradient / curvature
        u = float(np.clip(u - step, -MAX_LOG_FACTOR, MAX_LOG_FACTOR))
        if abs(step) < 1e-6:
            break
    return u
