"""The fitting tools (tools/pre_fit.py, tools/gaissa.py): not part of the runtime package."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_energy.errors import EstimationError
from tools.gaissa import load_gaissa_runs
from tools.pre_dataset import Dataset, with_trainable
from tools.pre_fit import fit_shipped, main
from tools.pre_params import fit_params
from tools.pre_quantiles import conformal_q90, interval_q90, random_effects_q90, split_conformal_q90
from tools.pre_select import BEST_SCORE, ONE_SE, pick, select

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
    assert chosen.rule == BEST_SCORE and set(chosen.rule_scores) == {BEST_SCORE, ONE_SE}
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


def test_one_standard_error_rule_takes_the_strongest_prior_within_the_noise() -> None:
    keep = np.ones(1, dtype=bool)

    def folds(*errors: float) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.array([e]), keep) for e in errors]

    errors = {
        (0.1, 1.0): folds(0.2, 0.3),  # best: 0.25, one standard error = 0.05
        (100.0, 1.0): folds(0.27, 0.29),  # 0.28: within
        (100.0, 2.0): folds(0.28, 0.30),  # 0.29: within, but worse than (100, 1)
        (10.0, 1.0): folds(0.4, 0.4),  # outside
    }
    scores = {key: float(np.mean([e[0] for e, _ in value])) for key, value in errors.items()}
    assert pick(scores, errors, BEST_SCORE) == (0.1, 1.0)
    assert pick(scores, errors, ONE_SE) == (100.0, 1.0)
    narrow = {**errors, (0.1, 1.0): folds(0.25, 0.25)}  # no spread: only the best is within
    assert pick({**scores, (0.1, 1.0): 0.25}, narrow, ONE_SE) == (0.1, 1.0)
    with pytest.raises(EstimationError, match="rule must be one of"):
        pick(scores, errors, "median")


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
    """The shipped ``q_model`` is the chosen rule's constant on the selected fit's held-out errors."""
    from tools.pre_interval import choose_interval_rule, fold_host_terms
    from tools.pre_params import fold_errors, fold_fits, group_folds
    from tools.pre_quantiles import INFLATED, RANDOM_EFFECTS, without_host

    runs = load_gaissa_runs(gaissa_dir)
    ds = Dataset.from_runs(runs)
    shipped = json.loads((REPO / "lightning_energy/pre/coefficients.json").read_text())
    weight = shipped["selected"]["prior_weight"]
    overlap = shipped["selected"]["overlap_exponent"]
    folds = group_folds(ds, np.arange(len(runs)))
    errors = fold_errors(ds, folds, weight, overlap)
    choice = choose_interval_rule(ds, folds, errors, weight, overlap)
    assert shipped["interval"]["model_log_q90"] == pytest.approx(choice.log_q90, rel=1e-9)
    host = shipped["interval"].get("host_log_factor")
    assert (choice.host_factor == 1.0) if host is None else host == pytest.approx(np.log(choice.host_factor))
    # the constants are the rules' on the errors with the chosen host term taken out
    fits = [fitted for _, fitted in fold_fits(ds, folds, weight, overlap)]
    errors = without_host(errors, fold_host_terms(ds, folds, fits, choice.host_factor))
    assert choice.values[choice.rule] == choice.log_q90 and choice.groups >= 2
    assert choice.values[RANDOM_EFFECTS] == pytest.approx(random_effects_q90(errors))
    assert choice.values[INFLATED] == pytest.approx(choice.inflation * interval_q90(errors))


def test_random_effects_constant_grows_with_the_group_shifts_and_few_groups() -> None:
    ones = np.ones(200, dtype=bool)
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.1, 200)
    noise = (noise - noise.mean()) / noise.std() * 0.1  # exactly mean 0, SD 0.1
    # no shift: the within-group 95 % point of a normal, 1.645 x 0.1
    assert random_effects_q90([(noise, ones)] * 3) == pytest.approx(0.16449, rel=1e-3)
    # shifts +-0.3 (tau 0.3): Student's t with as many degrees of freedom as groups
    shifted = [(noise + m, ones) for m in (0.3, -0.3, 0.3, -0.3)]
    from scipy.stats import t

    expected = np.hypot(t.ppf(0.95, 4) * 0.3, 1.6449 * 0.1)
    assert random_effects_q90(shifted) == pytest.approx(expected, rel=1e-9)
    more = [(noise + m, ones) for m in (0.3, -0.3) * 10]
    assert random_effects_q90(more) < random_effects_q90(shifted)  # more groups: a smaller correction
    assert np.isnan(random_effects_q90([(noise, np.zeros(200, dtype=bool))]))


def test_inflation_covers_the_target_share_of_each_group_on_average() -> None:
    from tools.pre_quantiles import coverage_inflation

    # two groups of ratios (held-out error / rule's constant): 1..10 and 0.1..1.0 in tenths
    low, high = np.linspace(0.1, 1.0, 10), np.linspace(1.0, 10.0, 10)
    k = coverage_inflation([low, high], 0.9)  # group mean coverage >= 0.9: the low group 1.0, the high 0.8
    assert k == pytest.approx(8.0)
    assert coverage_inflation([low], 0.9) == pytest.approx(0.9)  # an over-covering rule shrinks
    assert coverage_inflation([low, high], 1.0) == pytest.approx(10.0)
    with pytest.raises(EstimationError, match="at least one group"):
        coverage_inflation([])


def test_interval_rule_is_chosen_on_groups_held_out_once_more() -> None:
    """On exact synthetic physics every rule covers; the choice is the narrowest that reaches 90 %."""
    from tools.pre_interval import HOST_FACTORS, choose_interval_rule
    from tools.pre_params import fold_errors, group_folds
    from tools.pre_quantiles import INTERVAL_RULES, TARGET_COVERAGE

    runs = synthetic_runs(synthetic_descriptors(), noise=0.05)
    ds = Dataset.from_runs(runs)
    folds = group_folds(ds, np.arange(len(runs)))
    errors = fold_errors(ds, folds, 0.01, float(TRUE_THETA[4]))
    choice = choose_interval_rule(ds, folds, errors, 0.01, float(TRUE_THETA[4]))
    assert set(choice.values) == set(INTERVAL_RULES) == set(choice.inner_coverage)
    assert choice.groups == len(folds)
    reaching = [r for r in INTERVAL_RULES if choice.inner_coverage[r] >= TARGET_COVERAGE]
    if reaching:
        assert choice.rule == min(reaching, key=choice.inner_log_q90.__getitem__)
    else:
        assert choice.rule == max(INTERVAL_RULES, key=choice.inner_coverage.__getitem__)
    assert choice.log_q90 == choice.values[choice.rule] > 0
    # every (rule, H) pair was judged; the choice is the narrowest reaching the target, else the best covered
    assert len(choice.pair_scores) == len(INTERVAL_RULES) * len(HOST_FACTORS)
    scores = choice.pair_scores
    chosen = f"{choice.rule}, H={choice.host_factor:g}"
    reaching_pairs = [k for k, (c, _) in scores.items() if c >= TARGET_COVERAGE]
    if reaching_pairs:
        assert scores[chosen][1] == min(scores[k][1] for k in reaching_pairs)
    else:
        assert scores[chosen][0] == max(c for c, _ in scores.values())
    # H = 1 only: no host term, the width is the constant itself
    plain = choose_interval_rule(ds, folds, errors, 0.01, float(TRUE_THETA[4]), host_factors=(1.0,))
    assert plain.host_factor == 1.0
    for rule in INTERVAL_RULES:
        assert plain.pair_scores[f"{rule}, H=1"] == (plain.inner_coverage[rule], plain.inner_log_q90[rule])
    with pytest.raises(EstimationError, match="host_factors"):
        choose_interval_rule(ds, folds, errors, 0.01, float(TRUE_THETA[4]), host_factors=(0.5,))


def test_taking_the_host_term_out_keeps_coverage_exact() -> None:
    """|e'| <= q exactly when |e| <= sqrt(q**2 + host**2); runs inside the host term alone become 0."""
    from tools.pre_quantiles import without_host

    e = np.array([0.5, -0.5, 0.1, -0.3, 0.0])
    host = np.array([0.3, 0.4, 0.2, 0.0, 0.1])
    keep = np.ones(5, dtype=bool)
    ((out, kept),) = without_host([(e, keep)], [host])
    assert out == pytest.approx([0.4, -0.3, 0.0, -0.3, 0.0])
    assert kept is keep
    for q in (0.0, 0.25, 0.35, 0.45):
        assert ((np.abs(out) <= q + 1e-12) == (np.abs(e) <= np.hypot(q, host) + 1e-12)).all()


