"""The interval rule and the host factor H, chosen by nested selection (``choose_interval_rule``): pooled
(rule, H) candidates and regime-conditional (Mondrian) ones, and the ``IntervalConstants`` the choice ships
(``chosen_constants``).

Research/fitting code (not part of the runtime package); the rules' constants come from
``tools/pre_quantiles.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.errors import EstimationError
from lightning_energy.pre import physics
from lightning_energy.pre.model import IntervalConstants, host_log_term
from tools.pre_dataset import MIN_TRAIN_RUNS, Dataset
from tools.pre_params import Fitted, Fold, FoldErrors, fold_fits, group_folds
from tools.pre_quantiles import (
    GROUP_QUANTILE,
    INFLATED,
    INTERVAL_RULES,
    RANDOM_EFFECTS,
    TARGET_COVERAGE,
    coverage_inflation,
    interval_q90,
    random_effects_q90,
    regime_errors,
    without_host,
)


@dataclass(frozen=True)
class IntervalChoice:
    """The interval rule chosen by nested selection (``choose_interval_rule``) and what it was chosen on."""

    rule: str
    #: the chosen rule's constant on all group folds: ``model_log_q90``
    log_q90: float
    #: every rule's constant on all group folds
    values: dict[str, float]
    #: every rule's coverage of the groups held out once more (group-averaged), and its median constant there
    inner_coverage: dict[str, float]
    inner_log_q90: dict[str, float]
    #: held-out groups the choice was made on, and the inflation of ``INFLATED`` on all of them
    groups: int
    inflation: float
    #: the chosen host factor H (1: no host term; ``host_log_term``)
    host_factor: float = 1.0
    #: every (rule, H) pair's group-averaged coverage and median half-width on the groups held out once more
    pair_scores: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    #: machines (GPUs) with host/launch-bound runs the choice saw (``host_bound_machines``); with fewer than
    #: two the spread of hosts between machines cannot be judged and H is the widest candidate
    host_machines: int = 0
    #: the best regime-conditional (Mondrian) candidate, with its constants on all group folds (None: too
    #: few groups to judge), and whether it was chosen over the pooled (``rule``, ``host_factor``) above
    regime: RegimeRule | None = None
    by_regime: bool = False
    #: every regime candidate's score and median half-width, as ``pair_scores``
    regime_scores: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """The chosen interval, e.g. ``random effects, H=3`` or ``group quantile by regime, H=1.5/3``."""
        if self.by_regime and self.regime is not None:
            return self.regime.label
        return f"{self.rule}, H={self.host_factor:g}"


#: Candidate factors H for the host term (``host_log_term``): 1 is no term.
HOST_FACTORS = (1.0, 1.5, 2.0, 3.0)


def fold_host_terms(
    ds: Dataset, folds: Sequence[Fold], fits: Sequence[Fitted], factor: float
) -> list[np.ndarray]:
    """Per fold: the host term of its held-out runs at factor ``factor``, from the fold's own fit."""
    return [
        host_log_term(fitted.theta, ds.subset(test, fitted.trainable), math.log(factor))
        for (_, _, _, test), fitted in zip(folds, fits, strict=True)
    ]


def host_bound_machines(
    folds: Sequence[Fold], errors: Sequence[FoldErrors], gpu_bound: Sequence[np.ndarray]
) -> int:
    """How many machines (GPUs: GAISSA's GPUs each sit in their own host) of the leave-one-GPU-out folds
    hold at least ``MIN_TRAIN_RUNS`` runs on a GPU with measured speed (``errors``' mask) predicted
    host/launch-bound (``gpu_bound`` False: busy share below ``physics.GPU_BOUND_SHARE``, from the fold's
    own fit). The host factor H is about how far an unseen
    machine's host differs from the hosts in the data; only two or more such machines show it."""
    return sum(
        1
        for (kind, _, _, _), (_, keep), bound in zip(folds, errors, gpu_bound, strict=True)
        if kind == "GPU" and int(np.sum(~bound & keep)) >= MIN_TRAIN_RUNS
    )


