from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import (
    DataDescriptor,
    Estimate,
    LabelledRun,
    ModelDescriptor,
    PreEstimator,
    RunDescriptor,
    RunHistory,
    gpu_names,
    lookup_gpu,
    physics,
    roofline,
)
from lightning_energy.pre.model import Z_90, IntervalConstants
from lightning_energy.pre.roofline import workload_descriptor
from lightning_energy.pre.throughput import measured_samples_per_s

from .synthetic import TRUE_PHI, TRUE_THETA, synthetic_descriptors

RESNET50 = ModelDescriptor(8.18e9, (3, 224, 224))
BERT_BASE = ModelDescriptor(7.07e10, (384,), matmul_tf32=True)  # as Lambda ran it (NGC: TF32 on)
IMAGENET = DataDescriptor(256, 1_281_167, 50_000)
SQUAD = DataDescriptor(32, 88_000)


def _true_model() -> PreEstimator:
    return PreEstimator(TRUE_THETA, TRUE_PHI, IntervalConstants(0.3, 0.03), fitted_runs=1)


def test_estimate_interval_and_totals() -> None:
    est = Estimate(epoch_energy_j=1000.0, power_w=100.0, epoch_seconds=10.0, log_sigma=0.1, gpu_name="T4")
    assert est.low_j < 1000.0 < est.high_j
    assert est.rel_sigma == pytest.approx(math.sqrt(math.expm1(0.01)))
    assert est.total_j(5) == 5000.0 and est.total_j(2.5) == 2500.0
    assert est.total_interval_j(5) == pytest.approx((5 * est.low_j, 5 * est.high_j))
    for bad in (-1, float("nan"), True, "3"):
        with pytest.raises(EstimationError, match="epochs"):
            est.total_j(bad)  # type: ignore[arg-type]


def test_round_trip_json_is_atomic_and_small(tmp_path: Path) -> None:
    model = PreEstimator.default()
    path = tmp_path / "c.json"
    model.save(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "c.json"]  # no temporary file left behind
    loaded = PreEstimator.load(path)
    d = synthetic_descriptors()[5]
    assert loaded.predict(d) == model.predict(d)
    text = path.read_text()
    assert len(text) < 2000  # parameters and constants, not a per-configuration table
    with pytest.raises(EstimationError, match="format"):
        PreEstimator.from_dict({**json.loads(text), "format": 2})
    with pytest.raises(EstimationError, match="interval"):
        PreEstimator.from_dict({k: v for k, v in json.loads(text).items() if k != "interval"})
    with pytest.raises(EstimationError, match="cannot read"):
        PreEstimator.load(tmp_path / "missing.json")
    with pytest.raises(EstimationError, match="descriptor"):
        model.predict("x")  # type: ignore[arg-type]


def test_power_between_idle_and_tdp_and_energy_is_time_times_power() -> None:
    model = PreEstimator.default()
    for name in gpu_names():
        for m, data in ((RESNET50, IMAGENET), (BERT_BASE, SQUAD)):
            est = model.predict(RunDescriptor(m, data, lookup_gpu(name)))
            tdp = lookup_gpu(name).tdp_w
            assert 0.1 * tdp < est.power_w <= tdp, name
            assert est.epoch_energy_j == pytest.approx(est.epoch_seconds * est.power_w)


def _ranking(model: ModelDescriptor, data: DataDescriptor, names: list[str]) -> list[str]:
    ests = PreEstimator.default().predict_many([RunDescriptor(model, data, lookup_gpu(n)) for n in names])
    return [e.gpu_name for e in sorted(ests, key=lambda e: e.epoch_energy_j)]


