"""tools/stop_diagnose.py --by-rule: how a run stopped, and a threshold run's noise against its gap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_energy.step.stop_rule import StopRule
from tools.stop_data import Curve
from tools.stop_diagnose import noise_to_gap, stopped_by


def _curve(values: list[float], rule: StopRule, bound: int = 100) -> Curve:
    return Curve("generated", "g", "g/00", np.array(values), rule, bound)


def test_stopped_by_names_the_criterion_or_the_bound() -> None:
    assert stopped_by(_curve([3.0, 2.0, 1.0], StopRule("min", stopping_threshold=1.5))) == "threshold"
    assert stopped_by(_curve([3.0, 2.0, 1.0], StopRule("min", patience=2))) == "patience"
    rule = StopRule("min", divergence_threshold=9.0, patience=5)
    assert stopped_by(_curve([3.0, 2.0, 10.0], rule)) == "divergence"
    bounded = StopRule("min", stopping_threshold=0.5, max_evaluations=3)
    assert stopped_by(_curve([3.0, 2.0, 1.0], bounded)) == "bound"


def test_noise_to_gap_is_the_robust_noise_over_the_distance_to_the_threshold() -> None:
    values = [2.0, 1.9, 2.0, 1.9, 2.0, 1.9, 2.0, 1.9]  # alternating: a clear noise
    rule = StopRule("min", stopping_threshold=1.0)
    curve = _curve([*values, 0.5], rule)
    ratio = noise_to_gap(curve, 8)
    assert ratio > 0.0
    # the same noise twice as far from the threshold: half the ratio
    far = _curve([*values, 0.5], StopRule("min", stopping_threshold=1.9 - 2 * 0.9))
    assert noise_to_gap(far, 8) == pytest.approx(ratio / 2.0)
    assert math.isnan(noise_to_gap(curve, 3))  # too few evaluations
    assert math.isnan(noise_to_gap(_curve(values, StopRule("min", patience=3)), 8))  # no threshold