@dataclass(frozen=True)
class _Judged:
    """One group held out once more, at one host factor: its measured runs' absolute errors without the host
    term, their host terms and predicted regimes (True: GPU-bound), and the constants computed from the group
    folds of the rest: pooled, and per regime (None: the regime's cell is below ``MIN_REGIME_GROUPS``)."""

    errors: np.ndarray
    host: np.ndarray
    gpu_bound: np.ndarray
    base: float
    effects: float
    regime_base: dict[bool, float | None]
    regime_effects: dict[bool, float | None]


def _judged_constants(held: Sequence[_Judged], i: int) -> dict[tuple[str, bool | None], float]:
    """Every rule's constant for group ``i`` of ``held`` (computed without it): pooled (key None) and per
    regime (True: GPU-bound), a regime below its cell's minimum taking the pooled constant. ``INFLATED``'s
    factor comes from the other groups only (per regime: their runs in that regime)."""
    item = held[i]
    others = [x for j, x in enumerate(held) if j != i]
    pooled_k = coverage_inflation([x.errors / x.base for x in others])
    out: dict[tuple[str, bool | None], float] = {
        (GROUP_QUANTILE, None): item.base,
        (RANDOM_EFFECTS, None): item.effects,
        (INFLATED, None): pooled_k * item.base,
    }
    for regime in (True, False):
        base, effects = item.regime_base[regime], item.regime_effects[regime]
        if base is None or effects is None:
            for rule in INTERVAL_RULES:
                out[rule, regime] = out[rule, None]
            continue
        ratios = []
        for x in others:
            inside = x.gpu_bound == regime
            if inside.any():
                constant = x.regime_base[regime]
                ratios.append(x.errors[inside] / (x.base if constant is None else constant))
        k = coverage_inflation(ratios) if ratios else pooled_k
        out[GROUP_QUANTILE, regime] = base
        out[RANDOM_EFFECTS, regime] = effects
        out[INFLATED, regime] = k * base
    return out


@dataclass(frozen=True)
class RegimeRule:
    """A regime-conditional (Mondrian) interval: GPU-bound runs (predicted busy share >=
    ``physics.GPU_BOUND_SHARE``) and host/launch-bound runs each get their own ``q_model`` (the rule applied
    to that regime's held-out runs) and their own host factor H."""

    rule: str
    gpu_bound_log_q90: float
    host_bound_log_q90: float
    gpu_bound_host_factor: float
    host_bound_host_factor: float
    #: whether each regime had its own cell on all folds (False: the pooled rule's constant,
    #: ``MIN_REGIME_GROUPS``)
    gpu_bound_own: bool = True
    host_bound_own: bool = True

    @property
    def label(self) -> str:
        return f"{self.rule} by regime, H={self.gpu_bound_host_factor:g}/{self.host_bound_host_factor:g}"


def _regime_label(rule: str, gpu_factor: float, host_factor: float) -> str:
    return f"{rule} by regime, H={gpu_factor:g}/{host_factor:g}"


