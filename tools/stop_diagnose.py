"""Where the stop forecaster goes wrong on real curves: a diagnostic on the TUNING part only.

Research code (not part of the runtime package, not a test). For every MLPerf benchmark of the tuning part
(:func:`tools.stop_data.parts`; the reporting benchmarks are never read here) it prints, at 25 / 50 / 75 %
of each run:

* the signed error of the forecast, ``log(predicted / true)`` (positive: the stop is predicted too late),
  its median, the share too early / too late, and the median ``|predicted - true| / true``;
* the same for the curve model alone (the raw simulated stops' median, before the length prior and the
  calibration), so that the length prior's pull is seen apart from the curve model's;
* the share of simulated futures that do not stop within the horizon (the fitted curves saturate short of
  the threshold);
* which family carries the most weight, and its origin offset;
* the curve's x-axis as the log records it (``epoch_num``: epochs or samples): whether evaluations are
  evenly spaced (the forecaster counts evaluations) and how far the first evaluation lies from the start of
  training, in evaluation spacings (``first / spacing``: 1 is an evaluation at the end of the first
  interval; 4 means three intervals of training before it);
* the noise of the full curve around its best single fit: lag-1 autocorrelation and excess kurtosis of the
  residuals (a normal, independent noise model expects about 0 and 0).

Each line is printed for the shipped constants and for every variant named with ``--variant NAME=VALUE``
(a :class:`~lightning_energy.step.stop.StopParams` field, e.g. ``--variant offsets=true``; a tuple as
comma-separated numbers, ``--variant correction=`` for none).
``--generated`` adds the generated tuning kinds (one line each). ``--by-rule`` adds, over the whole tuning
part, the errors by the way each run stopped (a threshold, patience, divergence, the bound) and, for the
threshold stops, by the curve's noise against its distance to the threshold (``noise_scale`` over the gap
between the best value so far and the threshold): where a noisy curve's first crossing is what the forecast
must get right.

Run: ``nice -n 10 .venv/bin/python tools/stop_diagnose.py [--variant offsets=true] [--generated]``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.step.curves import best_fit, fit_curves  # noqa: E402
from lightning_energy.step.stop import StopParams, forecast  # noqa: E402
from lightning_energy.step.stop_noise import noise_scale  # noqa: E402
from lightning_energy.step.stop_simulation import raw_stop_samples  # noqa: E402
from tools.stop_data import MLPERF_CURVES, Curve, generated, load_mlperf, parts  # noqa: E402
from tools.stop_shapes import shaped_curves  # noqa: E402

FRACTIONS = (0.25, 0.5, 0.75)


def progress(path: Path = MLPERF_CURVES) -> dict[str, np.ndarray]:
    """The log's progress counter (``epoch_num``) at every evaluation, per run name (as in ``Curve.name``)."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            name = "/".join((row["benchmark"], row["round"], row["system"], row["run_id"]))
            series[name].append((int(row["eval_idx"]), float(row["epoch_num"])))
    return {k: np.array([p for _, p in sorted(v)]) for k, v in series.items()}


def axis_facts(counter: np.ndarray) -> tuple[float, float]:
    """(first evaluation / median spacing, coefficient of variation of the spacing) of one run."""
    gaps = np.diff(counter)
    if gaps.size == 0:
        return math.nan, math.nan
    spacing = float(np.median(gaps))
    return float(counter[0]) / spacing, float(gaps.std() / gaps.mean())


def noise_facts(curve: Curve) -> tuple[float, float]:
    """(lag-1 autocorrelation, excess kurtosis) of the full curve's residuals around its best fit."""
    z = curve.rule.sign * curve.values
    if z.size < 6:
        return math.nan, math.nan
    fit = best_fit(fit_curves(z, 0.0, 0.0, shapes=True))
    x = np.arange(1, z.size + 1, dtype=float)
    r = z - fit.design(x, z.size) @ fit.coef
    r = r - r.mean()
    sd = float(r.std())
    if sd == 0.0:
        return math.nan, math.nan
    return float(np.sum(r[1:] * r[:-1]) / np.sum(r * r)), float(np.mean(r**4) / sd**4 - 3.0)