def test_power_only_rows_move_the_power_curve_not_the_time_model() -> None:
    """Rows with a measured power and no epoch (Perseus) enter the power fit only."""
    from tools.perseus import PowerRun

    runs = synthetic_runs(synthetic_descriptors(), noise=0.02)
    plain = Dataset.from_runs(runs)
    # the same descriptors drawing 30 % more than the physics says, as power-only rows
    extra = [PowerRun(r.descriptor, r.power_w * 1.3, r.gpu_name, "m", r.descriptor.gpu.tdp_w) for r in runs]
    both = Dataset.from_runs(runs, extra)
    idx = np.arange(len(runs))
    a = fit_params(plain, idx, 0.01, float(TRUE_THETA[4]))
    b = fit_params(both, idx, 0.01, float(TRUE_THETA[4]))
    assert b.theta == pytest.approx(a.theta) and b.trainable == pytest.approx(a.trainable)
    _, pa, _ = a.predict_log(plain, idx)
    _, pb, _ = b.predict_log(both, idx)
    assert 0.05 < float(np.mean(pb - pa)) < np.log(1.3)  # pulled towards the rows, half-way or so
    none = fit_params(both, idx, 0.01, float(TRUE_THETA[4]), power_idx=np.arange(0))
    assert none.phi == pytest.approx(a.phi)  # no power-only row selected: as without them
    assert both.power_rows is not None and len(both.power_rows.subset(np.arange(3)).log_p) == 3