def choose_interval_rule(
    ds: Dataset,
    folds: Sequence[Fold],
    errors: Sequence[FoldErrors],
    weight: float,
    overlap: float,
    power_weight: float | None = None,
    host_factors: Sequence[float] = HOST_FACTORS,
) -> IntervalChoice:
    """The interval rule and the host factor, chosen by how well each covers groups it has not seen (nested).

    ``errors`` are the held-out errors of ``folds`` (one group each). For a host factor ``H``
    (``host_factors``; 1 is no host term) the errors are first taken out of the host term
    (``without_host``), then each rule turns them into a constant: ``GROUP_QUANTILE`` (``interval_q90``),
    ``RANDOM_EFFECTS`` (``random_effects_q90``) and ``INFLATED``: ``interval_q90`` x ``k``, with ``k``
    (``coverage_inflation``) the factor that made the rule cover ``TARGET_COVERAGE`` of groups it had not
    seen. Pooled candidates are the (rule, H) pairs; regime-conditional (Mondrian) candidates, (rule,
    H_gpu, H_host), give GPU-bound runs (predicted busy share >= ``physics.GPU_BOUND_SHARE``, from the
    fold's own fit) the rule's constant on the GPU-bound runs only at H_gpu, and the other runs theirs at
    H_host (``regime_errors``: a regime with fewer than ``MIN_REGIME_GROUPS`` folds of ``MIN_TRAIN_RUNS``
    runs takes the pooled constant). To judge the candidates, each group ``g`` of ``folds`` is held out
    once more: each is computed from the group folds of the rest (same prior weight and overlap; for
    ``INFLATED``, ``k`` from the other groups only) and scored on ``g``'s runs on GPUs with measured speed.
    A candidate's score is its coverage averaged over the ``g`` (each weighing 1, as a new group would)
    and, the same way, over the GPU-bound runs and over the other runs of the ``g``: the lowest of the
    three; its width the median over the ``g`` of the median half-width ``sqrt(q**2 + host**2)`` of
    ``g``'s runs. The pooled choice is v5.4's: the narrowest pooled pair whose score reaches
    ``TARGET_COVERAGE``; if none does, the one that scores highest (ties: the first rule, the smallest H).
    The best regime candidate is chosen the same way among the regime candidates (ties: the narrower mean
    over the ``g`` of the mean half-width). It replaces the pooled choice only if it reaches the target and
    is narrower (median, then mean), or if the pooled choice does not reach it and the regime candidate
    scores higher. H is only chosen when the folds hold host/launch-bound runs on two or more machines
    (``host_bound_machines``): from one machine's runs no held-out group shows how far another machine's
    host differs, so every H would look alike and the narrowest would win; with fewer than two the widest
    candidate is used for both regimes (an unseen machine is a new user's situation) and only the rule is
    chosen. With fewer than two groups to judge on: ``GROUP_QUANTILE`` at the smallest H left, pooled.
    Nothing here sees data outside ``folds``: in ``benchmarks/pre_accuracy.py`` the outer fold's group is
    not among them.
    """
    if not host_factors or any(not h >= 1.0 for h in host_factors):
        raise EstimationError(f"host_factors must be factors >= 1, got {host_factors!r}")
    factors = sorted(set(host_factors))
    fits = [fitted for _, fitted in fold_fits(ds, folds, weight, overlap, power_weight)]
    gpu_bound = [
        fitted.predict_log(ds, test)[2] >= physics.GPU_BOUND_SHARE
        for (_, _, _, test), fitted in zip(folds, fits, strict=True)
    ]
    host_machines = host_bound_machines(folds, errors, gpu_bound)
    if host_machines < 2:
        factors = factors[-1:]
    outer_hosts = {h: fold_host_terms(ds, folds, fits, h) for h in factors}
    outer = {h: without_host(errors, outer_hosts[h]) for h in factors}
    held: dict[float, list[_Judged]] = {h: [] for h in factors}
    for (_, _, train, _), (e, keep), g_hosts, bound in zip(
        folds, errors, zip(*(outer_hosts[h] for h in factors), strict=True), gpu_bound, strict=True
    ):
        inner = group_folds(ds, train)
        if not keep.any() or not inner:
            continue
        inner_fits = fold_fits(ds, inner, weight, overlap, power_weight)
        inner_errors = [x for x, _ in inner_fits]
        inner_bound = [
            fitted.predict_log(ds, test)[2] >= physics.GPU_BOUND_SHARE
            for (_, _, _, test), (_, fitted) in zip(inner, inner_fits, strict=True)
        ]
        judged = []
        for h, host in zip(factors, g_hosts, strict=True):
            hosts = fold_host_terms(ds, inner, [f for _, f in inner_fits], h)
            normalised = without_host(inner_errors, hosts)
            base, effects = interval_q90(normalised), random_effects_q90(normalised)
            if math.isnan(base) or base <= 0 or math.isnan(effects):
                break
            regime_base: dict[bool, float | None] = {}
            regime_effects: dict[bool, float | None] = {}
            for bound_cell in (True, False):
                cell = regime_errors(normalised, inner_bound, bound_cell)
                cell_q = interval_q90(cell) if cell is not None else math.nan
                cell_r = random_effects_q90(cell) if cell is not None else math.nan
                usable = not (math.isnan(cell_q) or cell_q <= 0 or math.isnan(cell_r))
                regime_base[bound_cell] = cell_q if usable else None
                regime_effects[bound_cell] = cell_r if usable else None
            ((a, _),) = without_host([(e, keep)], [host])
            judged.append(
                (
                    h,
                    _Judged(
                        np.abs(a[keep]), host[keep], bound[keep], base, effects, regime_base, regime_effects
                    ),
                )
            )
        else:
            for h, item in judged:
                held[h].append(item)
    n_held = len(held[factors[0]])
    inflations = {
        h: coverage_inflation([x.errors / x.base for x in held[h]]) if held[h] else 1.0 for h in factors
    }
    values_by = {
        h: {
            GROUP_QUANTILE: interval_q90(outer[h]),
            RANDOM_EFFECTS: random_effects_q90(outer[h]),
            INFLATED: inflations[h] * interval_q90(outer[h]),
        }
        for h in factors
    }
    coverage: dict[tuple[str, float], float] = {}
    median_q: dict[tuple[str, float], float] = {}
    median_width: dict[tuple[str, float], float] = {}
    pairs = [(rule, h) for h in factors for rule in INTERVAL_RULES]
    triples = [(rule, hg, hh) for hg in factors for hh in factors for rule in INTERVAL_RULES]
    # per candidate (rule, H for GPU-bound runs, H for the others, by regime): score, median and mean width
    scored: dict[tuple[str, float, float, bool], tuple[float, float, float]] = {}
    regime: RegimeRule | None = None
    by_regime = False
    if n_held >= 2:
        consts = {h: [_judged_constants(held[h], i) for i in range(n_held)] for h in factors}
        for h in factors:
            for rule in INTERVAL_RULES:
                median_q[rule, h] = float(np.median([c[rule, None] for c in consts[h]]))
        for rule, hg, hh in triples:
            for split in (False, True):
                if not split and hg != hh:
                    continue
                covered: list[float] = []
                widths: list[float] = []
                means: list[float] = []
                by: dict[bool, list[float]] = {True: [], False: []}
                for i in range(n_held):
                    inside = held[hg][i].gpu_bound
                    qs = np.where(
                        inside,
                        consts[hg][i][rule, True if split else None],
                        consts[hh][i][rule, False if split else None],
                    )
                    a = np.where(inside, held[hg][i].errors, held[hh][i].errors)
                    host = np.where(inside, held[hg][i].host, held[hh][i].host)
                    ok = a <= qs
                    covered.append(float(np.mean(ok)))
                    for r in (True, False):
                        if (inside == r).any():
                            by[r].append(float(np.mean(ok[inside == r])))
                    half = np.hypot(qs, host)
                    widths.append(float(np.median(half)))
                    means.append(float(np.mean(half)))
                score = min(float(np.mean(covered)), *(float(np.mean(v)) for v in by.values() if v))
                scored[rule, hg, hh, split] = (score, float(np.median(widths)), float(np.mean(means)))
        for rule, h in pairs:
            coverage[rule, h], median_width[rule, h], _ = scored[rule, h, h, False]
        reaching = [pair for pair in pairs if coverage[pair] >= TARGET_COVERAGE - 1e-12]
        if reaching:
            rule, factor = min(reaching, key=lambda pair: (median_width[pair], pairs.index(pair)))
        else:
            rule, factor = max(pairs, key=lambda pair: (coverage[pair], -pairs.index(pair)))
        pooled = scored[rule, factor, factor, False]
        splits = [(r, hg, hh, True) for r, hg, hh in triples]
        reach = [key for key in splits if scored[key][0] >= TARGET_COVERAGE - 1e-12]
        if reach:
            best = min(reach, key=lambda key: (scored[key][1], scored[key][2], splits.index(key)))
        else:
            best = max(splits, key=lambda key: (scored[key][0], -splits.index(key)))
        regime = _regime_rule(best[0], best[1], best[2], outer, gpu_bound, held, values_by)
        top = scored[best]
        if pooled[0] >= TARGET_COVERAGE - 1e-12:
            by_regime = top[0] >= TARGET_COVERAGE - 1e-12 and (top[1], top[2]) < (pooled[1], pooled[2])
        else:
            by_regime = top[0] > pooled[0]
    else:
        rule, factor = GROUP_QUANTILE, factors[0]
    return IntervalChoice(
        rule,
        values_by[factor][rule],
        values_by[factor],
        {r: coverage[r, factor] for r in INTERVAL_RULES if (r, factor) in coverage},
        {r: median_q[r, factor] for r in INTERVAL_RULES if (r, factor) in median_q},
        n_held,
        inflations[factor],
        factor,
        {f"{r}, H={h:g}": (coverage[r, h], median_width[r, h]) for r, h in pairs if (r, h) in coverage},
        host_machines,
        regime,
        by_regime,
        {_regime_label(r, hg, hh): scored[r, hg, hh, True][:2] for r, hg, hh, split in scored if split},
    )


