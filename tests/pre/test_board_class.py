"""Board classes (data-centre vs consumer/workstation) and the data-centre shift of the power curve."""

from __future__ import annotations

import dataclasses
import json
import warnings
from importlib import resources

import numpy as np
import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import (
    DataDescriptor,
    GpuDescriptor,
    ModelDescriptor,
    PreEstimator,
    RunDescriptor,
    find_gpu,
    gpu_from_nvml,
    gpu_names,
    lookup_gpu,
    physics,
)
from lightning_energy.pre.descriptors import (
    BOARD_CLASSES,
    CONSUMER,
    DATA_CENTRE,
    TRAFFIC_FIELDS,
    infer_board_class,
)
from lightning_energy.pre.gpus import FORM_FACTOR_CLASS, board_class_of
from tools.perseus import PowerRun
from tools.pre_class_shift import (
    ALL_ROWS,
    GPU_BOUND_ROWS,
    class_shift_for,
    data_centre_rows,
    fit_class_shift,
    gpu_bound_rows,
    select_class_weight,
)
from tools.pre_dataset import CURVE, PowerRows
from tools.pre_fit import fit_shipped
from tools.pre_params import Fitted

from .synthetic import TRUE_PHI, TRUE_THETA, synthetic_descriptors, synthetic_runs


def _table_rows() -> list[dict[str, object]]:
    text = resources.files("lightning_energy.pre").joinpath("gpus.json").read_text(encoding="utf-8")
    rows: list[dict[str, object]] = json.loads(text)["gpus"]
    return rows


def test_every_table_gpu_has_a_class_from_its_form_factor() -> None:
    rows = {str(r["name"]): r for r in _table_rows()}
    assert set(rows) == set(gpu_names())
    for name, row in rows.items():
        gpu = find_gpu(name)
        assert gpu is not None and gpu.board_class in BOARD_CLASSES, name
        assert gpu.board_class == FORM_FACTOR_CLASS[str(row["form_factor"])], name
        if str(row["memory_type"]).startswith("HBM"):  # every HBM board is a server board
            assert gpu.board_class == DATA_CENTRE, name
    for name in ("A100 80GB PCIe", "A40", "H100 SXM", "T4", "L4", "V100 PCIe", "B200"):
        assert lookup_gpu(name).board_class == DATA_CENTRE, name
    for name in ("RTX 3090", "RTX 3070", "GTX 750 Ti", "RTX A6000", "Quadro RTX 8000", "RTX 6000 Ada"):
        assert lookup_gpu(name).board_class == CONSUMER, name
    # the NVML names resolve to the same descriptor, class included
    assert find_gpu("NVIDIA H100 80GB HBM3") == lookup_gpu("H100 SXM")
    with pytest.raises(EstimationError, match="form_factor must be one of"):
        board_class_of({"name": "X", "form_factor": "mezzanine"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA A30", DATA_CENTRE),
        ("NVIDIA A10G", DATA_CENTRE),
        ("Tesla K80", DATA_CENTRE),
        ("NVIDIA GH200 480GB", DATA_CENTRE),
        ("NVIDIA H800 PCIe", DATA_CENTRE),
        ("NVIDIA V100-SXM2-16GB", DATA_CENTRE),
        ("NVIDIA GeForce RTX 5090", CONSUMER),
        ("NVIDIA RTX A2000", CONSUMER),
        ("Quadro P4000", CONSUMER),
        ("NVIDIA TITAN V", CONSUMER),
        ("Some Accelerator", CONSUMER),
    ],
)
def test_a_gpu_outside_the_table_is_classed_by_its_name(name: str, expected: str) -> None:
    assert infer_board_class(name) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = gpu_from_nvml({"name": name, "power_limit_w": 300.0, "memory_gb": 24.0})
    assert gpu.board_class == expected and gpu.power_class == expected


def test_a_descriptor_without_a_class_infers_it_and_a_bad_one_is_refused() -> None:
    plain = GpuDescriptor("NVIDIA A100 custom", 80.0, 300.0, 19.5, 1935.0)
    assert plain.board_class is None and plain.power_class == DATA_CENTRE
    assert GpuDescriptor("my desktop card", 8.0, 200.0, 20.0, 448.0).power_class == CONSUMER
    assert dataclasses.replace(plain, board_class=CONSUMER).power_class == CONSUMER
    with pytest.raises(EstimationError, match="board_class must be one of"):
        GpuDescriptor("x", 8.0, 200.0, 20.0, 448.0, board_class="server")
    # a descriptor recorded before the field existed reads back, and a new one round-trips
    d = RunDescriptor(ModelDescriptor(1e9, (3, 64, 64)), DataDescriptor(32, 1000), lookup_gpu("A40"))
    data = d.to_dict()
    assert RunDescriptor.from_dict(data) == d
    old = json.loads(json.dumps(data))
    del old["gpu"]["board_class"]
    assert RunDescriptor.from_dict(old).gpu.power_class == DATA_CENTRE