def test_power_weight_is_chosen_leaving_one_gpu_out() -> None:
    from tools.pre_params import PRIOR_WEIGHTS, select_power_weight

    runs = synthetic_runs(synthetic_descriptors(), noise=0.02)
    ds = Dataset.from_runs(runs)
    idx = np.arange(len(runs))
    weight, scores = select_power_weight(ds, idx, 0.01, float(TRUE_THETA[4]))
    assert set(scores) == set(PRIOR_WEIGHTS) and weight == min(scores, key=scores.__getitem__)
    assert weight <= 1.0  # exact physics: the data beat the prior
    one_gpu = idx[ds.gpu == "RTX 3070"]
    assert select_power_weight(ds, one_gpu, 10.0, 2.0) == (10.0, {})  # one GPU: nothing to hold out
    chosen = select(ds, idx, grid=(0.01,), overlaps=(float(TRUE_THETA[4]),), power=True)
    assert chosen.power_weight == weight and chosen.power_scores == pytest.approx(scores)


def test_perseus_rows_are_read_per_gpu_at_one_power_limit(tmp_path: Path) -> None:
    from tools.perseus import default_perseus_dir, load_perseus_power

    folder = default_perseus_dir(REPO)
    if not (folder / "sosp24_A100_zeus_global.csv").is_file():
        pytest.skip(f"Perseus data not found at {folder}")
    runs = load_perseus_power(folder)
    assert {r.gpu_name for r in runs} == {"A100 80GB PCIe", "A40"}
    a100 = [r for r in runs if r.gpu_name == "A100 80GB PCIe" and r.power_limit_w == 300]
    assert len(a100) == 5 and all(0.85 < r.power_w / 300 < 0.95 for r in a100)  # the README's 0.89-0.93
    assert all(r.descriptor.gpu.tdp_w == r.power_limit_w for r in runs)
    bad = tmp_path / "perseus"
    bad.mkdir()
    (bad / "sosp24_A100_zeus_global.csv").write_text("model_name,time\nx,1\n")
    with pytest.raises(EstimationError, match=r"line 2: bad or missing field"):
        load_perseus_power(bad)
    with pytest.raises(EstimationError, match="cannot read Perseus data"):
        load_perseus_power(tmp_path / "nowhere")


def test_pipeline_bubble_is_the_fill_and_drain_share() -> None:
    from tools.perseus import pipeline_bubble

    assert pipeline_bubble(1, 8) == 0.0
    assert pipeline_bubble(8, 32) == pytest.approx(7 / 39)
    assert pipeline_bubble(4, 128) < pipeline_bubble(4, 32)


def test_power_rows_idle_share_pulls_towards_idle_power() -> None:
    """A row that idles half its time is predicted half-way between busy and idle power."""
    import dataclasses

    from lightning_energy.pre import physics
    from tools.perseus import PowerRun
    from tools.pre_dataset import PowerRows
    from tools.pre_params import POWER_PRIOR

    runs = synthetic_runs(synthetic_descriptors(), noise=0.02)[:4]
    busy = [PowerRun(r.descriptor, r.power_w, r.gpu_name, "m", r.descriptor.gpu.tdp_w) for r in runs]
    half = [dataclasses.replace(r, idle_share=0.5) for r in busy]
    theta = np.asarray(TRUE_THETA, dtype=float)
    full = PowerRows.from_runs(busy).predict_w(POWER_PRIOR, theta)
    mixed = PowerRows.from_runs(half).predict_w(POWER_PRIOR, theta)
    idle = physics.idle_power_w(POWER_PRIOR, PowerRows.from_runs(busy).features.tdp_w)
    assert mixed == pytest.approx(0.5 * full + 0.5 * idle)
    assert np.all(idle < mixed) and np.all(mixed < full)