@dataclasses.dataclass(frozen=True)
class Point:
    """One forecast: its signed log errors (final, curve model alone), unstopped share and top family."""

    signed: float | None
    raw_signed: float | None
    unstopped: float
    family: str


def point(curve: Curve, seen: int, params: StopParams) -> Point:
    z = curve.rule.sign * curve.values[:seen]
    state = curve.state_after(seen)
    fc = forecast(curve.rule, state, z, params, seed=0)
    simulated = raw_stop_samples(curve.rule, state, z, params, seed=0)
    if simulated is None:
        return Point(None, None, math.nan, "-")
    raw, fits = simulated
    top = best_fit(fits)
    family = top.family + (f"+{top.offset / seen:g}s" if top.offset else "")
    raw_mid = float(np.quantile(raw, 0.5))
    raw_signed = math.log(raw_mid / curve.stop) if math.isfinite(raw_mid) else math.inf
    signed = None if fc.epochs is None else math.log(fc.epochs / curve.stop)
    return Point(signed, raw_signed, float(np.mean(~np.isfinite(raw))), family)


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "inf" if x == math.inf else "—"
    return f"{100 * x:.0f}%" if pct else f"{x:+.2f}"


HEADER = (
    "| group (runs) | variant | at | median log(pred/true) | too early / too late | median abs err "
    "| curve model alone: median log(pred/true) | unstopped futures | top families |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def lines(group: str, curves: list[Curve], label: str, params: StopParams) -> list[str]:
    out = []
    for frac in FRACTIONS:
        pts = []
        for curve in curves:
            seen = max(math.ceil(frac * curve.stop), 1)
            if seen < curve.stop:
                pts.append(point(curve, seen, params))
        answered = [p.signed for p in pts if p.signed is not None]
        raws = [p.raw_signed for p in pts if p.raw_signed is not None]
        if not answered:
            none = f"no answer ({len(pts)} points)"
            out.append(f"| {group} ({len(curves)}) | {label} | {frac:.0%} | {none} |||||")
            continue
        early = np.mean([s < 0 for s in answered])
        late = np.mean([s > 0 for s in answered])
        abs_err = float(np.median([abs(math.exp(s) - 1.0) for s in answered]))
        families = Counter(p.family for p in pts).most_common(2)
        out.append(
            f"| {group} ({len(curves)}) | {label} | {frac:.0%} | {_fmt(float(np.median(answered)))} "
            f"| {_fmt(float(early), True)} / {_fmt(float(late), True)} | {_fmt(abs_err, True)} "
            f"| {_fmt(float(np.median(raws)) if raws else None)} "
            f"| {_fmt(float(np.nanmean([p.unstopped for p in pts])), True)} "
            f"| {', '.join(f'{f} ({n})' for f, n in families)} |"
        )
    return out


NOISE_TO_GAP_BANDS = ((0.0, 0.05), (0.05, 0.2), (0.2, 1.0), (1.0, math.inf))


def stopped_by(curve: Curve) -> str:
    """How the run stopped: ``bound`` when it ran to its bound, else its rule's first criterion."""
    rule = curve.rule
    if rule.max_evaluations is not None and curve.stop >= rule.max_evaluations:
        return "bound"
    if rule.stopping_threshold is not None:
        return "threshold"
    if rule.divergence_threshold is not None:
        return "divergence"
    return "patience"


def noise_to_gap(curve: Curve, seen: int) -> float:
    """The curve's robust noise over the distance of its best value so far to the threshold (NaN: no
    threshold or fewer than 4 evaluations)."""
    if curve.rule.stopping_threshold is None or seen < 4:
        return math.nan
    z = curve.rule.sign * curve.values[:seen]
    gap = float(z.min()) - curve.rule.sign * curve.rule.stopping_threshold
    return noise_scale(z) / max(gap, 1e-12)


def _summary(errors: list[float]) -> str:
    e = np.array(errors)
    rel = np.abs(np.exp(e) - 1.0)
    return (
        f"{len(e)} | {_fmt(float(np.median(e)))} | {_fmt(float(np.median(rel)), True)} "
        f"| {_fmt(float(np.quantile(rel, 0.9)), True)} |"
    )


def rule_lines(tune: list[Curve], params: StopParams) -> list[str]:
    """Errors over the tuning part by the way each run stopped, then threshold stops by noise-to-gap."""
    rows = []
    for curve in tune:
        for frac in FRACTIONS:
            seen = max(math.ceil(frac * curve.stop), 1)
            if seen < curve.stop:
                p = point(curve, seen, params)
                if p.signed is not None:
                    rows.append((stopped_by(curve), noise_to_gap(curve, seen), frac, p.signed))
    out = [
        "| stopped by | at | forecasts | median log(pred/true) | median abs err | P90 abs err |",
        "|---|---|---|---|---|---|",
    ]
    for why in ("threshold", "patience", "divergence", "bound"):
        for frac in FRACTIONS:
            errors = [r[3] for r in rows if r[0] == why and r[2] == frac]
            if errors:
                out.append(f"| {why} | {frac:.0%} | {_summary(errors)}")
    out += [
        "",
        "| threshold stops, noise / gap | at | forecasts | median log(pred/true) | median abs err "
        "| P90 abs err |",
        "|---|---|---|---|---|---|",
    ]
    for low, high in NOISE_TO_GAP_BANDS:
        for frac in FRACTIONS:
            errors = [r[3] for r in rows if r[0] == "threshold" and r[2] == frac and low <= r[1] < high]
            if errors:
                out.append(f"| [{low:g}, {high:g}) | {frac:.0%} | {_summary(errors)}")
    return out


def _variant(text: str, base: StopParams) -> tuple[str, StopParams]:
    name, _, value = text.partition("=")
    kind = type(getattr(base, name))
    parsed: object
    if kind is bool:
        parsed = value.lower() in ("1", "true", "yes")
    elif kind is tuple:  # e.g. correction=0.1,0.5 (empty: correction=)
        parsed = tuple(float(v) for v in value.split(",") if v.strip())
    else:
        parsed = kind(value)
    return text, dataclasses.replace(base, **{name: parsed})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], help="NAME=VALUE of a StopParams field")
    parser.add_argument("--generated", action="store_true", help="add the generated tuning kinds")
    parser.add_argument(
        "--by-rule",
        action="store_true",
        help="add errors by stopping rule and noise-to-gap (all tuning runs)",
    )
    args = parser.parse_args(argv)
    mlperf = load_mlperf()
    if not mlperf:
        raise SystemExit("the MLPerf curves are missing (../shared/data/mlperf)")
    _, tune = parts(mlperf + generated() + shaped_curves())  # the tuning part only
    shipped = StopParams.shipped()
    variants = [("shipped", shipped)] + [_variant(v, shipped) for v in args.variant]
    counters = progress()
    real = sorted({c.group for c in tune if c.source == "mlperf"})
    print("#### The x-axis and the noise of the tuning part's MLPerf curves\n")
    print("| benchmark (runs) | evals per run | first eval / spacing | spacing CV | residual lag-1 autocorr "
          "| residual excess kurtosis |\n|---|---|---|---|---|---|")  # fmt: skip
    for group in real:
        mine = [c for c in tune if c.group == group]
        axes = np.array([axis_facts(counters[c.name]) for c in mine])
        noise = np.array([noise_facts(c) for c in mine])
        columns = (*axes.T, *noise.T)
        med = [float(np.nanmedian(col)) if np.isfinite(col).any() else math.nan for col in columns]
        stops = [c.stop for c in mine]
        print(
            f"| {group} ({len(mine)}) | {min(stops)}-{max(stops)} | {med[0]:.2f} | {med[1]:.3f} "
            f"| {med[2]:+.2f} | {med[3]:+.2f} |"
        )
    print("\n#### Forecast errors on the tuning part (positive log error: the stop is predicted too late)\n")
    print(HEADER)
    groups = real + (sorted({c.group for c in tune if c.source != "mlperf"}) if args.generated else [])
    for group in groups:
        mine = [c for c in tune if c.group == group]
        for label, params in variants:
            for line in lines(group, mine, label, params):
                print(line, flush=True)
    if args.by_rule:
        for label, params in variants:
            print(f"\n#### Tuning part by the way the run stopped ({label})\n")
            print("\n".join(rule_lines(tune, params)), flush=True)


if __name__ == "__main__":
    main()