def _runs_on(*gpus: str) -> list[RunDescriptor]:
    return [
        RunDescriptor(ModelDescriptor(4e9, (3, 224, 224)), DataDescriptor(batch, 20000, 2000), lookup_gpu(g))
        for g in gpus
        for batch in (8, 64, 256)
    ]


def test_the_shift_raises_data_centre_power_only_and_leaves_time_alone() -> None:
    base = PreEstimator.default()
    base = dataclasses.replace(base, data_centre_shift=0.0)
    shifted = dataclasses.replace(base, data_centre_shift=1.5)
    descriptors = _runs_on("RTX 3090", "RTX A6000", "A40", "A100 80GB PCIe")
    pairs = (base.predict_many(descriptors), shifted.predict_many(descriptors))
    for d, a, b in zip(descriptors, *pairs, strict=True):
        assert a.board_class == b.board_class == d.gpu.board_class
        assert a.epoch_seconds == b.epoch_seconds and a.log_sigma == b.log_sigma
        if d.gpu.board_class == CONSUMER:
            assert b.power_w == a.power_w
        else:
            assert a.power_w < b.power_w <= d.gpu.tdp_w
    # the formula: the shift adds to the utilisation logit on data-centre boards only
    f = physics.Features.from_descriptors(descriptors)
    parts = physics.time_parts(TRUE_THETA, f)
    logit_idle, a0, a1, a2 = TRUE_PHI
    idle = 1 / (1 + np.exp(-logit_idle))
    z = (
        a0
        + 1.5 * f.data_centre * parts.busy_share
        + a1 * np.log(parts.busy_share)
        + a2 * np.log(parts.compute_s / parts.steps / 0.1)
    )
    expected = f.tdp_w * (idle + (1 - idle) / (1 + np.exp(-z)))
    assert physics.power_w(TRUE_PHI, TRUE_THETA, f, 1.5) == pytest.approx(expected, rel=1e-12)
    assert list(f.data_centre) == [0.0] * 6 + [1.0] * 6
    # weighted by the busy share: a data-centre board that mostly waits keeps (nearly) the consumer curve
    tiny = ModelDescriptor(1e6, (3, 1024, 1024), **dict.fromkeys(TRAFFIC_FIELDS, 1.0))  # type: ignore[arg-type]
    waiting = RunDescriptor(tiny, DataDescriptor(256, 20000), lookup_gpu("A40"))  # loading-bound
    low, high = (est.predict(waiting) for est in (base, shifted))
    assert high.gpu_busy_share is not None and high.gpu_busy_share < 0.05
    assert high.power_w / low.power_w < 1.02
    gains = [
        b.power_w / a.power_w
        for d, a, b in zip(descriptors, *pairs, strict=True)
        if d.gpu.power_class == DATA_CENTRE
    ]
    assert max(gains) > 1.1


def test_coefficients_carry_the_shift_and_older_files_read_as_none(tmp_path: object) -> None:
    est = dataclasses.replace(PreEstimator.default(), data_centre_shift=0.75)
    data = est.to_dict()
    assert data["board_class"] == {"data_centre_shift": 0.75}
    assert PreEstimator.from_dict(data).data_centre_shift == 0.75
    older = {k: v for k, v in data.items() if k != "board_class"}
    assert PreEstimator.from_dict(older).data_centre_shift == 0.0
    with pytest.raises(EstimationError, match="bad field"):
        PreEstimator.from_dict({**data, "board_class": [1.0]})
    with pytest.raises(EstimationError, match="bad field"):
        PreEstimator.from_dict({**data, "board_class": {"data_centre_shift": "high"}})


def _power_rows(gpu: str, shift: float, noise: float = 0.0, seed: int = 0) -> list[PowerRun]:
    """Power-only rows on ``gpu`` whose power follows the curve with ``shift`` exactly (times noise)."""
    descriptors = [
        RunDescriptor(ModelDescriptor(g * 1e9, (3, 128, 128)), DataDescriptor(b, b * 100), lookup_gpu(gpu))
        for g in (0.5, 4.0, 20.0)
        for b in (8, 32, 128)
    ]
    f = physics.Features.from_descriptors(descriptors)
    watts = physics.power_w(TRUE_PHI, TRUE_THETA, f, shift)
    watts = watts * np.exp(noise * np.random.default_rng(seed).standard_normal(len(watts)))
    return [
        PowerRun(d, float(w), gpu, f"m{i}", d.gpu.tdp_w)
        for i, (d, w) in enumerate(zip(descriptors, watts, strict=True))
    ]