@pytest.mark.parametrize("model,data", [(RESNET50, IMAGENET), (BERT_BASE, SQUAD)])
def test_a100_and_h100_rank_sensibly_at_fp16(model: ModelDescriptor, data: DataDescriptor) -> None:
    """Among the GPUs people rent, A100/H100 are faster than every older part and cheaper in energy than
    the Turing/Volta/Pascal generation at FP16 (Lambda: ~2-3x the throughput per watt)."""
    fp16 = dataclasses.replace(model, precision="16-mixed")
    names = ["A100 80GB SXM4", "H100 SXM", "V100 SXM2", "Quadro RTX 6000", "Titan RTX", "RTX 2080 Ti"]
    ests = {
        e.gpu_name: e
        for e in PreEstimator.default().predict_many(
            [RunDescriptor(fp16, data, lookup_gpu(n)) for n in names]
        )
    }
    for new in ("A100 80GB SXM4", "H100 SXM"):
        for old in ("V100 SXM2", "Quadro RTX 6000", "Titan RTX", "RTX 2080 Ti"):
            assert ests[new].epoch_seconds < ests[old].epoch_seconds
            assert ests[new].epoch_energy_j < ests[old].epoch_energy_j, (new, old)
    assert ests["H100 SXM"].epoch_seconds < ests["A100 80GB SXM4"].epoch_seconds
    assert _ranking(fp16, data, names)[-1] in ("Quadro RTX 6000", "Titan RTX", "RTX 2080 Ti")


def test_predicted_speed_ratios_follow_the_throughput_table() -> None:
    """For the reference workloads (their counted descriptors) at the reference step size, the model's speed
    ratio between two measured GPUs is the table's ratio within the roofline fit's in-sample error (0.25 in
    log), diluted by the GPU-independent host time."""
    model = PreEstimator.default()
    resnet, bert = workload_descriptor("resnet50"), workload_descriptor("bert_base_squad", matmul_tf32=True)
    for m, data, family in ((resnet, IMAGENET, "conv"), (bert, SQUAD, "matmul")):
        for precision in ("32-true", "16-mixed"):
            md = dataclasses.replace(m, precision=precision)
            a, b = (model.predict(RunDescriptor(md, data, lookup_gpu(n))) for n in ("H100 SXM", "RTX 3090"))
            ta, tb = (measured_samples_per_s(n, precision, family) for n in ("H100 SXM", "RTX 3090"))
            assert ta is not None and tb is not None
            predicted = math.log(b.epoch_seconds / a.epoch_seconds)
            table = math.log(ta / tb)
            assert 0.5 * table < predicted <= table + 0.25


def test_intervals_are_wider_where_less_is_known() -> None:
    model = PreEstimator.default()
    measured = model.predict(RunDescriptor(RESNET50, IMAGENET, lookup_gpu("A40")))
    sibling = model.predict(RunDescriptor(RESNET50, IMAGENET, lookup_gpu("P100 PCIe")))
    transformer = model.predict(RunDescriptor(BERT_BASE, SQUAD, lookup_gpu("A40")))
    unknown = dataclasses.replace(lookup_gpu("A40"), name="Mystery", from_table=False)
    mystery = model.predict(RunDescriptor(RESNET50, IMAGENET, unknown))
    assert measured.speed_source == "measured" and sibling.speed_source == "same-generation datasheet"
    assert measured.log_sigma < sibling.log_sigma
    assert measured.log_sigma < transformer.log_sigma  # the GAISSA runs are all CNNs
    assert mystery.speed_source == "power limit" and mystery.log_sigma > measured.log_sigma


def test_half_precision_is_faster_on_tensor_core_gpus() -> None:
    model = PreEstimator.default()
    for name in ("V100 SXM2", "A100 40GB PCIe", "H100 SXM"):
        fp32 = model.predict(RunDescriptor(RESNET50, IMAGENET, lookup_gpu(name)))
        fp16 = model.predict(
            RunDescriptor(dataclasses.replace(RESNET50, precision="16-mixed"), IMAGENET, lookup_gpu(name))
        )
        assert fp16.epoch_seconds < fp32.epoch_seconds and fp16.epoch_energy_j < fp32.epoch_energy_j


