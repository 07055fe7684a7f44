"""The stop forecast's units: the curve and the rule's values measured in a power of two (pure numpy).

:func:`rescaled` measures the curve from its first value, in units of the power of two that brings its
largest distance from it near 1 (:func:`binary_unit`), and the rule's thresholds, ``min_delta`` and best
value with it: :func:`~lightning_energy.step.stop.forecast` fits and simulates in these units, so that the
fit's arithmetic does not depend on where the metric lies (``1e-200``, ``1e200``, ``1e6 + loss``).
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from lightning_energy.step.stop_rule import RuleState, StopRule


def binary_unit(z: np.ndarray) -> int:
    """The power of two ``e`` that puts the largest magnitude of ``z`` in ``[0.5, 1)`` when ``z`` is divided
    by ``2 ** e`` (0 for an empty or all-zero ``z``)."""
    top = float(np.max(np.abs(z))) if z.size else 0.0
    return math.frexp(top)[1] if top > 0.0 else 0


def rescaled(rule: StopRule, state: RuleState, z: np.ndarray) -> tuple[StopRule, RuleState, np.ndarray]:
    """The rule, its state and the curve measured from the curve's first value, in units of the power of
    two that brings the curve's largest distance from it near 1
    (:func:`~lightning_energy.step.stop.forecast` fits and simulates in them).

    The forecast is unchanged by construction (up to the rounding of the subtraction, which is exact for
    values within a factor of two of the first) while the fit's arithmetic no longer depends on where
    the metric lies: a metric of ``1e-200`` or ``1e200`` (whose squares underflow or overflow), one far
    from 0 (``1e6 + loss``: the fit's rounding errors are those of the curve's changes, not of its level),
    and a constant metric, which becomes exactly zero at every level: every family fits it without
    noise and the futures do not move."""
    if z.size == 0:
        return rule, state, z
    # a power of two first (exact: no value overflows when the first is subtracted), then that of the
    # distances from the first value
    top = binary_unit(z)
    first = math.ldexp(float(z[0]), -top)
    unit = binary_unit(np.ldexp(z, -top) - first)

    def scale(v: float) -> float:
        return math.ldexp(math.ldexp(v, -top) - first, -unit)

    def threshold(v: float | None) -> float | None:  # beyond the floats in these units: unreachable
        if v is None:
            return None
        try:
            return rule.sign * scale(rule.sign * v)
        except OverflowError:
            return None

    try:
        min_delta = math.ldexp(rule.min_delta, -top - unit)
    except OverflowError:  # no change of the curve can be an improvement
        min_delta = sys.float_info.max
    scaled = dataclasses.replace(
        rule,
        stopping_threshold=threshold(rule.stopping_threshold),
        min_delta=min_delta,
        divergence_threshold=threshold(rule.divergence_threshold),
    )
    curve = np.ldexp(np.ldexp(z, -top) - first, -unit)
    return scaled, dataclasses.replace(state, best=scale(state.best)), curve