def test_the_shift_is_recovered_from_data_centre_rows_and_refuses_consumer_ones() -> None:
    rows = PowerRows.from_runs([*_power_rows("A40", 1.2), *_power_rows("H100 SXM", 1.2)])
    assert fit_class_shift(rows, TRUE_PHI, TRUE_THETA, 0.01) == pytest.approx(1.2, abs=5e-3)
    # a strong prior holds it near 0, the consumer curve
    assert abs(fit_class_shift(rows, TRUE_PHI, TRUE_THETA, 100.0)) < 0.05
    consumer = PowerRows.from_runs(_power_rows("RTX 3090", 1.2))
    with pytest.raises(EstimationError, match="data-centre rows only"):
        fit_class_shift(consumer, TRUE_PHI, TRUE_THETA, 1.0)
    assert data_centre_rows([*_power_rows("RTX 3090", 0.0), *_power_rows("A40", 0.0)]) == _power_rows(
        "A40", 0.0
    )


def test_the_prior_weight_is_chosen_by_leaving_each_data_centre_gpu_out() -> None:
    grid = (0.01, 1.0, 100.0)
    agree = PowerRows.from_runs([*_power_rows("A40", 1.2, 0.02), *_power_rows("H100 SXM", 1.2, 0.02, seed=1)])
    weight, scores = select_class_weight(agree, TRUE_PHI, TRUE_THETA, grid)
    assert set(scores) == set(grid) and weight == 0.01  # the other GPU teaches the shift: a weak prior wins
    # by hand: the score is the mean over held-out GPUs of their mean absolute log power error
    errors = []
    for held, other in (("A40", "H100 SXM"), ("H100 SXM", "A40")):
        train = agree.subset(np.flatnonzero(agree.gpu == other))
        test = agree.subset(np.flatnonzero(agree.gpu == held))
        s = fit_class_shift(train, TRUE_PHI, TRUE_THETA, 0.01)
        errors.append(np.abs(np.log(test.predict_w(TRUE_PHI, TRUE_THETA, CURVE, s)) - test.log_p).mean())
    assert scores[0.01] == pytest.approx(float(np.mean(errors)))
    # GPUs that disagree in sign: no shift transfers, the strongest prior (shift ~0) wins
    disagree = PowerRows.from_runs([*_power_rows("A40", 1.5), *_power_rows("H100 SXM", -1.5)])
    assert select_class_weight(disagree, TRUE_PHI, TRUE_THETA, grid)[0] == 100.0
    # one GPU cannot judge: the strongest prior, no scores
    assert select_class_weight(PowerRows.from_runs(_power_rows("A40", 1.2)), TRUE_PHI, TRUE_THETA, grid) == (
        100.0,
        {},
    )


def test_the_shipped_fit_adds_the_shift_without_touching_the_consumer_fit() -> None:
    runs = synthetic_runs(synthetic_descriptors(gpus=("RTX 3070", "RTX 3090")), noise=0.02)
    power = [
        *_power_rows("A40", 1.0, 0.02),
        *_power_rows("H100 SXM", 1.0, 0.02, seed=2),
        *_power_rows("RTX 3080", 3),
    ]
    plain, selection, fitted = fit_shipped(runs)
    with_rows, selection2, fitted2 = fit_shipped(runs, power)
    assert plain.data_centre_shift == 0.0 and "data_centre_prior_weight" not in plain.selected
    np.testing.assert_array_equal(with_rows.theta, plain.theta)
    np.testing.assert_array_equal(with_rows.phi, plain.phi)
    assert with_rows.interval == plain.interval and selection2.prior_weight == selection.prior_weight
    expected = class_shift_for(power, fitted)  # the consumer RTX 3080 rows are not used
    assert expected.gpus == ("A40", "H100 SXM") and expected.rows == 18
    assert with_rows.data_centre_shift == expected.shift == fitted2.data_centre_shift
    assert with_rows.selected["data_centre_prior_weight"] == expected.weight
    consumer = [d for d in synthetic_descriptors(gpus=("RTX 3070",))]
    assert [e.power_w for e in with_rows.predict_many(consumer)] == [
        e.power_w for e in plain.predict_many(consumer)
    ]