def test_mlperf_rows_are_single_node_h100_gpu_shares(tmp_path: Path) -> None:
    from tools.mlperf_power import NON_GPU_DC_W, default_mlperf_dir, load_mlperf_power

    folder = default_mlperf_dir(REPO)
    if not (folder / "mlperf_training_power_runs.csv").is_file():
        pytest.skip(f"MLPerf data not found at {folder}")
    runs = load_mlperf_power(folder)
    assert {r.gpu_name for r in runs} == {"H100 SXM"}
    assert {r.model_name for r in runs} >= {"bert", "resnet", "ssd", "unet3d"}
    # 6.7-7.0 kW DC servers less the stated non-GPU power: 0.85-0.98 of the 700 W limit per GPU
    assert all(0.85 < r.power_w / 700 < 0.98 for r in runs)
    assert all(0.5 < r.weight < 1.0 for r in runs)  # modelled, so counted less than a measured GPU
    header = (
        "round,submitter,system,benchmark,run_id,n_nodes,accel,accel_per_node,n_accel,meas_type,"
        "conversion_eff,global_batch_size,mean_node_power_W\n"
    )
    one = tmp_path / "one"
    one.mkdir()
    (one / "mlperf_training_power_runs.csv").write_text(
        header
        + "v,s,x,resnet,r1,1,NVIDIA H100-SXM5-80GB,8,8,DC,,3200,7000\n"
        + "v,s,x,resnet,r2,8,NVIDIA H100-SXM5-80GB,8,64,DC,,3200,5000\n"  # multi-node: skipped
        + "v,t,x,resnet,r3,1,NVIDIA H100-SXM5-80GB,8,8,AC,,3200,7000\n"  # AC without efficiency: skipped
    )
    (row,) = load_mlperf_power(one)
    assert row.power_w == pytest.approx((7000 - NON_GPU_DC_W) / 8)
    assert row.descriptor.data.batch_size == 400
    (one / "mlperf_training_power_runs.csv").write_text(
        header + "v,s,x,resnet,r1,one,NVIDIA H100-SXM5-80GB,8,8,DC,,3200,7000\n"
    )
    with pytest.raises(EstimationError, match=r"line 2: bad or missing field"):
        load_mlperf_power(one)
    with pytest.raises(EstimationError, match="cannot read MLPerf data"):
        load_mlperf_power(tmp_path / "nowhere")


def test_roofline_power_form_spans_idle_to_the_limit() -> None:
    """The candidate form: a fully compute-bound epoch draws the limit, an epoch without kernels idles;
    only the shipped curve can be built into an estimator."""
    import dataclasses

    from lightning_energy.pre import physics
    from tools.pre_dataset import CURVE, ROOFLINE, form_power_w
    from tools.pre_fit import build_estimator
    from tools.pre_params import ROOFLINE_PRIOR, power_prior
    from tools.pre_select import Selection

    runs = synthetic_runs(synthetic_descriptors(), noise=0.02)
    ds = Dataset.from_runs(runs, power_form=ROOFLINE)
    parts = physics.time_parts(np.asarray(TRUE_THETA, dtype=float), ds.features)
    tdp = ds.features.tdp_w
    busy = dataclasses.replace(parts, flop_s=parts.epoch_s, compute_s=parts.epoch_s, overhead_s=0 * tdp)
    assert form_power_w(ROOFLINE, ROOFLINE_PRIOR, busy, tdp) == pytest.approx(tdp)
    none = dataclasses.replace(parts, flop_s=0 * tdp, compute_s=0 * tdp, overhead_s=0 * tdp)
    idle = form_power_w(ROOFLINE, ROOFLINE_PRIOR, none, tdp)
    assert idle == pytest.approx(physics.idle_power_w(ROOFLINE_PRIOR, tdp), rel=1e-6)
    assert power_prior(ROOFLINE)[0] is ROOFLINE_PRIOR
    with pytest.raises(EstimationError, match="power form must be one of"):
        form_power_w("nope", ROOFLINE_PRIOR, parts, tdp)
    idx = np.arange(len(runs))
    fitted = fit_params(ds, idx, 0.01, float(TRUE_THETA[4]))
    _, log_p, _ = fitted.predict_log(ds, idx)
    assert np.all(np.isfinite(log_p)) and fitted.phi.shape == ROOFLINE_PRIOR.shape
    chosen = select(ds, idx, grid=(0.01,), overlaps=(float(TRUE_THETA[4]),))
    assert isinstance(chosen, Selection)
    with pytest.raises(EstimationError, match=f"only the {CURVE!r} power form ships"):
        build_estimator(ds, idx, chosen)


