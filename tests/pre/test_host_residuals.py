"""benchmarks/pre_host.py: the per-configuration epoch-time residual table of the shipped model on GAISSA."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmarks.pre_host import STEP_BOUND_SHARE, gpu_summaries, group_residuals, markdown
from lightning_energy.pre import physics
from lightning_energy.pre.model import PreEstimator
from tools.gaissa import load_gaissa_runs


def test_groups_partition_the_runs_and_match_the_model_run_by_run(gaissa_dir: Path) -> None:
    runs = load_gaissa_runs(gaissa_dir)
    estimator = PreEstimator.default()
    groups = group_residuals(runs, estimator)
    assert sum(g.runs for g in groups) == len(runs)
    assert len({(g.architecture, g.gpu, g.batch_size, g.image) for g in groups}) == len(groups)
    # one group recomputed by hand from the model's own parts
    g = next(g for g in groups if g.architecture == "mobilenet_v2" and g.gpu == "RTX 3090")
    members = [
        r
        for r in runs
        if r.architecture == g.architecture
        and r.gpu_name == g.gpu
        and r.descriptor.data.batch_size == g.batch_size
    ]
    parts = physics.time_parts(
        estimator.theta, physics.Features.from_descriptors([r.descriptor for r in members])
    )
    measured = np.array([r.epoch_seconds for r in members])
    assert g.runs == len(members)
    assert math.isclose(g.measured_s, float(measured.mean()), rel_tol=1e-12)
    assert math.isclose(g.predicted_s, float(parts.epoch_s.mean()), rel_tol=1e-12)
    assert math.isclose(g.log_error, float(np.mean(np.log(parts.epoch_s / measured))), rel_tol=1e-12)
    steps_ms = 1e3 * (measured - parts.epoch_s) / parts.steps
    assert math.isclose(g.unexplained_ms_per_step, float(np.median(steps_ms)), rel_tol=1e-12)


def test_summary_splits_each_gpu_by_the_predicted_busy_share(gaissa_dir: Path) -> None:
    groups = group_residuals(load_gaissa_runs(gaissa_dir), PreEstimator.default())
    summaries = gpu_summaries(groups)
    assert [s.gpu for s in summaries] == sorted({g.gpu for g in groups})
    for s in summaries:
        mine = [g for g in groups if g.gpu == s.gpu]
        assert s.step_bound_runs == sum(g.runs for g in mine if g.busy_share < STEP_BOUND_SHARE)
        assert s.step_bound_runs + s.gpu_bound_runs == sum(g.runs for g in mine)
        assert math.isnan(s.step_bound_log_error) == (s.step_bound_runs == 0)
    text = markdown(groups, summaries)
    assert "IN-SAMPLE" in text
    assert text.count("\n| ") == len(groups) + len(summaries) + 2  # rows plus the two header rows
    no_step_bound = [s for s in summaries if s.step_bound_runs == 0]
    for s in no_step_bound:  # shown as "-", never "nan"
        assert f"| {s.gpu} | 0 | - | - |" in text
    assert "nan" not in text


def test_held_out_gpu_table_never_sees_the_held_out_gpu(gaissa_dir: Path) -> None:
    """Each GPU's row is predicted by a fit on the other GPUs' runs only (nested), one row per candidate
    overlap exponent; the figures are recomputed by hand for one row."""
    from benchmarks.pre_host import held_out_gpu_time, held_out_markdown
    from tools.pre_dataset import Dataset
    from tools.pre_params import fit_params

    runs = load_gaissa_runs(gaissa_dir)
    rows = held_out_gpu_time(runs, 100.0, overlaps=(1.0, 2.0))
    gpus = sorted({r.gpu_name for r in runs})
    assert [(r.gpu, r.overlap) for r in rows] == [(g, k) for g in gpus for k in (1.0, 2.0)]
    row = next(r for r in rows if r.gpu == "RTX 3070" and r.overlap == 2.0)
    ds = Dataset.from_runs(runs)
    every = np.arange(len(runs))
    test = every[ds.gpu == "RTX 3070"]
    # the fit must not depend on the held-out GPU's runs: fitted on a data set without them, it is the same
    others = Dataset.from_runs([r for r in runs if r.gpu_name != "RTX 3070"])
    alone = fit_params(others, np.arange(len(others.runs)), 100.0, 2.0)
    fitted = fit_params(ds, every[ds.gpu != "RTX 3070"], 100.0, 2.0)
    np.testing.assert_allclose(fitted.theta, alone.theta)
    np.testing.assert_allclose(fitted.phi, alone.phi)
    log_t, log_p, busy = fitted.predict_log(ds, test)
    assert row.runs == len(test) and row.step_bound_runs == int((busy < STEP_BOUND_SHARE).sum())
    assert math.isclose(row.log_time_error, float(np.median(log_t - ds.log_t[test])), rel_tol=1e-12)
    assert math.isclose(row.log_power_error, float(np.median(log_p - ds.log_p[test])), rel_tol=1e-12)
    energy = 100 * np.mean(np.abs(np.exp(log_t + log_p - ds.log_e[test]) - 1))
    assert math.isclose(row.energy_mape, float(energy), rel_tol=1e-12)
    text = held_out_markdown(rows, 100.0)
    assert text.count("\n| ") == len(rows) + 1 and "nan" not in text
    assert "| GTX 750 Ti | 1 | 44 |" in text  # no step-bound run there: "-", never "nan"
