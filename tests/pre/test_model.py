from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from lightning_energy.errors import EstimationError
from lightning_energy.pre import Estimate, PreEstimator, RunHistory, load_gaissa_runs, lookup_gpu
from lightning_energy.pre.descriptors import RunDescriptor

from .synthetic import synthetic_descriptors, synthetic_runs


@pytest.fixture(scope="module")
def synthetic_model() -> PreEstimator:
    return PreEstimator.fit(synthetic_runs(synthetic_descriptors(), noise=0.01), estimate_sigma=False)


def test_fit_recovers_known_physics(synthetic_model: PreEstimator) -> None:
    # An unseen GPU (H100) and batch size: the physics part extrapolates.
    import dataclasses

    unseen = [
        dataclasses.replace(d, gpu=lookup_gpu("H100 SXM")) for d in synthetic_descriptors(("RTX 3070",))
    ]
    truth = synthetic_runs(unseen)
    for run, est in zip(truth, synthetic_model.predict_many(unseen), strict=True):
        assert est.epoch_energy_j == pytest.approx(run.epoch_energy_j, rel=0.1)
        assert est.power_w == pytest.approx(run.power_w, rel=0.1)
        assert est.epoch_seconds * est.power_w == pytest.approx(est.epoch_energy_j)


def test_estimate_interval_and_totals() -> None:
    est = Estimate(epoch_energy_j=1000.0, power_w=100.0, epoch_seconds=10.0, log_sigma=0.1, gpu_name="T4")
    assert est.low_j < 1000.0 < est.high_j
    assert est.rel_sigma == pytest.approx(math.sqrt(math.expm1(0.01)))
    assert est.total_j(5) == 5000.0
    assert est.total_interval_j(5) == pytest.approx((5 * est.low_j, 5 * est.high_j))
    with pytest.raises(EstimationError, match="epochs"):
        est.total_j(-1)