def test_untracked_power_runs_are_fitted_for_time_only() -> None:
    """A GPU whose power reading does not track load (``UNTRACKED_POWER_GPUS``) leaves the power curve as
    if its runs had no power, and the time model as if its power were right."""
    import dataclasses

    from tools.pre_dataset import UNTRACKED_POWER_GPUS
    from tools.pre_params import power_groups

    assert "GTX 750 Ti" in UNTRACKED_POWER_GPUS
    runs = synthetic_runs(synthetic_descriptors(), noise=0.02)
    flat = [
        dataclasses.replace(r, epoch_energy_j=r.epoch_seconds * 28.0, power_w=28.0)
        if r.gpu_name == "RTX 3070"
        else r
        for r in runs
    ]
    untracked = frozenset({"RTX 3070"})
    idx = np.arange(len(runs))
    overlap = float(TRUE_THETA[4])
    true_ds, flat_ds = (
        Dataset.from_runs(runs, untracked_power_gpus=untracked),
        Dataset.from_runs(flat, untracked_power_gpus=untracked),
    )
    a, b = fit_params(true_ds, idx, 0.01, overlap), fit_params(flat_ds, idx, 0.01, overlap)
    assert b.phi == pytest.approx(a.phi, abs=1e-4) and b.theta == pytest.approx(a.theta, abs=1e-6)
    counted = fit_params(Dataset.from_runs(flat, untracked_power_gpus=frozenset()), idx, 0.01, overlap)
    assert counted.theta == pytest.approx(a.theta, abs=1e-6) and np.abs(counted.phi - a.phi).max() > 0.1
    assert "RTX 3070" not in [name for name, _, _ in power_groups(flat_ds, idx, np.arange(0))]
    # the synthetic A100 40GB PCIe is a data-centre board: fitted for time only as well (its power belongs
    # to the class shift)
    consumer = (flat_ds.gpu != "RTX 3070") & (flat_ds.features.data_centre == 0.0)
    assert flat_ds.power_runs(idx).tolist() == idx[consumer].tolist()


def test_machine_ridge_is_chosen_on_folds_that_see_the_machine() -> None:
    """One machine's host 2x slower than the others': leaving an architecture out, its effect from the
    training runs on that machine predicts the held-out runs better, so a finite ridge is chosen; a held-out
    machine gets no effect, and the shipped coefficients carry the ridge."""
    import dataclasses
    import math

    from lightning_energy.pre import physics
    from tools.pre_fit import build_estimator
    from tools.pre_machine import MACHINE_RIDGES, choose_machine_ridge, machine_shifts
    from tools.pre_params import fold_fits, group_folds

    descriptors = synthetic_descriptors()
    runs = synthetic_runs(descriptors, noise=0.02)
    f = physics.Features.from_descriptors(descriptors)
    slow = np.array([d.gpu.name == "RTX 3090" for d in descriptors])
    ratio = physics.time_parts(TRUE_THETA, f, np.where(slow, math.log(2.0), 0.0)).epoch_s / (
        physics.time_parts(TRUE_THETA, f).epoch_s
    )
    runs = [
        dataclasses.replace(r, epoch_energy_j=r.epoch_energy_j * float(k))
        for r, k in zip(runs, ratio, strict=True)
    ]
    ds = Dataset.from_runs(runs)
    idx = np.arange(len(runs))
    folds = group_folds(ds, idx)
    fits = [fitted for _, fitted in fold_fits(ds, folds, 1.0, float(TRUE_THETA[4]))]
    ridge, scores = choose_machine_ridge(ds, folds, fits)
    assert set(scores) == set(MACHINE_RIDGES) and not math.isinf(ridge)
    assert scores[ridge] < scores[math.inf] - 0.01
    gpu_folds = [(fold, fit) for fold, fit in zip(folds, fits, strict=True) if fold[0] == "GPU"]
    only_gpu = choose_machine_ridge(ds, [f for f, _ in gpu_folds], [x for _, x in gpu_folds])
    assert (
        only_gpu[0] == math.inf and len(set(only_gpu[1].values())) == 1
    )  # unseen machines: nothing to learn
    (_, _, train, test), fitted = gpu_folds[0]
    assert machine_shifts(ds, fitted, train, test, 1.0).tolist() == [0.0] * len(test)
    arch = next(i for i, fold in enumerate(folds) if fold[0] == "architecture")
    _, _, train, test = folds[arch]
    shifts = machine_shifts(ds, fits[arch], train, test, ridge)
    assert shifts[ds.gpu[test] == "RTX 3090"].min() > shifts[ds.gpu[test] != "RTX 3090"].max() + 0.2
    with pytest.raises(EstimationError, match="ridges"):
        choose_machine_ridge(ds, folds, fits, ridges=(-1.0,))
    chosen = select(ds, idx, grid=(1.0,), overlaps=(float(TRUE_THETA[4]),))
    estimator, _ = build_estimator(ds, idx, chosen)
    assert estimator.machine_host_ridge == (
        None if math.isinf(chosen.machine_ridge) else chosen.machine_ridge
    )
    assert select(ds, idx, grid=(1.0,), overlaps=(2.0,), machine_effect=False).machine_ridge == math.inf


