"""The per-machine host effect: estimated from a machine's runs, shrunk by the ridge, applied at run time."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import (
    DataDescriptor,
    LabelledRun,
    ModelDescriptor,
    PreEstimator,
    RunDescriptor,
    lookup_gpu,
    physics,
)
from lightning_energy.pre.machine import MAX_LOG_FACTOR, host_effect
from lightning_energy.pre.model import IntervalConstants

from .synthetic import TRUE_PHI, TRUE_THETA

SLOW = math.log(2.0)


def _descriptors(gpu: str = "RTX 3090") -> list[RunDescriptor]:
    """Step-bound (small models, small batches) and GPU-bound (ResNet-50 at batch 256) runs."""
    small = [
        RunDescriptor(
            ModelDescriptor(g * 1e8, (3, 128, 128)), DataDescriptor(b, 20_000, 2_000), lookup_gpu(gpu)
        )
        for g in (0.05, 0.1, 0.3)
        for b in (16, 32)
    ]
    busy = RunDescriptor(
        ModelDescriptor(8.18e9, (3, 224, 224)), DataDescriptor(256, 100_000), lookup_gpu(gpu)
    )
    return [*small, busy]


def _runs(descriptors: list[RunDescriptor], shift: float) -> list[LabelledRun]:
    """Runs on a machine whose host parts are exp(shift) times the model's."""
    f = physics.Features.from_descriptors(descriptors)
    parts = physics.time_parts(TRUE_THETA, f, shift)
    power = physics.power_from_parts(TRUE_PHI, parts, f.tdp_w)
    return [
        LabelledRun(d, float(t * p), float(p), gpu_name=d.gpu.name, architecture=f"m{i}")
        for i, (d, t, p) in enumerate(zip(descriptors, parts.epoch_s, power, strict=True))
    ]


def test_shift_scales_only_the_host_parts() -> None:
    f = physics.Features.from_descriptors(_descriptors())
    base, slow = physics.time_parts(TRUE_THETA, f), physics.time_parts(TRUE_THETA, f, SLOW)
    np.testing.assert_allclose(slow.compute_s, base.compute_s)
    np.testing.assert_allclose(slow.host_s, 2.0 * base.host_s)
    np.testing.assert_allclose(slow.overhead_s, 2.0 * base.overhead_s)  # no launches counted here
    moved = np.log(slow.epoch_s / base.epoch_s)
    assert moved[:-1].min() > 0.2 and moved[-1] < 0.05  # step-bound runs move, the GPU-bound one hardly


def test_host_effect_recovers_a_slow_host_and_shrinks_with_the_ridge() -> None:
    descriptors = _descriptors()
    f = physics.Features.from_descriptors(descriptors)
    log_t = np.log([r.epoch_seconds for r in _runs(descriptors, SLOW)])
    assert host_effect(TRUE_THETA, f, log_t, 0.0) == pytest.approx(SLOW, abs=1e-4)
    effects = [host_effect(TRUE_THETA, f, log_t, ridge) for ridge in (0.0, 1.0, 10.0, 100.0, math.inf)]
    assert all(a > b for a, b in itertools.pairwise(effects)) and effects[-1] == 0.0
    fast = np.log([r.epoch_seconds for r in _runs(descriptors, -SLOW)])
    assert host_effect(TRUE_THETA, f, fast, 0.0) == pytest.approx(-SLOW, abs=1e-4)
    # a GPU-bound run alone hardly informs it; a broken pipeline is capped
    only_busy = physics.Features.from_descriptors(descriptors[-1:])
    assert abs(host_effect(TRUE_THETA, only_busy, log_t[-1:], 1.0)) < 0.1
    assert host_effect(TRUE_THETA, f, log_t + 10.0, 0.0) == pytest.approx(MAX_LOG_FACTOR)
    with pytest.raises(EstimationError, match="ridge"):
        host_effect(TRUE_THETA, f, log_t, -1.0)
    with pytest.raises(EstimationError, match="log_t"):
        host_effect(TRUE_THETA, f, log_t[:2], 1.0)


