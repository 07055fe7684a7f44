"""The fitting tools (tools/pre_fit.py, tools/gaissa.py): not part of the runtime package."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_energy.errors import EstimationError
from tools.gaissa import load_gaissa_runs
from tools.pre_fit import Dataset, fit_params, fit_shipped, main, select, with_trainable

from .synthetic import TRUE_PHI, TRUE_THETA, synthetic_descriptors, synthetic_runs

REPO = Path(__file__).resolve().parents[2]


def test_fit_recovers_known_physics_and_the_trained_share() -> None:
    descriptors = synthetic_descriptors(trainable=None)
    runs = synthetic_runs(descriptors, noise=0.01, trainable=0.3)
    ds = Dataset.from_runs(runs)
    fitted = fit_params(ds, np.arange(len(runs)), prior_weight=0.01, overlap=float(TRUE_THETA[4]))
    assert fitted.trainable == pytest.approx(0.3, abs=0.1)
    t, p, busy = fitted.predict_log(ds, np.arange(len(runs)))
    assert ((busy > 0) & (busy < 1)).all()
    assert np.abs(t - ds.log_t).max() < 0.1 and np.abs(p - ds.log_p).max() < 0.1
    assert fitted.theta == pytest.approx(TRUE_THETA, abs=0.5)
    assert fitted.phi[1:] == pytest.approx(TRUE_PHI[1:], abs=0.5)


def test_selection_uses_group_folds_only() -> None:
    runs = synthetic_runs(synthetic_descriptors(), noise=0.05)
    ds = Dataset.from_runs(runs)
    chosen = select(ds, np.arange(len(runs)), grid=(0.01, 100.0))
    assert chosen.prior_weight == 0.01  # on exact physics the data beat the prior
    assert 0.0 < chosen.model_log_q90 < 0.3
    estimator, selection, _ = fit_shipped(runs)
    assert estimator.interval.model_log_q90 == selection.model_log_q90
    assert estimator.to_dict()["selected"]["prior_weight"] == selection.prior_weight  # type: ignore[index]
    d = with_trainable(runs[0].descriptor, 0.5)
    assert d.model.trainable_fraction == 1.0  # known shares are kept
    with pytest.raises(EstimationError, match="at least 8"):
        Dataset.from_runs(runs[:3])
    with pytest.raises(EstimationError, match=r"runs\[0\] must be a LabelledRun"):
        Dataset.from_runs(["x"] * 9)  # type: ignore[list-item]


def test_shipped_coefficients_are_what_the_script_fits(gaissa_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    assert main(["--data", str(gaissa_dir), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    shipped = json.loads((REPO / "lightning_energy/pre/coefficients.json").read_text())
    assert written.keys() == shipped.keys()
    for key in ("time", "power", "interval", "selected"):
        assert written[key] == pytest.approx(shipped[key], rel=1e-6), key
    assert "chesslive" not in out.read_text() and len(out.read_text()) < 2000


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
    runs = load_gaissa_runs(gaissa_dir)
    assert len(runs) == 857 and all(r.descriptor.model.conv_share == 1.0 for r in runs)


def test_conformal_constant_treats_each_held_out_group_as_one_unit() -> None:
    from tools.pre_fit import conformal_q90

    def fold(q: float) -> tuple[np.ndarray, np.ndarray]:
        errors = np.full(50, q)  # every run of the group has the group's error
        return errors, np.ones(50, dtype=bool)

    # a big fold of small errors does not drown a small fold of large ones (v4's pooled quantile did)
    few = [(np.full(1000, 0.1), np.ones(1000, dtype=bool)), fold(0.2), fold(0.5)]
    assert conformal_q90(few) == pytest.approx(0.5)  # n < 9 groups: the largest
    many = [fold(q) for q in np.linspace(0.05, 1.0, 20)]
    assert conformal_q90(many) == pytest.approx(np.linspace(0.05, 1.0, 20)[18])  # ceil(21 x 0.9) = 19th
    assert np.isnan(conformal_q90([(np.ones(3), np.zeros(3, dtype=bool))]))


def test_interval_constant_is_the_larger_of_the_run_and_group_quantiles() -> None:
    from tools.pre_fit import conformal_q90, interval_q90, split_conformal_q90

    ones = np.ones(50, dtype=bool)
    # one group far off, the others exact: the group rule (n < 9: the largest group score) dominates
    spread = [(np.full(50, 0.1), ones), (np.full(50, 0.1), ones), (np.full(50, 0.8), ones)]
    assert conformal_q90(spread) == pytest.approx(0.8)
    assert split_conformal_q90(spread) == pytest.approx(0.8)  # a third of the weight > 10 %
    assert interval_q90(spread) == pytest.approx(0.8)
    # 20 alike groups: the group rule (19th of 20 interpolated group quantiles) is below the run-level
    # quantile (an observed error at or above 90 % of the pooled weight): the run rule sets the constant
    groups = [(np.linspace(0.0, 1.0, 50), ones)] * 20
    assert conformal_q90(groups) == pytest.approx(0.9)
    assert split_conformal_q90(groups) == pytest.approx(45 / 49)  # the 46th of 50 errors
    assert interval_q90(groups) == pytest.approx(45 / 49)
    mixed = [(np.full(200, 0.1), np.ones(200, dtype=bool)), (np.full(50, 0.5), ones)]
    assert interval_q90(mixed) == max(split_conformal_q90(mixed), conformal_q90(mixed))
    assert np.isnan(interval_q90([(np.ones(3), np.zeros(3, dtype=bool))]))


def test_shipped_interval_constant_follows_the_rule(gaissa_dir: Path) -> None:
    """The shipped ``q_model`` is max(run-level, group-conformal) of the selected fit's held-out errors."""
    from tools.pre_fit import conformal_q90, group_folds, split_conformal_q90

    runs = load_gaissa_runs(gaissa_dir)
    ds = Dataset.from_runs(runs)
    shipped = json.loads((REPO / "lightning_energy/pre/coefficients.json").read_text())
    weight = shipped["selected"]["prior_weight"]
    overlap = shipped["selected"]["overlap_exponent"]
    errors = []
    for _, _, train, test in group_folds(ds, np.arange(len(runs))):
        t, p, _ = fit_params(ds, train, weight, overlap).predict_log(ds, test)
        errors.append((np.abs(t + p - ds.log_e[test]), ds.features.speed_measured[test]))
    run_q, group_q = split_conformal_q90(errors), conformal_q90(errors)
    assert shipped["interval"]["model_log_q90"] == pytest.approx(max(run_q, group_q), rel=1e-9)