def test_host_factor_is_the_widest_when_one_machine_shows_host_bound_runs() -> None:
    """H is chosen only where host/launch-bound runs sit on two or more machines, else the widest one."""
    from tools.pre_interval import HOST_FACTORS, choose_interval_rule, host_bound_machines
    from tools.pre_params import group_folds
    from tools.pre_quantiles import INTERVAL_RULES

    keep = np.ones(10, dtype=bool)
    bound, free = np.ones(10, dtype=bool), np.zeros(10, dtype=bool)
    idx = np.arange(10)
    errors = [(np.zeros(10), keep)] * 4
    folds = [
        ("GPU", "a", idx, idx),
        ("GPU", "b", idx, idx),
        ("architecture", "x", idx, idx),
        ("GPU", "c", idx, idx),
    ]
    # GPU "a" host/launch-bound, "b" GPU-bound, the architecture fold does not count: one machine
    assert host_bound_machines(folds[:3], errors[:3], [free, bound, free]) == 1
    assert host_bound_machines(folds, errors, [free, bound, free, free]) == 2
    few = np.arange(10) < 7  # 7 of 10 runs measured: fewer than MIN_TRAIN_RUNS (8) host-bound runs
    assert host_bound_machines(folds, [(np.zeros(10), few)] * 4, [free, bound, free, free]) == 0

    runs = synthetic_runs(synthetic_descriptors(), noise=0.05)
    ds = Dataset.from_runs(runs)
    every = group_folds(ds, np.arange(len(runs)))
    by_architecture = [fold for fold in every if fold[0] == "architecture"]
    assert by_architecture and len(by_architecture) < len(every)
    from tools.pre_params import fold_errors

    errors = fold_errors(ds, by_architecture, 0.01, float(TRUE_THETA[4]))
    choice = choose_interval_rule(ds, by_architecture, errors, 0.01, float(TRUE_THETA[4]))
    assert choice.host_machines == 0 and choice.host_factor == max(HOST_FACTORS)
    assert set(choice.pair_scores) == {f"{rule}, H={max(HOST_FACTORS):g}" for rule in INTERVAL_RULES}


def test_regime_cells_need_two_folds_of_eight_runs() -> None:
    """A regime's own interval cell keeps folds with >= MIN_TRAIN_RUNS measured runs in that regime and
    needs MIN_REGIME_GROUPS of them; otherwise None (the pooled constant)."""
    from tools.pre_quantiles import MIN_REGIME_GROUPS, regime_errors

    assert MIN_REGIME_GROUPS == 2
    e = np.linspace(-1.0, 1.0, 12)
    keep = np.ones(12, dtype=bool)
    bound = np.arange(12) < 9  # 9 GPU-bound runs, 3 others
    few = np.arange(12) < 5  # 5 GPU-bound runs: too few for a cell
    cells = regime_errors([(e, keep), (e, keep), (e, keep)], [bound, bound, few], True)
    assert cells is not None and len(cells) == 2
    assert all(np.array_equal(mask, keep & bound) for _, mask in cells)
    assert regime_errors([(e, keep), (e, keep)], [bound, few], True) is None  # one fold left
    assert regime_errors([(e, keep), (e, keep)], [bound, bound], False) is None  # 3 runs per fold
    unmeasured = np.arange(12) >= 2  # two GPU-bound runs on a fallback-speed GPU: 7 measured left
    assert regime_errors([(e, unmeasured), (e, keep)] * 2, [bound] * 4, True) is not None
    assert regime_errors([(e, unmeasured), (e, unmeasured)], [bound] * 2, True) is None


