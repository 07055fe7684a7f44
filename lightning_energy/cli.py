"""The ``lightning-energy`` command.

* ``lightning-energy report RUN_DIR``: the run's table, and a PNG next to its report.
* ``lightning-energy report RUN_DIR RUN_DIR ...``: the runs side by side, and a comparison PNG.
* ``lightning-energy estimate ...``: the PRE estimate before training (see ``docs/pre.md``).

(Refitting PRE's coefficients is a maintainer's task: ``tools/`` in the source repository.)

Errors are one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_energy.report_model import RunReport

__all__ = ["build_parser", "main"]

PROG = "lightning-energy"
REPORT_PNG = "energy_report.png"
COMPARE_PNG = "energy_compare.png"


def _error(command: str, message: str) -> int:
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)
    return 1


def _add_report_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report",
        help="show one run's energy report, or compare several runs",
        description=(
            "Print the energy report of a run (a directory holding energy_report.json, or below it, or the "
            "file itself) and draw it to a PNG next to the report. With several runs: a comparison table "
            f"and a comparison PNG (default ./{COMPARE_PNG})."
        ),
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directory or energy_report.json")
    p.add_argument("--png", type=Path, metavar="PATH", help="where to write the PNG (default: see above)")
    p.add_argument("--no-plot", action="store_true", help="print the table only, draw no PNG")
    p.set_defaults(func=_run_report)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-energy`` (sub-commands ``report`` and ``estimate``)."""
    from lightning_energy.pre.cli import add_estimate_parser

    parser = argparse.ArgumentParser(
        prog=PROG, description="Energy of PyTorch Lightning training: reports, comparisons, PRE estimates."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="{report,estimate}")
    _add_report_parser(subparsers)
    add_estimate_parser(subparsers)
    return parser


def _names(paths: Sequence[Path]) -> list[str]:
    """Short, distinct column labels for run directories."""
    names = [p.name or str(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def _run_report(args: argparse.Namespace) -> int:
    from lightning_energy.report import ReportError, find_report, load_report
    from lightning_energy.report_table import compare_table, format_table

    try:
        paths = [find_report(run) for run in args.runs]
        reports = [load_report(path) for path in paths]
    except ReportError as err:
        return _error("report", str(err))
    run_dirs = [path.parent for path in paths]
    try:
        if len(reports) == 1:
            print(format_table(reports[0]))
        else:
            print(compare_table(reports, names=_names(run_dirs)))
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        return _error("report", f"unexpected content in {', '.join(map(str, paths))}: {err!r}")
    if args.no_plot:
        return 0
    return _plot(args, reports, run_dirs)


def _plot(args: argparse.Namespace, reports: list[RunReport], run_dirs: list[Path]) -> int:
    from lightning_energy.plot import plot_compare, plot_report

    try:
        if len(reports) == 1:
            png = plot_report(reports[0], args.png or run_dirs[0] / REPORT_PNG)
        else:
            png = plot_compare(reports, args.png or Path(COMPARE_PNG), names=_names(run_dirs))
    except ImportError as err:
        if args.png is not None:  # asked for explicitly: a failure
            return _error("report", str(err))
        print(f"{PROG} report: no PNG drawn: {err}", file=sys.stderr)
        return 0
    except (OSError, ValueError) as err:
        return _error("report", f"cannot write the PNG: {err}")
    except (TypeError, KeyError, AttributeError, IndexError) as err:
        return _error("report", f"cannot draw the report: unexpected content: {err!r}")
    print(f"\nplot: {png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lightning-energy`` with ``argv`` (default: the command line); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` & co.: stop quietly (Python docs' recipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
