"""Nested selection of the PRE model's hyper-parameters on a set of runs (``select``): the prior weight and
the overlap exponent (``pick``, its rule chosen by ``choose_selection_rule``), then the interval rule and the
host factor (``tools/pre_interval.py``) and the per-machine host effect (``tools/pre_machine.py``).

Research/fitting code (not part of the runtime package); the module doc of ``tools/pre_fit.py`` describes the
procedure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.errors import EstimationError
from tools.pre_dataset import Dataset
from tools.pre_interval import IntervalChoice, choose_interval_rule
from tools.pre_machine import choose_known_host_factor, choose_machine_ridge
from tools.pre_params import (
    OVERLAP_EXPONENTS,
    PRIOR_WEIGHTS,
    Fold,
    FoldErrors,
    fit_params,
    fold_errors,
    fold_fits,
    group_folds,
    select_power_weight,
)
from tools.pre_quantiles import interval_q90

#: Whether the power curve gets its own prior weight, chosen by leave-one-GPU-out power error
#: (``select_power_weight``). Off, and no Perseus rows in the shipped consumer curve (GAISSA only): the nested
#: table of ``benchmarks/pre_power.py`` decided so (its rule is in its docstring). Perseus's and MLPerf's
#: data-centre rows set only the data-centre class shift (``class_shift_for``; v5.5, by the same table).
SEPARATE_POWER_WEIGHT = False


BEST_SCORE, ONE_SE = "best score", "one standard error"
#: The candidate rules that pick the prior weight and overlap from the fold scores (``pick``), themselves
#: chosen by nested selection (``choose_selection_rule``).
SELECTION_RULES = (BEST_SCORE, ONE_SE)


@dataclass(frozen=True)
class Selection:
    prior_weight: float
    overlap: float
    model_log_q90: float
    scores: dict[tuple[float, float], float]
    interval: IntervalChoice
    #: the power curve's own prior weight (``select_power_weight``); None: ``prior_weight``
    power_weight: float | None = None
    power_scores: dict[float, float] = dataclasses.field(default_factory=dict)
    #: the rule that picked the prior weight and overlap from ``scores`` (``choose_selection_rule``), and
    #: each rule's held-out score on the group folds
    rule: str = "best score"
    rule_scores: dict[str, float] = dataclasses.field(default_factory=dict)
    #: the ridge of the per-machine host effect (``choose_machine_ridge``; inf: none) and every ridge's score
    machine_ridge: float = math.inf
    machine_scores: dict[float, float] = dataclasses.field(default_factory=dict)
    #: the host factor for a new model on a machine whose host effect a history measured
    #: (``choose_known_host_factor``; None: the unseen machine's) and every candidate's score
    known_host_factor: float | None = None
    known_host_scores: dict[float, float] = dataclasses.field(default_factory=dict)


ScoreKey = tuple[float, float]


def score_grid(
    ds: Dataset, folds: Sequence[Fold], grid: Sequence[float], overlaps: Sequence[float]
) -> tuple[dict[ScoreKey, float], dict[ScoreKey, list[FoldErrors]]]:
    """Per (prior weight, overlap): the mean over ``folds`` of the held-out mean absolute log energy error
    (each fold weighing 1), and the folds' errors."""
    scores: dict[ScoreKey, float] = {}
    errors: dict[ScoreKey, list[FoldErrors]] = {}
    for weight in grid:
        for overlap in overlaps:
            per_fold = fold_errors(ds, folds, weight, overlap)
            errors[weight, overlap] = per_fold
            scores[weight, overlap] = float(np.mean([np.abs(e).mean() for e, _ in per_fold]))
    return scores, errors


def pick(scores: dict[ScoreKey, float], errors: dict[ScoreKey, list[FoldErrors]], rule: str) -> ScoreKey:
    """The (prior weight, overlap) that ``rule`` picks: ``BEST_SCORE``, the lowest score; ``ONE_SE``,
    the strongest prior whose score is within one standard error (over folds) of the lowest (the usual
    guard against a noisy cross-validation minimum, Hastie et al., ESL 7.10), the lowest score among its
    overlaps."""
    best = min(scores, key=lambda key: scores[key])
    if rule == BEST_SCORE:
        return best
    if rule != ONE_SE:
        raise EstimationError(f"rule must be one of {SELECTION_RULES}, got {rule!r}")
    per_fold = [float(np.abs(e).mean()) for e, _ in errors[best]]
    se = float(np.std(per_fold, ddof=1) / math.sqrt(len(per_fold))) if len(per_fold) > 1 else 0.0
    within = [key for key in scores if scores[key] <= scores[best] + se]
    strongest = max(key[0] for key in within)
    return min((key for key in within if key[0] == strongest), key=lambda key: scores[key])