def _regime_noise_runs(gpu_bound_noise: float, other_noise: float) -> tuple[Dataset, np.ndarray]:
    """Synthetic runs whose energy is exact physics times log-normal noise, by the true regime."""
    import dataclasses

    from lightning_energy.pre import physics

    descriptors = synthetic_descriptors()
    f = physics.Features.from_descriptors(descriptors)
    bound = physics.time_parts(TRUE_THETA, f).busy_share >= physics.GPU_BOUND_SHARE
    z = np.random.default_rng(1).standard_normal(len(descriptors))
    runs = [
        dataclasses.replace(r, epoch_energy_j=r.epoch_energy_j * float(np.exp(s * zi)))
        for r, s, zi in zip(
            synthetic_runs(descriptors), np.where(bound, gpu_bound_noise, other_noise), z, strict=True
        )
    ]
    return Dataset.from_runs(runs), bound


def test_regime_interval_wins_where_gpu_bound_runs_err_less_and_keeps_its_coverage() -> None:
    """GPU-bound runs erring 40x less than the others: the regime candidate reaches 90 % on groups held
    out once more with a narrower GPU-bound constant than the pooled one, and is chosen; its constants
    are the rule's on the regime's runs of all folds (or the pooled one where the cell is too small)."""
    from tools.pre_interval import choose_interval_rule, chosen_constants
    from tools.pre_params import fold_errors, fold_fits, group_folds
    from tools.pre_quantiles import (
        GROUP_QUANTILE,
        INTERVAL_RULES,
        RANDOM_EFFECTS,
        TARGET_COVERAGE,
        regime_errors,
    )

    ds, _ = _regime_noise_runs(0.01, 0.4)
    idx = np.arange(len(ds.runs))
    folds = group_folds(ds, idx)
    overlap = float(TRUE_THETA[4])
    errors = fold_errors(ds, folds, 0.01, overlap)
    choice = choose_interval_rule(ds, folds, errors, 0.01, overlap, host_factors=(1.0,))
    assert set(choice.regime_scores) == {f"{rule} by regime, H=1/1" for rule in INTERVAL_RULES}
    assert choice.by_regime and choice.regime is not None
    regime = choice.regime
    assert choice.label == regime.label == f"{regime.rule} by regime, H=1/1"
    score, width = choice.regime_scores[regime.label]
    pooled_score, pooled_width = choice.pair_scores[f"{choice.rule}, H=1"]
    assert score >= TARGET_COVERAGE and pooled_score >= TARGET_COVERAGE and width < pooled_width
    assert regime.gpu_bound_own and regime.gpu_bound_log_q90 < choice.log_q90
    fits = [fitted for _, fitted in fold_fits(ds, folds, 0.01, overlap)]
    from lightning_energy.pre import physics

    bound = [
        fitted.predict_log(ds, test)[2] >= physics.GPU_BOUND_SHARE
        for (_, _, _, test), fitted in zip(folds, fits, strict=True)
    ]
    for flag, own, value in (
        (True, regime.gpu_bound_own, regime.gpu_bound_log_q90),
        (False, regime.host_bound_own, regime.host_bound_log_q90),
    ):
        cell = regime_errors(errors, bound, flag)
        if not own:
            assert value == choice.values[regime.rule]
        elif regime.rule == GROUP_QUANTILE:
            assert cell is not None and value == pytest.approx(interval_q90(cell))
        elif regime.rule == RANDOM_EFFECTS:
            assert cell is not None and value == pytest.approx(random_effects_q90(cell))
    # the shipped constants follow the choice: GPU-bound runs get the narrower constant
    constants = chosen_constants(choice, 0.01)
    assert constants.gpu_bound_log_q90 == regime.gpu_bound_log_q90
    assert constants.host_bound_log_q90 == regime.host_bound_log_q90
    assert constants.host_log_factor is None and constants.gpu_bound_host_log_factor is None