def test_the_power_table_ships_the_board_class_only_by_its_declared_rule() -> None:
    from benchmarks.pre_power import class_passes, decide
    from benchmarks.pre_power_folds import CLASS, MLPERF, PERSEUS, V5, VARIANTS, HeldOut

    def held(
        gpu: str, centre: bool, power: dict[str, float], energy: dict[str, float] | None = None
    ) -> HeldOut:
        return HeldOut(gpu, "x", 10, 100.0, {}, power, energy or {}, {}, 1.0, {}, {}, 0.0, centre)

    def both(v5: float, cls: float, others: float = 50.0) -> dict[str, float]:
        return {**dict.fromkeys(VARIANTS, others), V5: v5, CLASS: cls}

    gaissa = dict.fromkeys(VARIANTS, 30.0)
    results = [
        held("RTX 3070", False, both(16.0, 16.0), gaissa),
        held("A100 80GB PCIe", True, both(23.0, 3.0)),
        held("A40", True, both(16.0, 11.0)),
    ]
    assert class_passes(results) and decide(results) == CLASS
    # (1) the data-centre mean must fall
    worse = [results[0], held("A100 80GB PCIe", True, both(23.0, 25.0)), held("A40", True, both(16.0, 16.0))]
    assert not class_passes(worse) and decide(worse) == V5
    # (3) a consumer GPU's power may not get worse, (2) nor GAISSA's energy
    hurt = [held("RTX 3070", False, both(16.0, 16.5), gaissa), *results[1:]]
    assert not class_passes(hurt)
    energy = [held("RTX 3070", False, both(16.0, 16.0), {**gaissa, CLASS: 30.1}), *results[1:]]
    assert not class_passes(energy)
    # another variant passing the older rule competes on the mean power over all GPUs
    better = {**gaissa, PERSEUS: 29.0}
    rival = [
        held("RTX 3070", False, {**both(16.0, 16.0), PERSEUS: 1.0, MLPERF: 60.0}, better),
        held("A100 80GB PCIe", True, {**both(23.0, 3.0), PERSEUS: 1.0}),
        held("A40", True, {**both(16.0, 11.0), PERSEUS: 1.0}),
    ]
    assert class_passes(rival) and decide(rival) == PERSEUS


def _busy_rows(gpu: str, share_of_limit: float) -> list[PowerRun]:
    """Power-only rows on ``gpu`` of a tiny model at small batches (the time model calls them host-bound)
    drawing ``share_of_limit`` of the board limit, as a mis-described busy run would."""
    descriptors = [
        RunDescriptor(ModelDescriptor(g * 1e6, (3, 32, 32)), DataDescriptor(b, b * 100), lookup_gpu(gpu))
        for g in (1.0, 5.0)
        for b in (1, 4)
    ]
    return [
        PowerRun(d, share_of_limit * d.gpu.tdp_w, gpu, f"tiny{i}", d.gpu.tdp_w)
        for i, d in enumerate(descriptors)
    ]


def test_the_gpu_bound_rule_leaves_out_rows_the_time_model_calls_host_bound() -> None:
    busy = [*_power_rows("A40", 1.2), *_power_rows("H100 SXM", 1.2)]
    bound = [r for r in busy if r.descriptor.model.forward_flops_per_sample >= 4e9]
    waiting = _busy_rows("H100 SXM", 0.95)
    regimes = physics.time_parts(TRUE_THETA, PowerRows.from_runs([*bound, *waiting]).features).regimes()
    assert set(regimes[: len(bound)]) <= {"compute-bound", "bandwidth-bound"}
    assert set(regimes[len(bound) :]) == {"host-bound"}
    kept, dropped = gpu_bound_rows([*bound, *waiting], TRUE_THETA)
    assert kept == bound and dropped == waiting
    assert gpu_bound_rows([], TRUE_THETA) == ([], [])
    fitted = Fitted(TRUE_THETA, TRUE_PHI, 0.5)
    consumer = _power_rows("RTX 3090", 3.0)
    every = class_shift_for([*bound, *waiting, *consumer], fitted, ALL_ROWS)
    only = class_shift_for([*bound, *waiting, *consumer], fitted, GPU_BOUND_ROWS)
    # the host-bound rows at 0.95 of the limit pull the shift up; without them it is the rows' own 1.2
    assert only.shift == pytest.approx(1.2, abs=0.05) and every.shift > only.shift + 1.0
    assert only.rows == len(bound) and only.rule == GPU_BOUND_ROWS
    assert only.dropped == tuple(("H100 SXM", r.model_name) for r in waiting)
    assert every.rows == len(bound) + len(waiting) and every.dropped == ()
    assert class_shift_for(bound, fitted) == dataclasses.replace(only, rule=ALL_ROWS, dropped=())
    with pytest.raises(EstimationError, match="rule must be one of"):
        class_shift_for(bound, fitted, "busy")


