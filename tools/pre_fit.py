"""Fit the PRE model on GAISSA runs with nested selection, and write ``coefficients.json``.

Research/fitting code (not part of the runtime package). What is fitted (log-space least squares with weak
Gaussian priors, weight ``prior_weight x sqrt(n)``; ``fit_params`` in ``tools/pre_params.py``):

* time: ``log_half_step_flop``, ``log_step_overhead_s``, ``log_host_s_per_sample``, ``numel_exponent`` and,
  for runs whose trained share is unknown, one data-set nuisance share (GAISSA's runs carry theirs, derived
  from the authors' protocols by ``tools/gaissa.py``, so the nuisance is unused there).
  ``overlap_exponent`` is a hyper-parameter (grid). The GPU's speed is *not* fitted: it comes from the
  measured throughput table.
* power: ``logit_idle_fraction``, ``util_bias``, ``util_per_log_busy``, ``util_per_log_step_s`` (the
  consumer curve, on GAISSA's runs) and, since v5.5, the data-centre class shift of the utilisation logit,
  fitted on the data-centre rows of Perseus (A100 80GB PCIe, A40) and MLPerf (H100 SXM at a stated GPU share)
  with the rest held fixed, its prior weight chosen by leave-one-data-centre-GPU-out (``class_shift_for`` in
  ``tools/pre_class_shift.py``).

Selection (``select`` in ``tools/pre_select.py``): on a set of runs, leave-one-GPU-out and
leave-one-architecture-out folds choose the
prior weight and the overlap exponent (mean absolute log energy error over folds, each fold weighted
equally; the lowest score, or the strongest prior within one standard error of it, whichever rule predicts
the held-out groups of a nested selection better: ``choose_selection_rule``), and the interval constant
``model_log_q90`` from those folds' held-out errors (runs on GPUs with measured speed) by one of three
rules (``tools/pre_quantiles.py``), itself chosen by nested selection (``choose_interval_rule`` in
``tools/pre_interval.py``): the group quantile (the larger of the
run-level split-conformal and the group-conformal 90 % quantiles), a random-effects predictive quantile (a
new group's shift drawn like the observed groups', Student-t with as many degrees of freedom as groups), or
the group quantile inflated by the factor that made it cover 90 % of groups it had not seen; with the rule,
the host factor H of the per-run host term (``model.host_log_term``: the per-step and host cost off by H,
which no descriptor can know), the errors being calibrated with that term taken out in quadrature.
Regime-conditional (Mondrian) candidates, ``q_model`` and H each the predicted regime's own (GPU-bound or
not), are judged by the same nested selection and replace the pooled choice only where they reach 90 % and
are narrower (v5.5; a fixed split was tried in v5 and dropped: its GPU-bound intervals covered 67 %
(held-out GPU) and 54 % (held-out architecture) of the outer folds' GPU-bound runs). With a per-machine host
effect, the host factor for a new model on a machine a history has measured (``choose_known_host_factor`` in
``tools/pre_machine.py``) is chosen on the leave-one-architecture-out folds. ``benchmarks/pre_accuracy.py``
runs ``select`` on the training part of every outer fold only and reports the outer fold; the shipped model
runs ``select`` on all runs.

The rows (runs, power-only rows, power forms) are ``tools/pre_dataset.py``'s; this module builds the
estimator from a selection (``build_estimator``), fits the shipped model (``fit_shipped``) and writes it.

Run: ``python tools/pre_fit.py [--data ../shared/data/gaissa] [--perseus ../shared/data/perseus]
[--mlperf ../shared/data/mlperf] [--out PATH]`` (default: the package's
``lightning_energy/pre/coefficients.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.errors import EstimationError  # noqa: E402
from lightning_energy.pre.descriptors import LabelledRun  # noqa: E402
from lightning_energy.pre.model import PreEstimator  # noqa: E402
from tools.perseus import PowerRun  # noqa: E402
from tools.pre_class_shift import (  # noqa: E402
    GPU_BOUND_ROWS,
    SHIPPED_CLASS_ROWS,
    class_shift_for,
    data_centre_rows,
    gpu_bound_rows,
)
from tools.pre_dataset import CURVE, Dataset, repeat_log_sigma  # noqa: E402
from tools.pre_interval import IntervalChoice, chosen_constants  # noqa: E402
from tools.pre_params import Fitted, fit_params  # noqa: E402
from tools.pre_select import Selection, select  # noqa: E402

DEFAULT_OUT = REPO / "lightning_energy" / "pre" / "coefficients.json"


def build_estimator(ds: Dataset, idx: np.ndarray, selection: Selection) -> tuple[PreEstimator, Fitted]:
    """The estimator fitted on ``idx`` with the selected constants (the GAISSA nuisance kept aside)."""
    if ds.power_form != CURVE:
        raise EstimationError(f"only the {CURVE!r} power form ships, got {ds.power_form!r}")
    fitted = fit_params(ds, idx, selection.prior_weight, selection.overlap, selection.power_weight)
    interval = dataclasses.replace(
        chosen_constants(selection.interval, repeat_log_sigma(ds)),
        known_host_log_factor=(
            None if selection.known_host_factor is None else math.log(selection.known_host_factor)
        ),
    )
    nuisance = bool(ds.unknown_trainable[idx].any())
    estimator = PreEstimator(
        fitted.theta,
        fitted.phi,
        interval,
        fitted_runs=len(idx),
        selected={
            "prior_weight": selection.prior_weight,
            "overlap_exponent": selection.overlap,
            **({"gaissa_trainable_fraction": fitted.trainable} if nuisance else {}),
            **({} if selection.power_weight is None else {"power_prior_weight": selection.power_weight}),
            **(
                {} if math.isinf(selection.machine_ridge) else {"machine_host_ridge": selection.machine_ridge}
            ),
        },
    )
    return estimator, fitted


def regime_note(choice: IntervalChoice) -> str:
    """The best regime-conditional candidate, its constants and nested score, for printouts."""
    regime = choice.regime
    if regime is None:
        return "no regime candidate (too few groups)"
    score, width = choice.regime_scores[regime.label]
    own = {True: regime.gpu_bound_own, False: regime.host_bound_own}
    cells = "/".join("own" if own[r] else "pooled" for r in (True, False))
    return (
        f"best regime candidate {regime.label!r}{' (chosen)' if choice.by_regime else ''}: q90 "
        f"{regime.gpu_bound_log_q90:.3f}/{regime.host_bound_log_q90:.3f} ({cells}), nested coverage "
        f"{100 * score:.0f} %, median half-width {width:.3f}"
    )


def trained_share_note(ds: Dataset, fitted: Fitted) -> str:
    """How the runs' trained shares were set, for printouts."""
    unknown = int(ds.unknown_trainable.sum())
    if not unknown:
        return "trained shares from the runs' descriptors"
    return f"trained share {fitted.trainable:.2f} fitted for the {unknown} runs without one"