def test_history_applies_the_machine_effect_only_with_a_selected_ridge() -> None:
    """With ``machine_host_ridge`` in the coefficients, a history on a slow host makes a new step-bound model
    on that machine slower (a GPU-bound one barely), before the flat per-GPU offset; without it, as before."""
    seen = _runs(_descriptors(), SLOW)
    new_small = RunDescriptor(
        ModelDescriptor(2e8, (3, 96, 96)), DataDescriptor(24, 30_000), lookup_gpu("RTX 3090")
    )
    other_machine = dataclasses.replace(new_small, gpu=lookup_gpu("RTX 3070"))
    plain = PreEstimator(TRUE_THETA, TRUE_PHI, IntervalConstants(0.3, 0.03), fitted_runs=1)
    ridged = dataclasses.replace(plain, selected={"machine_host_ridge": 0.1})
    assert plain.machine_host_ridge is None and ridged.machine_host_ridge == 0.1
    base_small, base_other = plain.predict_many([new_small, other_machine])
    assert plain.machine_effects_on(seen).predict(new_small) == base_small  # no ridge: nothing moves
    effect = ridged.machine_effects_on(seen)
    correction = effect.corrections["RTX 3090"]
    assert 0.5 * SLOW < correction.log_host_factor <= SLOW and correction.log_time == 0.0
    moved_small, moved_other = effect.predict_many([new_small, other_machine])
    assert moved_small.epoch_seconds > 1.1 * base_small.epoch_seconds
    assert moved_small.rel_sigma == base_small.rel_sigma  # no narrower interval from the effect alone
    assert moved_other == base_other  # a machine never seen keeps the pooled host parts
    calibrated = ridged.calibrated_on(seen)
    assert calibrated.corrections["RTX 3090"].log_host_factor == correction.log_host_factor
    # the history runs are explained by the effect, so the flat offset left is small
    flat = plain.calibrated_on(seen).corrections["RTX 3090"].log_time
    assert flat > 0.1 and abs(calibrated.corrections["RTX 3090"].log_time) < 0.5 * flat
    # old coefficient files (no ridge) load and predict as before
    assert PreEstimator.from_dict(plain.to_dict()).machine_host_ridge is None
    assert PreEstimator.from_dict(ridged.to_dict()).machine_host_ridge == 0.1


def test_known_machine_host_factor_narrows_a_new_model_on_that_machine_only() -> None:
    """With ``known_host_log_factor``, a new model on a machine whose host effect the history measured gets
    the narrower host term; a machine never seen keeps the unseen H; the offsets do not depend on it."""
    from lightning_energy.pre.model import Z_90, host_log_term

    seen = _runs(_descriptors(), SLOW)
    new_small = RunDescriptor(
        ModelDescriptor(2e8, (3, 96, 96)), DataDescriptor(24, 30_000), lookup_gpu("RTX 3090")
    )
    other_machine = dataclasses.replace(new_small, gpu=lookup_gpu("RTX 3070"))
    unseen_h = IntervalConstants(0.3, 0.03, host_log_factor=math.log(3.0))
    plain = PreEstimator(TRUE_THETA, TRUE_PHI, unseen_h, fitted_runs=1, selected={"machine_host_ridge": 0.1})
    known = dataclasses.replace(
        plain, interval=dataclasses.replace(unseen_h, known_host_log_factor=math.log(1.5))
    )
    wide = plain.calibrated_on(seen)
    narrow = known.calibrated_on(seen)
    assert narrow.corrections["RTX 3090"].host_measured and wide.corrections["RTX 3090"].host_measured
    assert narrow.corrections == wide.corrections  # offsets and spreads: the same with either factor
    w_small, w_other = wide.predict_many([new_small, other_machine])
    n_small, n_other = narrow.predict_many([new_small, other_machine])
    assert n_other == w_other  # never seen: the unseen machine's H
    assert n_small.epoch_energy_j == w_small.epoch_energy_j and n_small.log_sigma < w_small.log_sigma
    shift = narrow.corrections["RTX 3090"].log_host_factor
    f = physics.Features.from_descriptors([new_small])
    q_host = host_log_term(TRUE_THETA, f, math.log(1.5))[0]
    no_host = dataclasses.replace(plain, interval=IntervalConstants(0.3, 0.03)).predict(new_small)
    assert (n_small.log_sigma * Z_90) ** 2 == pytest.approx((no_host.log_sigma * Z_90) ** 2 + q_host**2)
    assert shift != 0.0
    # without a selected ridge no host effect is measured: the unseen H stays
    bare = dataclasses.replace(known, selected={}).calibrated_on(seen)
    assert not bare.corrections["RTX 3090"].host_measured
    assert bare.predict(new_small).log_sigma == plain.calibrated_on([]).predict(new_small).log_sigma
    # a wider "known" factor never widens the interval
    wider = dataclasses.replace(
        plain, interval=dataclasses.replace(unseen_h, known_host_log_factor=math.log(5.0))
    ).calibrated_on(seen)
    assert wider.predict(new_small).log_sigma == w_small.log_sigma
    data = known.to_dict()
    assert PreEstimator.from_dict(data).interval.known_host_log_factor == pytest.approx(math.log(1.5))
    assert "known_host_log_factor" not in plain.to_dict()["interval"]  # type: ignore[operator]
