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
  evaluation).
* ``--reduced``: the simulated entries chosen before ``offsets`` existed are fixed at the shipped file's
  values; ``offsets`` and the reweighed entries (``length_prior``, ``spread_power``) are selected (minutes
  instead of an hour; the fixed entries were themselves chosen on the tuning part only).
* ``kappa_low`` / ``kappa_high`` (the interval's model-error spreads, downward and upward) are fitted,
  never chosen on what they are scored on: on each side the smallest value on a 0.01 grid that leaves the
  truth beyond that side of the interval for at most 5 % of the forecasts of the fitting set (every group,
  benchmark or kind, weighing the same; split-conformal) and at most 5 % of every group's forecasts.
* Nested: for every grid point and every tuning group, ``kappa`` is fitted on the other groups and the
  forecasts of the held-out group are scored: ``|log(predicted / true)|`` plus the log-scale interval score
  of a 90 % interval (``log(high / low) + 20 x`` the log distance by which the truth falls outside), a run
  not answered scoring ``2 log 2`` for the point and for the interval; groups weigh the same. The best
  grid point wins; its ``kappa`` pair is refitted on the whole tuning part.

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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.step.stop import PARAMS_FILE, StopParams, predictive, raw_stop_samples, summarise  # noqa: E402
from tools.stop_data import Curve, generated, load_mlperf, parts  # noqa: E402
from tools.stop_shapes import shaped_curves  # noqa: E402

FRACTIONS = (0.25, 0.5, 0.75)
GRID = {
    "recency": (0.0, 0.5),
    "min_evaluations": (2, 3),
    "noise_floor": (0.0, 1.0),
    "bootstrap": (False, True),
    "horizon_factor": (10.0, 30.0),
    "length_prior": (0.0, 1.0, 1.5, 2.0, 3.0),
    "shapes": (False, True),
    "spread_power": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "offsets": (False, True),
}
REWEIGHED = ("length_prior", "spread_power")  # grid entries that reuse the simulated stops of the others
FREE_WHEN_REDUCED = ("offsets",)  # simulated entries still searched by --reduced (added after its fixed ones)
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


def forecast_points(curve: Curve, fractions: tuple[float, ...]) -> list[int]:
    """Evaluations seen at each fraction of the run (only points before the stop)."""
    return [t for t in (max(math.ceil(f * curve.stop), 1) for f in fractions) if t < curve.stop]


def records(
    curves: list[Curve], params: StopParams, fractions: tuple[float, ...] = FRACTIONS
) -> list[Record]:
    """Simulate every curve at every forecast point."""
    out = []
    for curve in curves:
        for seen in forecast_points(curve, fractions):
            z = curve.rule.sign * curve.values[:seen]
            simulated = raw_stop_samples(curve.rule, curve.state_after(seen), z, params, seed=0)
            raw = None if simulated is None else simulated[0]
            out.append(Record(curve.group, seen, curve.stop, raw, curve, params))
    return out


Kappa = tuple[float, float]


_INTERVALS: dict[tuple[int, Kappa], tuple[int | None, int | None, int | None]] = {}


def interval(record: Record, kappa: Kappa) -> tuple[int | None, int | None, int | None]:
    """(predicted, low, high) of one record under ``kappa`` (downward, upward); memoised while the record
    lives (the bisections of every held-out group ask for the same pairs; :func:`select` clears it)."""
    key = (id(record), kappa)
    if key not in _INTERVALS:
        _INTERVALS[key] = _interval(record, kappa)
    return _INTERVALS[key]


def _interval(record: Record, kappa: Kappa) -> tuple[int | None, int | None, int | None]:
    if record.raw is None:
        return None, None, None
    return summarise(
        predictive(record.raw, record.seen, record.curve.rule, record.params, 0, kappa), record.seen
    )


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


def nested_score(recs: list[Record]) -> float:
    """Leave-one-group-out: ``kappa`` fitted on the others, the held-out group scored; groups weigh 1."""
    groups = sorted({r.group for r in recs})
    scores = []
    for held in groups:
        kappa = fit_kappa([r for r in recs if r.group != held])
        scores.append(float(np.mean([score(r, kappa) for r in recs if r.group == held])))
    return float(np.mean(scores))


def select(
    curves: list[Curve], verbose: bool = True, fixed: StopParams | None = None
) -> tuple[StopParams, dict[str, object]]:
    """Nested selection on ``curves`` (the tuning part): the chosen params and a summary. With ``fixed``,
    the simulated grid entries but ``FREE_WHEN_REDUCED`` are taken from it."""
    results = []
    simulated = [k for k in GRID if k not in REWEIGHED]
    grid = dict(GRID)
    if fixed is not None:
        grid.update({k: (getattr(fixed, k),) for k in simulated if k not in FREE_WHEN_REDUCED})
    for values in itertools.product(*(grid[k] for k in simulated)):
        base = dataclasses.replace(StopParams(), **dict(zip(simulated, values, strict=True)))
        base_recs = records(curves, base)
        for extra in itertools.product(*(GRID[k] for k in REWEIGHED)):
            params = dataclasses.replace(base, **dict(zip(REWEIGHED, extra, strict=True)))
            recs = [dataclasses.replace(r, params=params) for r in base_recs]
            _INTERVALS.clear()
            s = nested_score(recs)
            results.append((s, values + extra, params, recs))
            if verbose:
                chosen = {k: getattr(params, k) for k in GRID}
                print(f"  {chosen}: nested score {s:.4f}", flush=True)
    best_score, _, best_params, best_recs = min(results, key=lambda item: item[0])
    _INTERVALS.clear()
    kappa = fit_kappa(best_recs)
    chosen = dataclasses.replace(best_params, kappa_low=kappa[0], kappa_high=kappa[1])
    summary: dict[str, object] = {
        "nested_score": round(best_score, 4),
        "grid": {k: list(v) for k, v in grid.items()},
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
        "--reduced", action="store_true", help="keep the shipped simulated entries but FREE_WHEN_REDUCED"
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
