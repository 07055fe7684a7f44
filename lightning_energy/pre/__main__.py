"""``python -m lightning_energy.pre fit --data PATH [--history PATH] [--out FILE]`` (and ``estimate``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lightning_energy.errors import EstimationError
from lightning_energy.pre.cli import add_estimate_parser
from lightning_energy.pre.descriptors import LabelledRun
from lightning_energy.pre.gaissa import load_gaissa_runs
from lightning_energy.pre.history import RunHistory
from lightning_energy.pre.model import PreEstimator

DEFAULT_OUT = Path(__file__).with_name("coefficients.json")


def run_fit(args: argparse.Namespace) -> int:
    """Fit on GAISSA pre_runs.csv (+ recorded runs) and write the coefficients JSON."""
    try:
        runs: list[LabelledRun] = list(load_gaissa_runs(args.data))
        if args.history:
            runs.extend(RunHistory(args.history).runs())
        estimator = PreEstimator.fit(runs)
    except EstimationError as exc:
        print(f"fit: error: {exc}", file=sys.stderr)
        return 2
    estimator.save(args.out)
    print(
        f"fitted on {len(runs)} runs; log sigma in-sample {estimator.log_sigma_in:.3f}, "
        f"out-of-sample {estimator.log_sigma_out:.3f}; wrote {args.out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightning_energy.pre")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit the PRE model and write its coefficients JSON")
    fit.add_argument("--data", required=True, help="GAISSA pre_runs.csv or the directory holding it")
    fit.add_argument("--history", help="also fit on the runs of this run-history SQLite file")
    fit.add_argument("--out", default=str(DEFAULT_OUT), help=f"output JSON (default {DEFAULT_OUT})")
    fit.set_defaults(func=run_fit)
    add_estimate_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