def test_frozen_backbone_costs_less() -> None:
    model = PreEstimator.default()
    frozen = dataclasses.replace(RESNET50, trainable_fraction=0.0)
    full = model.predict(RunDescriptor(RESNET50, IMAGENET, lookup_gpu("A10")))
    assert (
        model.predict(RunDescriptor(frozen, IMAGENET, lookup_gpu("A10"))).epoch_seconds < full.epoch_seconds
    )


def test_a_frozen_backbone_launches_no_backward_kernels() -> None:
    """Kernel launches per training step follow the trained share as the FLOPs do: 3 forward kernels' worth
    when everything trains, 1 (the forward pass) when nothing does; a validation step always 1."""
    launch_s = float(roofline.constants()["launch_s"])

    def launches_s(trainable: float, train: int, val: int) -> float:
        model = ModelDescriptor(1e9, (3, 32, 32), forward_kernels=200, trainable_fraction=trainable)
        f = physics.Features.from_descriptors(
            [RunDescriptor(model, DataDescriptor(10, train, val), lookup_gpu("A10"))]
        )
        no_step_overhead = np.array([np.log(3e10), np.log(1e-30), np.log(1e-4), 0.5, 2.0])
        return float(physics.time_parts(no_step_overhead, f).overhead_s[0])

    steps = 100  # 1000 samples at batch 10
    assert launches_s(1.0, 1000, 0) == pytest.approx(3 * steps * 200 * launch_s)
    assert launches_s(0.0, 1000, 0) == pytest.approx(1 * steps * 200 * launch_s)
    assert launches_s(0.25, 1000, 0) == pytest.approx(1.5 * steps * 200 * launch_s)
    for trainable in (0.0, 1.0):  # a validation step: the forward pass only, trained share or not
        validation = launches_s(trainable, 1000, 1000) - launches_s(trainable, 1000, 0)
        assert validation == pytest.approx(steps * 200 * launch_s)


def test_history_calibration_improves_second_run(tmp_path: Path) -> None:
    """A GPU that runs 1.6x slower and 10% hungrier than the model thinks: after one recorded run on it,
    the estimate of the next run is closer and its interval narrower; after five runs that agree, the
    estimate is within a few percent and the interval much narrower."""
    model = PreEstimator.default()
    descriptors = synthetic_descriptors(("L4",))
    second = descriptors[20]

    def measured(d: RunDescriptor) -> tuple[float, float, float]:
        e = model.predict(d)
        seconds, power = e.epoch_seconds * 1.6, e.power_w * 1.1
        return seconds * power, power, seconds

    def error(estimate: Estimate) -> float:
        return abs(math.log(estimate.epoch_energy_j / measured(second)[0]))

    history = RunHistory(tmp_path / "history.sqlite")
    before = model.calibrated(history).predict(second)
    calibrated = []
    for d in (*descriptors[3:7], second):
        energy, power, seconds = measured(d)
        history.append(d, epoch_energy_j=energy, power_w=power, epoch_seconds=seconds, epochs=3)
        calibrated.append(model.calibrated(history).predict(second))
    one, four, five = calibrated[0], calibrated[3], calibrated[4]
    assert error(one) < error(before)  # half-way after one run of another model
    assert one.log_sigma == before.log_sigma  # a model the history has not run keeps its interval
    assert error(four) < 0.25 * error(before) and four.log_sigma == before.log_sigma
    assert error(five) < 0.1 * error(before) and five.log_sigma < 0.5 * before.log_sigma  # ran it: narrow
    assert (before.calibration_runs, one.calibration_runs, five.calibration_runs) == (0, 1, 5)