def test_regime_interval_is_not_forced_when_regimes_err_alike() -> None:
    """With the same noise in both regimes the choice follows the inner scores: the regime candidate is
    used only if it reaches 90 % and is narrower than the pooled choice; every candidate was judged."""
    from tools.pre_interval import HOST_FACTORS, choose_interval_rule
    from tools.pre_params import fold_errors
    from tools.pre_params import group_folds as folds_of
    from tools.pre_quantiles import INTERVAL_RULES, TARGET_COVERAGE

    ds, _ = _regime_noise_runs(0.05, 0.05)
    folds = folds_of(ds, np.arange(len(ds.runs)))
    overlap = float(TRUE_THETA[4])
    errors = fold_errors(ds, folds, 0.01, overlap)
    choice = choose_interval_rule(ds, folds, errors, 0.01, overlap)
    assert len(choice.regime_scores) == len(INTERVAL_RULES) * len(HOST_FACTORS) ** 2
    assert choice.regime is not None
    score, width = choice.regime_scores[choice.regime.label]
    pooled_score, pooled_width = choice.pair_scores[f"{choice.rule}, H={choice.host_factor:g}"]
    if choice.by_regime:
        assert score >= TARGET_COVERAGE and (pooled_score < TARGET_COVERAGE or width <= pooled_width)
        assert choice.label == choice.regime.label
    else:
        assert choice.label == f"{choice.rule}, H={choice.host_factor:g}"
        assert score < TARGET_COVERAGE or width >= pooled_width
        assert choice.log_q90 == choice.values[choice.rule]


def test_known_machine_host_factor_is_chosen_on_architecture_folds_with_a_history() -> None:
    """Hosts 2.5x slower and faster than the fitted one: with each machine's effect measured from the fold's
    training runs, the smallest factor whose coverage reaches 90 % on the held-out architectures is used;
    none without a ridge or without architecture folds."""
    import dataclasses
    import math

    from lightning_energy.pre import physics
    from tools.pre_interval import HOST_FACTORS, choose_interval_rule
    from tools.pre_machine import choose_known_host_factor
    from tools.pre_params import fold_fits, group_folds
    from tools.pre_quantiles import TARGET_COVERAGE

    descriptors = synthetic_descriptors()
    f = physics.Features.from_descriptors(descriptors)
    slow = {"RTX 3070": math.log(2.5), "RTX 3090": -math.log(2.5)}
    parts = physics.time_parts(TRUE_THETA, f, np.array([slow.get(d.gpu.name, 0.0) for d in descriptors]))
    power = physics.power_from_parts(TRUE_PHI, parts, f.tdp_w)
    noise = np.exp(0.05 * np.random.default_rng(0).standard_normal(len(descriptors)))
    runs = [
        dataclasses.replace(r, epoch_energy_j=float(s * p * n), power_w=float(p))
        for r, s, p, n in zip(synthetic_runs(descriptors), parts.epoch_s, power, noise, strict=True)
    ]
    ds = Dataset.from_runs(runs)
    folds = group_folds(ds, np.arange(len(runs)))
    pairs = fold_fits(ds, folds, 0.01, float(TRUE_THETA[4]))
    fits = [fitted for _, fitted in pairs]
    choice = dataclasses.replace(
        choose_interval_rule(ds, folds, [e for e, _ in pairs], 0.01, float(TRUE_THETA[4])),
        host_factor=max(HOST_FACTORS),
        by_regime=False,
    )
    known, scores = choose_known_host_factor(ds, folds, fits, choice, 1.0)
    assert set(scores) == set(HOST_FACTORS)  # the candidates below the unseen H, and the unseen H
    ordered = [scores[h] for h in sorted(scores)]
    assert ordered == sorted(ordered)  # a wider host term never covers less
    reaching = [h for h in sorted(scores)[:-1] if scores[h] >= TARGET_COVERAGE]
    assert reaching and known == min(reaching) < max(HOST_FACTORS)
    assert choose_known_host_factor(ds, folds, fits, choice, math.inf) == (None, {})
    by_gpu = [(fold, fitted) for fold, fitted in zip(folds, fits, strict=True) if fold[0] == "GPU"]
    gpu_folds, gpu_fits = [x for x, _ in by_gpu], [x for _, x in by_gpu]
    assert choose_known_host_factor(ds, gpu_folds, gpu_fits, choice, 1.0) == (None, {})
    plain = dataclasses.replace(choice, host_factor=1.0)
    assert choose_known_host_factor(ds, folds, fits, plain, 1.0) == (None, {})  # nothing below H = 1
