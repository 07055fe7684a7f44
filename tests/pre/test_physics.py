"""lightning_energy.pre.physics: the power curve stays finite and silent at extreme utilisation logits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lightning_energy.pre import physics


def _parts(busy_share: float) -> physics.TimeParts:
    one = np.array([1.0])
    return physics.TimeParts(
        compute_s=one * busy_share,
        overhead_s=one * 0.0,
        host_s=one * (1.0 - busy_share),
        epoch_s=one,
        steps=one * 10.0,
        flop_s=one * busy_share,
        bytes_s=one * 0.0,
    )


def test_logistic_saturates_without_an_overflow_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = physics.logistic(np.array([-1e4, -800.0, 0.0, 800.0, 1e4]))
    assert values.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_an_extreme_utilisation_logit_gives_the_idle_or_the_full_power_silently() -> None:
    tdp_w = np.array([300.0])
    idle_w = float(physics.idle_power_w(np.array([-1.0, 0.0, 0.0, 0.0]), tdp_w)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low = physics.power_from_parts(np.array([-1.0, -1e4, 0.0, 0.0]), _parts(0.5), tdp_w)
        high = physics.power_from_parts(np.array([-1.0, 1e4, 0.0, 0.0]), _parts(0.5), tdp_w)
    assert low[0] == pytest.approx(idle_w, rel=1e-12)
    assert high[0] == 300.0