def fit_shipped(
    runs: Sequence[LabelledRun], power_runs: Sequence[PowerRun] = ()
) -> tuple[PreEstimator, Selection, Fitted]:
    """Selection and fit on all runs: the shipped model. With ``power_runs`` (Perseus, MLPerf), the
    data-centre class shift is selected and fitted on their data-centre rows (``class_shift_for``), the time
    model and the consumer curve held as fitted on ``runs``; without, it is 0."""
    ds = Dataset.from_runs(runs)
    idx = np.arange(len(ds.runs))
    selection = select(ds, idx)
    estimator, fitted = build_estimator(ds, idx, selection)
    if data_centre_rows(power_runs):
        shift = class_shift_for(power_runs, fitted, SHIPPED_CLASS_ROWS)
        fitted = dataclasses.replace(fitted, data_centre_shift=shift.shift)
        estimator = dataclasses.replace(
            estimator,
            data_centre_shift=shift.shift,
            selected={**estimator.selected, "data_centre_prior_weight": shift.weight},
        )
    return estimator, selection, fitted


def main(argv: Sequence[str] | None = None) -> int:
    from tools.gaissa import default_gaissa_dir, load_gaissa_runs
    from tools.mlperf_power import default_mlperf_dir, load_mlperf_power
    from tools.perseus import default_perseus_dir, load_perseus_power

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_gaissa_dir(REPO), help="GAISSA folder")
    parser.add_argument(
        "--perseus", type=Path, default=default_perseus_dir(REPO), help="Perseus folder (data-centre power)"
    )
    parser.add_argument(
        "--mlperf", type=Path, default=default_mlperf_dir(REPO), help="MLPerf folder (H100 server power)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output JSON (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        runs = load_gaissa_runs(args.data)
        power_runs = [*load_perseus_power(args.perseus), *load_mlperf_power(args.mlperf)]
        estimator, selection, fitted = fit_shipped(runs, power_runs)
        ds = Dataset.from_runs(runs)
        centre = data_centre_rows(power_runs)
    except EstimationError as exc:
        print(f"pre_fit: error: {exc}", file=sys.stderr)
        return 2
    estimator.save(args.out)
    print(
        f"fitted on {len(runs)} runs: prior weight {selection.prior_weight:g}, overlap "
        f"{selection.overlap:g} (rule {selection.rule!r}; best fold score "
        f"{min(selection.scores.values()):.4f}), interval rule "
        f"{selection.interval.label!r} (pooled choice {selection.interval.rule!r} with host factor "
        f"H={selection.interval.host_factor:g}: nested coverage "
        + ", ".join(f"{r} {100 * c:.0f} %" for r, c in selection.interval.inner_coverage.items())
        + f"; {regime_note(selection.interval)}), model log q90 {selection.model_log_q90:.3f}, "
        f"known-machine host factor {selection.known_host_factor}, "
        f"{trained_share_note(ds, fitted)}; "
        f"data-centre shift {estimator.data_centre_shift:+.3f} (prior weight "
        f"{estimator.selected.get('data_centre_prior_weight', math.nan):g}, "
        f"{len(data_centre_rows(power_runs))} data-centre power rows, row rule {SHIPPED_CLASS_ROWS!r}"
        + (
            ", left out as predicted host-bound: "
            + ", ".join(f"{r.gpu_name} {r.model_name}" for r in gpu_bound_rows(centre, fitted.theta)[1])
            if SHIPPED_CLASS_ROWS == GPU_BOUND_ROWS
            else ""
        )
        + f"); wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