def choose_selection_rule(
    ds: Dataset, folds: Sequence[Fold], grid: Sequence[float], overlaps: Sequence[float]
) -> tuple[str, dict[str, float]]:
    """The rule of ``pick``, chosen by nested selection: each group fold's training part is scored on its own
    group folds, each rule picks from those scores, the picked model is fitted on the training part and
    judged on the fold's held-out group (mean absolute log energy error, each fold weighing 1). The rule
    with the lower mean wins (``BEST_SCORE`` on a tie or with no fold to judge on). Nothing outside
    ``folds`` is seen."""
    judged: dict[str, list[float]] = {rule: [] for rule in SELECTION_RULES}
    for _, _, train, test in folds:
        inner = group_folds(ds, train)
        if len(inner) < 2:
            continue
        scores, errors = score_grid(ds, inner, grid, overlaps)
        fitted: dict[ScoreKey, float] = {}
        for rule in SELECTION_RULES:
            key = pick(scores, errors, rule)
            if key not in fitted:
                t, p, _ = fit_params(ds, train, key[0], key[1]).predict_log(ds, test)
                fitted[key] = float(np.abs(t + p - ds.log_e[test]).mean())
            judged[rule].append(fitted[key])
    if not judged[BEST_SCORE]:
        return BEST_SCORE, {}
    means = {rule: float(np.mean(values)) for rule, values in judged.items()}
    return min(SELECTION_RULES, key=lambda rule: (means[rule], SELECTION_RULES.index(rule))), means


def select(
    ds: Dataset,
    idx: np.ndarray,
    grid: Sequence[float] = PRIOR_WEIGHTS,
    overlaps: Sequence[float] = OVERLAP_EXPONENTS,
    power: bool | None = None,
    machine_effect: bool = True,
) -> Selection:
    """Prior weight, overlap and the interval constant from the group folds of ``idx`` only (module doc);
    with ``power`` (default ``SEPARATE_POWER_WEIGHT``) the power curve's own prior weight too
    (``select_power_weight``), before the interval constant; with ``machine_effect`` the ridge of the
    per-machine host effect (``choose_machine_ridge``) on the same folds, after it."""
    folds = group_folds(ds, idx)
    if not folds:
        raise EstimationError("select needs at least two GPUs or two architectures")
    scores, errors = score_grid(ds, folds, grid, overlaps)
    rule, rule_scores = choose_selection_rule(ds, folds, grid, overlaps)
    best = pick(scores, errors, rule)
    if math.isnan(interval_q90(errors[best])):
        raise EstimationError("select needs runs on a GPU with measured speed in its folds")
    power_weight: float | None = None
    power_scores: dict[float, float] = {}
    if SEPARATE_POWER_WEIGHT if power is None else power:
        power_weight, power_scores = select_power_weight(ds, idx, best[0], best[1])
        if power_weight != best[0]:
            errors[best] = fold_errors(ds, folds, best[0], best[1], power_weight)
    choice = choose_interval_rule(ds, folds, errors[best], best[0], best[1], power_weight)
    ridge, ridge_scores = math.inf, {}
    known: float | None = None
    known_scores: dict[float, float] = {}
    if machine_effect:
        fits = [fitted for _, fitted in fold_fits(ds, folds, best[0], best[1], power_weight)]
        ridge, ridge_scores = choose_machine_ridge(ds, folds, fits)
        known, known_scores = choose_known_host_factor(ds, folds, fits, choice, ridge)
    return Selection(
        best[0],
        best[1],
        choice.log_q90,
        scores,
        choice,
        power_weight,
        power_scores,
        rule,
        rule_scores,
        ridge,
        ridge_scores,
        known,
        known_scores,
    )