def test_calibration_interval_keeps_the_spread_of_different_runs() -> None:
    """Runs on one GPU that disagree with each other (different models) keep the interval wide: the
    offset is their mean, the spread is theirs (the GAISSA runs differ by ~0.35 in log on one GPU).
    The prior interval is set wide (1.5 in log) so that the cap at the uncalibrated interval does not bind
    whatever the shipped constant is."""
    shipped = PreEstimator.default()
    model = dataclasses.replace(shipped, interval=dataclasses.replace(shipped.interval, model_log_q90=1.5))
    descriptors = synthetic_descriptors(("A10",))
    base = model.predict(descriptors[0])
    runs = []
    for i, d in enumerate(descriptors[:12]):
        e = model.predict(d)
        factor = math.exp(0.5 if i % 2 else -0.5)  # mean offset 0, spread 0.5 in log
        runs.append(LabelledRun(d, e.epoch_energy_j * factor, e.power_w, d.gpu.name))
    calibrated = model.calibrated_on(runs).predict(descriptors[0])  # a model the history ran
    assert calibrated.epoch_energy_j == pytest.approx(base.epoch_energy_j, rel=0.05)
    assert calibrated.log_sigma * Z_90 > 0.5 * 1.6449 * 0.9  # at least the runs' own 90 % spread
    assert calibrated.log_sigma <= base.log_sigma  # and never wider than without the history
    narrow = shipped.calibrated_on(runs).predict(descriptors[0])  # the shipped interval: not narrowed
    assert narrow.log_sigma * Z_90 >= min(
        shipped.predict(descriptors[0]).log_sigma * Z_90, 0.5 * 1.6449 * 0.9
    )
    with pytest.raises(EstimationError, match=r"runs\[0\] must be a LabelledRun"):
        model.calibrated_on(["x"])  # type: ignore[list-item]


def test_known_parameters_reproduce_known_physics() -> None:
    model = _true_model()
    d = synthetic_descriptors(("A40",))[10]
    counted = dataclasses.replace(
        d,
        model=dataclasses.replace(
            d.model,
            matmul_bytes_per_sample=1e6,
            elementwise_bytes_per_sample=2e6,
            embedding_bytes_per_sample=0.0,
            attention_bytes_per_sample=0.0,
        ),
    )
    est = model.predict(counted)
    assert est.epoch_seconds > 0 and np.isfinite(est.epoch_energy_j)
    assert est.log_sigma == pytest.approx(0.3 / 1.6449)  # measured GPU, CNN, counted traffic: q_model only
    inferred = model.predict(d)  # traffic inferred from the FLOPs: the rule's error widens the interval
    assert est.traffic_inferred is False and inferred.traffic_inferred is True
    assert inferred.log_sigma > est.log_sigma


def test_mondrian_constants_apply_by_regime_and_old_coefficients_still_load() -> None:
    shipped = PreEstimator.default()
    data = shipped.to_dict()
    interval = dict(data["interval"])  # type: ignore[call-overload]
    assert "gpu_bound_log_q90" not in interval  # off: not written
    old = PreEstimator.from_dict({**data, "interval": interval})
    assert old.interval.gpu_bound_log_q90 is None
    split = dataclasses.replace(
        shipped,
        interval=dataclasses.replace(shipped.interval, gpu_bound_log_q90=0.1, host_bound_log_q90=2.0),
    )
    busy = RunDescriptor(RESNET50, IMAGENET, lookup_gpu("A40"))
    tiny = RunDescriptor(ModelDescriptor(1e6, (3, 224, 224)), DataDescriptor(8, 10_000), lookup_gpu("A40"))
    a, b = split.predict_many([busy, tiny])
    assert (a.gpu_busy_share or 0) >= 0.8 > (b.gpu_busy_share or 1)
    assert a.log_sigma < b.log_sigma and b.log_sigma * Z_90 >= 2.0


