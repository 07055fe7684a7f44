"""The interval rules' constants from held-out fold errors: the group quantile (``interval_q90``), the
random-effects predictive quantile (``random_effects_q90``) and the inflation that makes a rule cover
``TARGET_COVERAGE`` of unseen groups (``coverage_inflation``); the host term taken out of the errors
(``without_host``) and a regime's own cell (``regime_errors``).

Research/fitting code (not part of the runtime package); ``tools/pre_interval.py`` chooses among the rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lightning_energy.errors import EstimationError
from tools.pre_dataset import MIN_TRAIN_RUNS
from tools.pre_params import FoldErrors


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cumulative, q)), len(values) - 1)])


def split_conformal_q90(errors: Sequence[FoldErrors]) -> float:
    """Run-level split-conformal 90 % quantile (v4's rule): the 90 % quantile of all held-out runs'
    absolute errors, each fold's runs sharing the weight 1; nan if no fold has runs."""
    values = [np.abs(e[keep]) for e, keep in errors if keep.any()]
    if not values:
        return math.nan
    weights = [np.full(len(v), 1.0 / len(v)) for v in values]
    return weighted_quantile(np.concatenate(values), np.concatenate(weights), 0.9)


def interval_q90(errors: Sequence[FoldErrors]) -> float:
    """The group-quantile rule: the larger of the run-level split-conformal quantile
    (``split_conformal_q90``) and the group-conformal one (``conformal_q90``). With fewer than 9 groups the
    largest group quantile already bounds the run-level one (up to interpolation)."""
    values = [q for q in (split_conformal_q90(errors), conformal_q90(errors)) if not math.isnan(q)]
    return max(values) if values else math.nan


def conformal_q90(errors: Sequence[FoldErrors]) -> float:
    """Group-conformal 90 % quantile: each held-out group (fold) is one exchangeable unit scored by the 90 %
    quantile of its absolute errors, and the constant is the ceil((n + 1) x 0.9)-th smallest of the n group
    scores (the largest when n < 9). A new GPU or architecture shifts all of its runs together, so the
    runs of one group are not exchangeable with each other's groups; nan if no fold has runs."""
    scores = sorted(float(np.quantile(np.abs(e[keep]), 0.9)) for e, keep in errors if keep.any())
    if not scores:
        return math.nan
    n = len(scores)
    return scores[min(n - 1, math.ceil((n + 1) * 0.9) - 1)]


def random_effects_q90(errors: Sequence[FoldErrors]) -> float:
    """Predictive 90 % half-width for a new group under a random-effects model of the held-out errors.

    A group's runs err by the group's shift ``m_g`` (its mean signed error) plus a within-group residual. The
    shift of a new group is a new draw: with the n observed shifts centred on 0 (a bias the model has is not
    assumed to persist), its scale ``tau = sqrt(mean(m_g**2))`` has n degrees of freedom, so the shift's
    95 % point is Student's ``t(0.95, n) x tau`` (the finite-sample correction; ``t`` -> 1.645 as n grows).
    The within-group spread ``sigma`` (each group weighing 1) is estimated from many runs: normal. The
    half-width is ``sqrt((t x tau)**2 + (1.645 x sigma)**2)``; nan if no fold has runs."""
    from scipy.stats import t as student_t

    groups = [e[keep] for e, keep in errors if keep.any()]
    if not groups:
        return math.nan
    shifts = np.array([g.mean() for g in groups])
    within = float(np.mean([g.var() for g in groups]))
    n = len(groups)
    tau = float(np.sqrt(np.mean(shifts**2)))
    return float(math.hypot(float(student_t.ppf(0.95, n)) * tau, 1.6449 * math.sqrt(within)))


GROUP_QUANTILE, RANDOM_EFFECTS, INFLATED = "group quantile", "random effects", "inflated group quantile"
#: The candidate interval rules (``choose_interval_rule``).
INTERVAL_RULES = (GROUP_QUANTILE, RANDOM_EFFECTS, INFLATED)
#: The group-averaged coverage the interval is calibrated to.
TARGET_COVERAGE = 0.9


def coverage_inflation(ratios: Sequence[np.ndarray], coverage: float = TARGET_COVERAGE) -> float:
    """Smallest ``k`` with mean over groups of (share of the group's ``ratios`` <= ``k``) >= ``coverage``;
    ``ratios`` per group: held-out absolute error / the rule's constant computed without that group."""
    if not ratios or any(len(r) == 0 for r in ratios):
        raise EstimationError("coverage_inflation needs at least one group, each with one ratio or more")
    candidates = np.unique(np.concatenate(ratios))
    covered = np.mean(
        [np.searchsorted(np.sort(r), candidates, side="right") / len(r) for r in ratios], axis=0
    )
    return float(candidates[min(int(np.searchsorted(covered, coverage - 1e-12)), len(candidates) - 1)])


def without_host(errors: Sequence[FoldErrors], hosts: Sequence[np.ndarray]) -> list[FoldErrors]:
    """Errors with the host term taken out in quadrature: ``sign(e) sqrt(max(e**2 - host**2, 0))``; a run is
    inside ``sqrt(q**2 + host**2)`` exactly when this is inside ``q``."""
    return [
        (np.sign(e) * np.sqrt(np.maximum(e**2 - h**2, 0.0)), keep)
        for (e, keep), h in zip(errors, hosts, strict=True)
    ]


#: A regime's own (Mondrian) interval cell needs this many group folds, each with at least
#: ``MIN_TRAIN_RUNS`` measured-speed runs predicted in that regime; below it the regime gets the pooled
#: rule's constant. Declared with the candidate (v5.5), not tuned: a group-conformal quantile or a
#: random-effects spread from one group is no estimate of how a new group differs.
MIN_REGIME_GROUPS = 2


def regime_errors(
    errors: Sequence[FoldErrors], gpu_bound: Sequence[np.ndarray], regime: bool
) -> list[FoldErrors] | None:
    """The folds' errors restricted to the runs predicted in ``regime`` (True: GPU-bound; ``gpu_bound``: per
    fold, per run), keeping only folds with at least ``MIN_TRAIN_RUNS`` such runs on a GPU with measured
    speed; None when fewer than ``MIN_REGIME_GROUPS`` folds are left (the cell falls back to the pool)."""
    out = []
    for (e, keep), bound in zip(errors, gpu_bound, strict=True):
        inside = keep & (bound == regime)
        if int(inside.sum()) >= MIN_TRAIN_RUNS:
            out.append((e, inside))
    return out if len(out) >= MIN_REGIME_GROUPS else None
