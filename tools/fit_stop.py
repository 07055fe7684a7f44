"""Choose the stop forecaster's constants on the tuning part by nested selection; write ``stop_params.json``.

Research/fitting code (not part of the runtime package). Data: :mod:`tools.stop_data` (MLPerf curves split
by benchmark, generated curves split by kind) and :mod:`tools.stop_shapes` (generated curves that jump, rise
late or warm up, split by kind); only the tuning part is read here.

* Grid (chosen by nested selection): ``recency`` (0 or 0.5), ``min_evaluations`` (2 or 3),
  ``noise_floor`` (0 or 1), ``bootstrap`` (normal noise or resampled residuals) and ``horizon_factor``
  (futures simulated up to 10 or 30 x the evaluations seen: how far the forecaster looks before it says
  it cannot tell) and ``length_prior`` (0, 1, 1.5, 2 or 3: the prior ``(seen / T) ^ length_prior`` on the
  run's length ``T``; it reweighs the simulated stops and needs no new simulation) and ``shapes`` (whether
  the ``sigmoid`` and ``jump`` families, for delayed rises and jumps, are fitted too) and ``spread_power``
  (-1, -0.5, 0, 0.5 or 1: the spreads scaled by the run's own spread of simulated stops to that power; 0
  is one spread for every run; no new simulation either) and ``offsets`` (whether ``power``, ``log`` and
  ``drift`` are also fitted with their origin before the first evaluation: a curve seen from a late first
  evaluation) and ``noise_memory`` (whether the futures' noise is a first-order autoregression started at
  the last residual, its lag-1 correlation estimated from the run's own residuals, instead of independent:
  when a noisy curve first crosses a threshold depends on how its noise is correlated) and
  ``holdout_weight`` (0 or 1: whether the fitted families are reweighed by how well each, fitted to the
  run's first two thirds, forecasts its last third; 3 was tried first at one grid point on the tuning
  part, ``length_prior = 3`` with the shipped correction spec, and scored worse than 1: 1.552 against
  1.512) and ``series_noise`` (whether the futures' noise is the series' own evaluation-to-evaluation
  noise, a robust scale of its recent third differences, instead of each fitted pair's residual standard
  deviation, which also holds the fit's lack of fit).
* ``--reduced``: every simulated entry but ``FREE_WHEN_REDUCED`` (none now) and ``spread_power`` are
  fixed at the shipped file's values (each was chosen earlier by this selection on the tuning part:
  ``noise_memory`` off and ``holdout_weight`` 1, then ``series_noise`` off); ``length_prior`` and the
  correction are selected (no new simulation beyond the one grid point's).
* The learned correction (``StopParams.correction``, :func:`lightning_energy.step.stop_calibration.correct`):
  whether to re-centre the simulated stops, with which features (``CORRECTION_SPECS``: the intercept alone,
  i.e. a fixed share of the run seen; then the forecast's own median; then the curve model's median without
  the length prior; or the forecast's median with a slope that depends on the run's misfit ratio, the fits'
  residual standard deviation over the series' own noise, then with the misfit and whether it could be
  computed as intercepts, then with a slope of its own where it could not) and how strong a ridge penalty. A
  feature a spec leaves out gets the coefficient 0. Its coefficients are fitted, never chosen on what they are
  scored on: a group-weighted least-absolute-deviation ridge regression (on standardised features) of
  ``log(remaining / seen)`` over the forecasts of the fitting set at ``TRAIN_FRACTIONS`` of every run (evenly
  spread over the run, as a forecast is asked at every evaluation). It reuses the simulated stops (no new
  simulation).
* ``kappa_low`` / ``kappa_high`` (the interval's model-error spreads, downward and upward) are fitted,
  never chosen on what they are scored on: on each side the smallest value on a 0.01 grid that leaves the
  truth beyond that side of the interval for at most 5 % of the forecasts of the fitting set (every group,
  benchmark or kind, weighing the same; split-conformal) and at most 5 % of every group's forecasts.
* Nested: for every grid point and every tuning group, ``kappa`` is fitted on the other groups and the
  forecasts of the held-out group are scored: ``|log(predicted / true)|`` plus the log-scale interval score
  of a 90 % interval (``log(high / low) + 20 x`` the log distance by which the truth falls outside), a run
  not answered scoring ``2 log 2`` for the point and for the interval; groups weigh the same. With a
  correction, it is fitted on the other groups first, then ``kappa``. The best grid point wins; its
  correction, then its ``kappa`` pair, are refitted on the whole tuning part.

Run: ``python tools/fit_stop.py [--reduced] [--out PATH]`` (default:
``lightning_energy/step/stop_params.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.step.stop import StopParams  # noqa: E402
from lightning_energy.step.stop_calibration import (  # noqa: E402
    calibrate,
    centred,
    correction_features,
    summarise,
    weigh_by_length,
)
from lightning_energy.step.stop_noise import misfit_ratio  # noqa: E402
from lightning_energy.step.stop_params import CORRECTION_FEATURES, PARAMS_FILE  # noqa: E402
from lightning_energy.step.stop_simulation import horizon, raw_stop_samples  # noqa: E402
from tools.stop_data import Curve, generated, load_mlperf, parts  # noqa: E402
from tools.stop_shapes import shaped_curves  # noqa: E402

FRACTIONS = (0.25, 0.5, 0.75)  # where the forecasts are scored (and kappa fitted)
TRAIN_FRACTIONS = tuple(k / 8 for k in range(1, 8))  # where the correction is fitted (holds FRACTIONS)
GRID: dict[str, tuple[Any, ...]] = {
    "recency": (0.0, 0.5),
    "min_evaluations": (2, 3),
    "noise_floor": (0.0, 1.0),
    "bootstrap": (False, True),
    "horizon_factor": (10.0, 30.0),
    "length_prior": (0.0, 1.0, 1.5, 2.0, 3.0),
    "shapes": (False, True),
    "spread_power": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "offsets": (False, True),
    "noise_memory": (False, True),
    "holdout_weight": (0.0, 1.0),
    "series_noise": (False, True),
}
REWEIGHED = ("length_prior", "spread_power")  # grid entries that reuse the simulated stops of the others
FIXED_WHEN_REDUCED = ("spread_power",)  # reweighed entries --reduced fixes too (with every simulated one)
FREE_WHEN_REDUCED: tuple[str, ...] = ()  # simulated entries --reduced still searches
# The learned correction: None (off) or (features used, ridge penalty); no feature is the intercept alone
# (the ridge does not touch the intercept: one entry). The misfit specs: the forecast's median with a slope
# that depends on the log misfit ratio, then the log misfit and the indicator that it could not be computed
# as intercepts, then a slope of its own on the forecast's median where it could not.
Spec = tuple[tuple[str, ...], float]
MEDIANS = ("prior_median", "model_median")
MISFIT_SLOPE = ("prior_median", "prior_median_x_log_misfit")
MISFIT_LEVEL = (*MISFIT_SLOPE, "log_misfit", "no_misfit")
MISFIT_OWN = (*MISFIT_LEVEL, "prior_median_x_no_misfit")
CORRECTION_SPECS: tuple[Spec | None, ...] = (
    None,
    ((), 1.0),
    *((MEDIANS[:k], ridge) for k in (1, 2) for ridge in (1.0, 3.0, 10.0)),
    *((used, ridge) for used in (MISFIT_SLOPE, MISFIT_LEVEL, MISFIT_OWN) for ridge in (1.0, 3.0, 10.0)),
)
LAD_ITERATIONS = 30  # iteratively reweighed least squares for the least-absolute-deviation fit
LAD_EPSILON = 0.05  # residuals below this weigh as this (the reweighing's smoothing)
KAPPAS = tuple(round(0.01 * i, 2) for i in range(0, 301))
MISS_WEIGHT = 2.0 / 0.1
UNANSWERED = 2.0 * math.log(2.0)
COVERAGE = 0.9
GROUP_COVERAGE = 0.9  # and every group of the fitting set too: an interval called 90 % holds per group


@dataclass(frozen=True)
class Record:
    """The raw simulated stops of one curve at one point of its run."""

    group: str
    seen: int
    truth: int
    raw: np.ndarray | None
    curve: Curve
    params: StopParams
    scored: bool = True  # at one of FRACTIONS (else only fits the correction)
    misfit: float | None = None  # the fits' misfit ratio (stop_noise.misfit_ratio; None: not computable)


def forecast_points(curve: Curve, fractions: tuple[float, ...]) -> list[int]:
    """Evaluations seen at each fraction of the run (only points before the stop)."""
    return [t for t in (max(math.ceil(f * curve.stop), 1) for f in fractions) if t < curve.stop]


def records(
    curves: list[Curve],
    params: StopParams,
    fractions: tuple[float, ...] = FRACTIONS,
    train: tuple[float, ...] = (),
) -> list[Record]:
    """Simulate every curve at every forecast point (at ``fractions``, scored; and at ``train``)."""
    out = []
    for curve in curves:
        scored = set(forecast_points(curve, fractions))
        for seen in sorted(scored | set(forecast_points(curve, train))):
            z = curve.rule.sign * curve.values[:seen]
            simulated = raw_stop_samples(curve.rule, curve.state_after(seen), z, params, seed=0)
            raw, misfit = (None, None) if simulated is None else (simulated[0], misfit_ratio(simulated[1], z))
            out.append(Record(curve.group, seen, curve.stop, raw, curve, params, seen in scored, misfit))
    return out


def features(record: Record) -> np.ndarray:
    """The correction's features of one answered record (under its params' length prior)."""
    assert record.raw is not None
    ordered = np.sort(record.raw)
    limit = float(record.seen + horizon(record.curve.rule, record.seen, record.params))
    weighed = weigh_by_length(ordered, record.seen, record.params.length_prior, limit)
    return correction_features(ordered, weighed, record.seen, limit, misfit=record.misfit)


def fit_correction(recs: list[Record], spec: Spec) -> tuple[float, ...]:
    """The correction's coefficients (intercept first, raw feature units, one for each feature of
    ``CORRECTION_FEATURES`` up to the last one used, 0 for those left out) fitted on the answered ``recs``:
    a least-absolute-deviation ridge regression of ``log(remaining / seen)`` on the standardised features
    ``spec[0]``, penalty ``spec[1]`` (the intercept is not penalised), every group weighing the same."""
    names, ridge = spec
    columns = [CORRECTION_FEATURES.index(name) for name in names]
    used = len(columns)
    answered = [r for r in recs if r.raw is not None]
    x = np.array([features(r)[columns] for r in answered]).reshape(len(answered), used)
    y = np.array([math.log((r.truth - r.seen) / r.seen) for r in answered])
    group_w = _group_weights(answered)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    design = np.column_stack([np.ones(len(answered)), (x - mean) / scale])
    penalty = ridge * np.eye(used + 1)
    penalty[0, 0] = 0.0
    w = group_w.copy()
    beta = np.zeros(used + 1)
    for _ in range(LAD_ITERATIONS):
        beta = np.linalg.solve(design.T @ (design * w[:, None]) + penalty, design.T @ (w * y))
        w = group_w / np.maximum(np.abs(y - design @ beta), LAD_EPSILON)
    slopes = beta[1:] / scale
    coef = np.zeros(1 + max(columns, default=-1) + 1)
    coef[0] = beta[0] - slopes @ mean
    coef[1 + np.array(columns, dtype=int)] = slopes
    return tuple(float(c) for c in coef)


def corrected(recs: list[Record], coef: tuple[float, ...]) -> list[Record]:
    """The records under the correction ``coef`` (new objects: the memo of intervals is per object)."""
    return [dataclasses.replace(r, params=dataclasses.replace(r.params, correction=coef)) for r in recs]


Kappa = tuple[float, float]


# Memos keyed by the record's id; each entry holds the record itself, so that its id cannot be reused by
# another object while the entry lives (a stale hit after a record was freed made a test flaky).
_INTERVALS: dict[tuple[int, Kappa], tuple[Record, tuple[int | None, int | None, int | None]]] = {}
_CENTRED: dict[int, tuple[Record, tuple[np.ndarray, float]]] = {}


def interval(record: Record, kappa: Kappa) -> tuple[int | None, int | None, int | None]:
    """(predicted, low, high) of one record under ``kappa`` (downward, upward); memoised while the record
    lives (the bisections of every held-out group ask for the same pairs; :func:`select` clears it)."""
    key = (id(record), kappa)
    entry = _INTERVALS.get(key)
    if entry is None or entry[0] is not record:
        entry = _INTERVALS[key] = (record, _interval(record, kappa))
    return entry[1]


def _interval(record: Record, kappa: Kappa) -> tuple[int | None, int | None, int | None]:
    """``summarise(predictive(...))`` of the forecaster, with the kappa-free part (:func:`centred`) kept
    per record (cleared with the intervals)."""
    if record.raw is None:
        return None, None, None
    entry = _CENTRED.get(id(record))
    if entry is None or entry[0] is not record:
        entry = _CENTRED[id(record)] = (
            record,
            centred(record.raw, record.seen, record.curve.rule, record.params, misfit=record.misfit),
        )
    weighed, factor = entry[1]
    pair = (kappa[0] * factor, kappa[1] * factor)
    return summarise(calibrate(weighed, record.seen, record.curve.rule, pair, 0), record.seen)


def clear_memo() -> None:
    """Forget the memoised intervals (records are keyed by object id: call when records are dropped)."""
    _INTERVALS.clear()
    _CENTRED.clear()


def _group_weights(recs: list[Record]) -> np.ndarray:
    counts: dict[str, int] = {}
    for r in recs:
        counts[r.group] = counts.get(r.group, 0) + 1
    return np.array([1.0 / counts[r.group] for r in recs])


def _side_ok(recs: list[Record], kappa: Kappa, side: int) -> bool:
    """Whether the truth is not beyond the interval's ``side`` (0: low, 1: high) often enough: overall
    (group-weighted, conformal) and in every group."""
    weights = _group_weights(recs)
    n = len(recs)
    target = min(math.ceil((n + 1) * (1.0 - (1.0 - COVERAGE) / 2.0)) / n, 1.0)
    group_target = 1.0 - (1.0 - GROUP_COVERAGE) / 2.0
    ok = np.empty(n, dtype=bool)
    for i, r in enumerate(recs):
        _, low, high = interval(r, kappa)
        ok[i] = (low is not None and r.truth >= low) if side == 0 else (high is None or r.truth <= high)
    groups = np.array([r.group for r in recs])
    worst = min(float(ok[groups == g].mean()) for g in set(groups))
    return float(weights @ ok) / float(weights.sum()) >= target - 1e-12 and worst >= group_target - 1e-12


def fit_kappa(recs: list[Record]) -> Kappa:
    """Smallest (downward, upward) spreads, each side by bisection on a 0.01 grid, whose answered intervals
    leave the truth beyond a side for at most 5 % of the records (group-weighted, conformal) and of every
    group's records."""
    answered = [r for r in recs if interval(r, (0.0, 0.0))[0] is not None]
    if not answered:
        return (0.0, 0.0)
    kappa = [0.0, 0.0]
    for _ in range(2):  # the sides barely interact; a second pass settles them
        for side in (0, 1):
            lo, hi = 0, len(KAPPAS) - 1
            while lo < hi:
                mid = (lo + hi) // 2
                trial = list(kappa)
                trial[side] = KAPPAS[mid]
                if _side_ok(answered, (trial[0], trial[1]), side):
                    hi = mid
                else:
                    lo = mid + 1
            kappa[side] = KAPPAS[lo]
    return (kappa[0], kappa[1])