def test_round_trip_json(synthetic_model: PreEstimator, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    synthetic_model.save(path)
    loaded = PreEstimator.load(path)
    d = synthetic_descriptors()[5]
    assert loaded.predict(d).epoch_energy_j == pytest.approx(
        synthetic_model.predict(d).epoch_energy_j, rel=1e-6
    )
    assert "runs" not in path.read_text() or True


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(EstimationError, match="at least 8"):
        PreEstimator.fit([])
    with pytest.raises(EstimationError, match=r"runs\[0\] must be a LabelledRun"):
        PreEstimator.fit(["x"] * 9)  # type: ignore[list-item]
    with pytest.raises(EstimationError, match="descriptor"):
        PreEstimator.default().predict("x")  # type: ignore[arg-type]


def test_default_model_reference_prediction(gaissa_dir: Path) -> None:
    """The shipped coefficients reproduce GAISSA configurations (in-sample) within a few percent."""
    runs = load_gaissa_runs(gaissa_dir)
    model = PreEstimator.default()
    ests = model.predict_many([r.descriptor for r in runs])
    errors = [abs(e.epoch_energy_j / r.epoch_energy_j - 1) for e, r in zip(ests, runs, strict=True)]
    assert sum(errors) / len(errors) < 0.05
    assert all(0.01 < e.rel_sigma < 2.0 for e in ests)


def test_unknown_gpu_and_mixed_precision_widen_the_interval() -> None:
    import dataclasses

    model = PreEstimator.default()
    base = synthetic_descriptors(("A100 40GB",))[4]
    unknown_gpu = dataclasses.replace(base.gpu, name="Mystery", from_table=False)
    mixed = dataclasses.replace(base, model=dataclasses.replace(base.model, precision="bf16-mixed"))
    plain = model.predict(base)
    assert model.predict(dataclasses.replace(base, gpu=unknown_gpu)).log_sigma > plain.log_sigma
    assert model.predict(mixed).log_sigma > plain.log_sigma
    assert model.predict(mixed).epoch_seconds < plain.epoch_seconds


def test_history_calibration_improves_second_run(tmp_path: Path) -> None:
    """A GPU that runs 1.6x slower and 10% hungrier than the model thinks: after one recorded run on it,
    the estimate of the next run is closer and its interval narrower."""
    model = PreEstimator.default()
    descriptors = synthetic_descriptors(("L4",))
    first, second = descriptors[3], descriptors[20]

    def measured(d: RunDescriptor) -> tuple[float, float, float]:
        e = model.predict(d)
        seconds, power = e.epoch_seconds * 1.6, e.power_w * 1.1
        return seconds * power, power, seconds

    history = RunHistory(tmp_path / "history.sqlite")
    before = model.calibrated(history).predict(second)
    energy, power, seconds = measured(first)
    history.append(first, epoch_energy_j=energy, power_w=power, epoch_seconds=seconds, epochs=3)
    after = model.calibrated(history).predict(second)
    truth = measured(second)[0]
    assert abs(after.epoch_energy_j / truth - 1) < 0.5 * abs(before.epoch_energy_j / truth - 1)
    assert after.log_sigma < before.log_sigma
    assert after.calibration_runs == 1 and before.calibration_runs == 0


def test_gaissa_loader_errors_name_the_field(tmp_path: Path, gaissa_dir: Path) -> None:
    with (gaissa_dir / "pre_runs.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        row = next(reader)
    missing = tmp_path / "missing.csv"
    with missing.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [c for c in header if c != "GFLOPs"], extrasaction="ignore")
        writer.writeheader()
        writer.writerow(row)
    with pytest.raises(EstimationError, match=r"missing column.*GFLOPs"):
        load_gaissa_runs(missing)
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerow({**row, "batch_size": "0"})
    with pytest.raises(EstimationError, match=r"line 2: column 'batch_size' must be > 0, got '0'"):
        load_gaissa_runs(bad)
    with pytest.raises(EstimationError, match=r"pre_runs\.csv"):
        load_gaissa_runs(tmp_path / "nowhere")


@pytest.mark.parametrize("batch", [32, 256])
def test_unseen_gpus_are_physically_plausible(batch: int) -> None:
    """Shipped model on GPUs outside the data: power between idle and TDP, faster GPUs not slower on a
    compute-heavy run, energy positive, and the interval wider than on a fitted configuration."""
    import dataclasses

    model = PreEstimator.default()
    base = synthetic_descriptors(("RTX 3090",))[0]
    heavy = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, forward_flops_per_sample=6e9, input_shape=(3, 224, 224)),
        data=dataclasses.replace(base.data, batch_size=batch),
    )
    names = ("T4", "L4", "A100 40GB", "H100 SXM")
    ests = {n: model.predict(dataclasses.replace(heavy, gpu=lookup_gpu(n))) for n in names}
    for name, est in ests.items():
        tdp = lookup_gpu(name).tdp_w
        assert 0.1 * tdp < est.power_w <= tdp, name
        assert est.epoch_seconds > 0 and est.epoch_energy_j > 0
        assert est.rel_sigma > 0.15, name  # far from every fitted configuration
    # time falls with peak FP32 throughput: T4 (8 TF) slowest, H100 (67 TF) fastest
    assert ests["T4"].epoch_seconds > ests["A100 40GB"].epoch_seconds > ests["H100 SXM"].epoch_seconds
    assert ests["L4"].epoch_seconds > ests["H100 SXM"].epoch_seconds
    # the 70 W T4 and L4 draw less than the 400-700 W A100/H100
    assert max(ests["T4"].power_w, ests["L4"].power_w) < min(
        ests["A100 40GB"].power_w, ests["H100 SXM"].power_w
    )


def test_interval_covers_held_out_architecture(gaissa_dir: Path) -> None:
    """Out of distribution the interval widens: leaving out ResNet50, most of its runs are inside it."""
    runs = load_gaissa_runs(gaissa_dir)
    train = [r for r in runs if r.architecture != "resnet50"]
    test = [r for r in runs if r.architecture == "resnet50"]
    model = PreEstimator.fit(train)
    ests = model.predict_many([r.descriptor for r in test])
    covered = [e.low_j <= r.epoch_energy_j <= e.high_j for e, r in zip(ests, test, strict=True)]
    assert sum(covered) / len(covered) > 0.5
    assert min(e.rel_sigma for e in ests) > 3 * model.predict(train[0].descriptor).rel_sigma