def test_host_term_widens_step_bound_runs_and_round_trips() -> None:
    """An unseen machine's per-step and host cost off by H: a step-bound run moves by up to log H, a
    GPU-bound one hardly at all; the factor is written and read back, and old coefficients load without it."""
    from lightning_energy.pre import physics
    from lightning_energy.pre.model import host_log_term

    busy = RunDescriptor(RESNET50, IMAGENET, lookup_gpu("A40"))
    tiny = RunDescriptor(ModelDescriptor(1e6, (3, 224, 224)), DataDescriptor(8, 10_000), lookup_gpu("A40"))
    f = physics.Features.from_descriptors([busy, tiny])
    term = host_log_term(TRUE_THETA, f, math.log(2.0))
    assert 0 < term[0] < 0.02 and 10 * term[0] < term[1] <= math.log(2.0) + 1e-9
    assert host_log_term(TRUE_THETA, f, 0.0).tolist() == [0.0, 0.0]
    with pytest.raises(EstimationError, match="log_factor"):
        host_log_term(TRUE_THETA, f, -0.1)
    plain = _true_model()
    wide = dataclasses.replace(
        plain, interval=dataclasses.replace(plain.interval, host_log_factor=math.log(2.0))
    )
    a0, b0 = plain.predict_many([busy, tiny])
    a1, b1 = wide.predict_many([busy, tiny])
    assert (a1.log_sigma * Z_90) ** 2 == pytest.approx((a0.log_sigma * Z_90) ** 2 + term[0] ** 2)
    assert (b1.log_sigma * Z_90) ** 2 == pytest.approx((b0.log_sigma * Z_90) ** 2 + term[1] ** 2)
    assert b1.log_sigma - b0.log_sigma > a1.log_sigma - a0.log_sigma
    data = wide.to_dict()
    assert data["interval"]["host_log_factor"] == pytest.approx(math.log(2.0))  # type: ignore[index]
    assert PreEstimator.from_dict(data).interval == wide.interval
    assert "host_log_factor" not in plain.to_dict()["interval"]  # type: ignore[operator]
    assert PreEstimator.from_dict(plain.to_dict()).interval.host_log_factor is None


def test_regime_host_factor_applies_to_gpu_bound_runs_only_and_round_trips() -> None:
    """A Mondrian host factor: GPU-bound runs get their own H, the others ``host_log_factor``'s."""
    from lightning_energy.pre import physics
    from lightning_energy.pre.model import host_log_term

    busy = RunDescriptor(RESNET50, IMAGENET, lookup_gpu("A40"))
    tiny = RunDescriptor(ModelDescriptor(1e6, (3, 224, 224)), DataDescriptor(8, 10_000), lookup_gpu("A40"))
    plain = _true_model()
    split = dataclasses.replace(
        plain,
        interval=dataclasses.replace(
            plain.interval, host_log_factor=math.log(2.0), gpu_bound_host_log_factor=math.log(3.0)
        ),
    )
    f = physics.Features.from_descriptors([busy, tiny])
    a0, b0 = plain.predict_many([busy, tiny])
    a1, b1 = split.predict_many([busy, tiny])
    assert (a1.gpu_busy_share or 0) >= physics.GPU_BOUND_SHARE > (b1.gpu_busy_share or 1)
    gpu_term = host_log_term(TRUE_THETA, f, math.log(3.0))[0]
    other_term = host_log_term(TRUE_THETA, f, math.log(2.0))[1]
    assert (a1.log_sigma * Z_90) ** 2 == pytest.approx((a0.log_sigma * Z_90) ** 2 + gpu_term**2)
    assert (b1.log_sigma * Z_90) ** 2 == pytest.approx((b0.log_sigma * Z_90) ** 2 + other_term**2)
    # H = 1 for GPU-bound runs (log 0): no host term on them, the other runs keep theirs
    none = dataclasses.replace(
        split, interval=dataclasses.replace(split.interval, gpu_bound_host_log_factor=0.0)
    )
    a2, b2 = none.predict_many([busy, tiny])
    assert a2.log_sigma == pytest.approx(a0.log_sigma) and b2.log_sigma == pytest.approx(b1.log_sigma)
    data = split.to_dict()
    assert data["interval"]["gpu_bound_host_log_factor"] == pytest.approx(math.log(3.0))  # type: ignore[index]
    assert PreEstimator.from_dict(data).interval == split.interval
    assert "gpu_bound_host_log_factor" not in plain.to_dict()["interval"]  # type: ignore[operator]
    assert PreEstimator.from_dict(plain.to_dict()).interval.gpu_bound_host_log_factor is None