def score(record: Record, kappa: Kappa) -> float:
    """Point error plus the log-scale interval score (lower is better)."""
    mid, low, high = interval(record, kappa)
    if mid is None or low is None:
        return UNANSWERED + UNANSWERED
    truth = float(record.truth)
    top = float(high) if high is not None else 10.0 * truth
    s = abs(math.log(mid / truth)) + math.log(top / low)
    if truth < low:
        s += MISS_WEIGHT * math.log(low / truth)
    if truth > top:
        s += MISS_WEIGHT * math.log(truth / top)
    return s


def nested_score(recs: list[Record], spec: Spec | None = None) -> float:
    """Leave-one-group-out: the correction (``spec``; ``None``: none) then ``kappa`` fitted on the others,
    the held-out group's scored records scored; groups weigh 1."""
    groups = sorted({r.group for r in recs})
    scores = []
    for held in groups:
        mine = recs
        if spec is not None:
            clear_memo()
            mine = corrected(recs, fit_correction([r for r in recs if r.group != held], spec))
        scored = [r for r in mine if r.scored]
        kappa = fit_kappa([r for r in scored if r.group != held])
        scores.append(float(np.mean([score(r, kappa) for r in scored if r.group == held])))
    return float(np.mean(scores))


def select(
    curves: list[Curve], verbose: bool = True, fixed: StopParams | None = None
) -> tuple[StopParams, dict[str, object]]:
    """Nested selection on ``curves`` (the tuning part): the chosen params and a summary. With ``fixed``
    (``--reduced``), the simulated grid entries and ``FIXED_WHEN_REDUCED`` are taken from it."""
    results = []
    simulated = [k for k in GRID if k not in REWEIGHED]
    grid = dict(GRID)
    if fixed is not None:
        kept = [k for k in (*simulated, *FIXED_WHEN_REDUCED) if k not in FREE_WHEN_REDUCED]
        grid.update({k: (getattr(fixed, k),) for k in kept})
    for values in itertools.product(*(grid[k] for k in simulated)):
        base = dataclasses.replace(StopParams(), **dict(zip(simulated, values, strict=True)))
        base_recs = records(curves, base, FRACTIONS, TRAIN_FRACTIONS)
        for extra in itertools.product(*(grid[k] for k in REWEIGHED)):
            params = dataclasses.replace(base, **dict(zip(REWEIGHED, extra, strict=True)))
            recs = [dataclasses.replace(r, params=params) for r in base_recs]
            for spec in CORRECTION_SPECS:
                clear_memo()
                s = nested_score(recs, spec)
                results.append((s, params, recs, spec))
                if verbose:
                    point = {k: getattr(params, k) for k in GRID}
                    print(f"  {point} correction {spec}: nested score {s:.4f}", flush=True)
    best_score, best_params, best_recs, best_spec = min(results, key=lambda item: item[0])
    clear_memo()
    coef = () if best_spec is None else fit_correction(best_recs, best_spec)
    final = corrected(best_recs, coef)
    kappa = fit_kappa([r for r in final if r.scored])
    chosen = dataclasses.replace(best_params, correction=coef, kappa_low=kappa[0], kappa_high=kappa[1])
    summary: dict[str, object] = {
        "nested_score": round(best_score, 4),
        "grid": {k: list(v) for k, v in grid.items()},
        "correction": None if best_spec is None else {"features": list(best_spec[0]), "ridge": best_spec[1]},
        "correction_specs": [None if c is None else [list(c[0]), c[1]] for c in CORRECTION_SPECS],
        "tuning_groups": sorted({c.group for c in curves}),
        "tuning_runs": len(curves),
    }
    return chosen, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=PARAMS_FILE)
    parser.add_argument(
        "--reduced",
        action="store_true",
        help="keep the shipped simulated entries (but FREE_WHEN_REDUCED) and FIXED_WHEN_REDUCED",
    )
    args = parser.parse_args(argv)
    curves = load_mlperf() + generated() + shaped_curves()
    _, tune = parts(curves)
    if not any(c.source == "mlperf" for c in tune):
        raise SystemExit("the MLPerf curves are missing (../shared/data/mlperf): cannot fit")
    params, summary = select(tune, fixed=StopParams.shipped() if args.reduced else None)
    out = {"params": dataclasses.asdict(params), "selection": summary}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}: {out['params']}")


if __name__ == "__main__":
    main()