def test_the_consumer_curve_never_fits_a_data_centre_boards_labelled_power() -> None:
    from tools.pre_dataset import Dataset
    from tools.pre_params import fit_params

    runs = synthetic_runs(synthetic_descriptors(gpus=("RTX 3070", "RTX 3090", "A100 40GB PCIe")), noise=0.02)
    doubled = [
        dataclasses.replace(r, power_w=2 * r.power_w, epoch_energy_j=2 * r.epoch_energy_j)
        if r.gpu_name == "A100 40GB PCIe"
        else r
        for r in runs
    ]
    ds, other = Dataset.from_runs(runs), Dataset.from_runs(doubled)
    idx = np.arange(len(runs))
    assert ds.power_measured is not None
    assert ds.power_measured.tolist() == [r.gpu_name != "A100 40GB PCIe" for r in runs]
    a, b = fit_params(ds, idx, 0.01, float(TRUE_THETA[4])), fit_params(other, idx, 0.01, float(TRUE_THETA[4]))
    np.testing.assert_array_equal(a.phi, b.phi)  # its power is not in the consumer curve
    consumer = idx[ds.gpu != "A100 40GB PCIe"]
    assert not np.array_equal(
        a.theta, fit_params(ds, consumer, 0.01, float(TRUE_THETA[4])).theta
    )  # its time is
    with pytest.raises(EstimationError, match=r"data-centre boards \(A100 40GB PCIe\).*class_shift_for"):
        fit_params(dataclasses.replace(ds, power_measured=None), idx, 0.01, float(TRUE_THETA[4]))
    # a consumer-only selection of a hand-built dataset still fits
    fit_params(dataclasses.replace(ds, power_measured=None), consumer, 0.01, float(TRUE_THETA[4]))


def test_the_gpu_bound_board_class_replaces_v5_5_only_by_its_declared_rule() -> None:
    from benchmarks.pre_power import amended_passes, decide
    from benchmarks.pre_power_folds import CLASS, CLASS_GB, V5, VARIANTS, HeldOut

    def held(gpu: str, centre: bool, power: dict[str, float]) -> HeldOut:
        energy = dict.fromkeys(VARIANTS, 30.0) if not centre else {}
        return HeldOut(gpu, "x", 10, 100.0, {}, power, energy, {}, 1.0, {}, {}, 0.0, centre)

    def cells(v5: float, cls: float, gb: float) -> dict[str, float]:
        return {**dict.fromkeys(VARIANTS, 50.0), V5: v5, CLASS: cls, CLASS_GB: gb}

    def table(a100: float, a40: float) -> list[HeldOut]:
        return [
            held("RTX 3070", False, cells(16.0, 16.0, 16.0)),
            held("A100 80GB PCIe", True, cells(23.0, 3.0, a100)),
            held("A40", True, cells(16.0, 11.0, a40)),
        ]

    # v5.5's data-centre mean is 7.0: the candidate may be up to 1 point worse (8.0), not more
    assert amended_passes(table(5.0, 11.0)) and decide(table(5.0, 11.0)) == CLASS_GB
    assert amended_passes(table(4.0, 12.0)) and decide(table(4.0, 12.0)) == CLASS_GB
    assert not amended_passes(table(4.0, 12.2)) and decide(table(4.0, 12.2)) == CLASS
    # a consumer GPU's power may not get worse than v5's
    hurt = table(3.0, 11.0)
    hurt[0] = held("RTX 3070", False, cells(16.0, 16.0, 16.5))
    assert not amended_passes(hurt) and decide(hurt) == CLASS
    # without v5.5 passing its own rule, neither board class ships
    assert (
        decide([hurt[0], *(dataclasses.replace(r, power_mape=cells(1.0, 9.0, 2.0)) for r in hurt[1:])]) == V5
    )


def test_the_curve_table_gives_the_curve_by_hand() -> None:
    from benchmarks.pre_power import curve_share

    idle = 1.0 / (1.0 + np.exp(-TRUE_PHI[0]))
    for busy, step, shift in ((0.2, 0.1, 0.0), (0.9, 0.01, 3.0), (0.5, 1.0, -1.0)):
        z = TRUE_PHI[1] + shift * busy + TRUE_PHI[2] * np.log(busy) + TRUE_PHI[3] * np.log(step / 0.1)
        expected = idle + (1.0 - idle) / (1.0 + np.exp(-z))
        assert curve_share(TRUE_PHI, shift, busy, step) == pytest.approx(expected, rel=1e-12)