def _regime_rule(
    rule: str,
    gpu_factor: float,
    host_factor: float,
    outer: dict[float, list[FoldErrors]],
    gpu_bound: Sequence[np.ndarray],
    held: dict[float, list[_Judged]],
    values_by: dict[float, dict[str, float]],
) -> RegimeRule:
    """The constants of the regime candidate (``rule``, H_gpu, H_host) on all of the folds' errors
    (``outer``, per H); ``INFLATED``'s factor from the regime's runs of the groups held out once more."""
    constants: dict[bool, tuple[float, bool]] = {}
    for regime, h in ((True, gpu_factor), (False, host_factor)):
        cell = regime_errors(outer[h], gpu_bound, regime)
        q = math.nan
        if cell is not None:
            if rule == RANDOM_EFFECTS:
                q = random_effects_q90(cell)
            else:
                q = interval_q90(cell)
                if rule == INFLATED:
                    ratios = []
                    for x in held[h]:
                        inside = x.gpu_bound == regime
                        if inside.any():
                            constant = x.regime_base[regime]
                            ratios.append(x.errors[inside] / (x.base if constant is None else constant))
                    q *= coverage_inflation(ratios) if ratios else 1.0
        own = not (math.isnan(q) or q <= 0)
        constants[regime] = (q, True) if own else (values_by[h][rule], False)
    return RegimeRule(
        rule,
        constants[True][0],
        constants[False][0],
        gpu_factor,
        host_factor,
        constants[True][1],
        constants[False][1],
    )


def _log_factor(factor: float) -> float | None:
    return math.log(factor) if factor > 1.0 else None


def pooled_constants(
    choice: IntervalChoice, repeat_sigma: float, rule: str | None = None
) -> IntervalConstants:
    """The pooled interval: ``rule``'s constant (default the pooled choice's) at the pooled choice's H."""
    return IntervalConstants(
        model_log_q90=choice.values[choice.rule if rule is None else rule],
        repeat_log_sigma=repeat_sigma,
        host_log_factor=_log_factor(choice.host_factor),
    )


def regime_constants(choice: IntervalChoice, repeat_sigma: float) -> IntervalConstants:
    """The best regime-conditional candidate's interval (``choice.regime``); ``model_log_q90`` keeps the
    pooled choice's constant (unused while both regime constants are set)."""
    regime = choice.regime
    if regime is None:
        raise EstimationError("the choice holds no regime candidate (too few groups to judge on)")
    same = regime.gpu_bound_host_factor == regime.host_bound_host_factor
    return IntervalConstants(
        model_log_q90=choice.log_q90,
        repeat_log_sigma=repeat_sigma,
        gpu_bound_log_q90=regime.gpu_bound_log_q90,
        host_bound_log_q90=regime.host_bound_log_q90,
        host_log_factor=_log_factor(regime.host_bound_host_factor),
        gpu_bound_host_log_factor=None if same else math.log(regime.gpu_bound_host_factor),
    )


def chosen_constants(choice: IntervalChoice, repeat_sigma: float) -> IntervalConstants:
    """The interval constants the selection chose: the regime candidate's when ``choice.by_regime``, else the
    pooled choice's."""
    if choice.by_regime:
        return regime_constants(choice, repeat_sigma)
    return pooled_constants(choice, repeat_sigma)
