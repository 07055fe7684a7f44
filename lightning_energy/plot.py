"""PNG pictures of reports: how the STEP projection converged on one run, or several runs side by side.

matplotlib is imported only when a plot is drawn (``pip install lightning-energy[plot]``); figures are drawn
with matplotlib's object API on the Agg canvas, so the caller's pyplot backend and state are left alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_energy.report_model import ProjectionPoint, RunReport
from lightning_energy.units import energy_unit, sig

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PLOT_INSTALL_HINT", "plot_compare", "plot_report"]

PLOT_INSTALL_HINT = "plotting needs matplotlib: pip install lightning-energy[plot]"
_MEASURED, _PROJECTED, _PRE, _STABLE, _BAR = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f", "#9ecae1"


def _new_figure(width_in: float, height_in: float) -> Figure:
    """A matplotlib Figure on the Agg canvas, or ImportError with the install hint."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(PLOT_INSTALL_HINT) from err
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png; got {str(target)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    return target


@dataclass(frozen=True)
class _Series:
    done: list[int]  # x: epochs completed
    energy: list[float | None]
    cumulative: list[float]
    projections: list[ProjectionPoint]


def _series(report: RunReport) -> _Series:
    """Per-epoch x positions (epochs completed), energies, cumulative energy and projection history."""
    done = [e.epoch + 1 for e in report.epochs]
    energy = [e.energy_j for e in report.epochs]
    cumulative, running = [0.0], 0.0
    for value in energy:
        running += value or 0.0
        cumulative.append(running)
    history = [h for h in report.projections if h.step is None and math.isfinite(h.total_j)]
    return _Series(done, energy, cumulative, history)


def _window_series(report: RunReport) -> tuple[list[float], list[float]]:
    """In-epoch window projections at fractional epochs (epoch e's windows lie between x = e and e + 1)."""
    per_epoch: dict[int, int] = {}
    for w in report.windows:
        per_epoch[w.epoch] = per_epoch.get(w.epoch, 0) + w.steps
    x: list[float] = []
    y: list[float] = []
    done: dict[int, int] = {}
    for w in report.windows:
        done[w.epoch] = done.get(w.epoch, 0) + w.steps
        if w.total_j is not None and math.isfinite(w.total_j):
            x.append(w.epoch + done[w.epoch] / max(per_epoch[w.epoch], 1))
            y.append(w.total_j)
    return x, y


def _max_j(report: RunReport) -> float:
    return max([*_series(report).cumulative, report.max_j()])


_FEW = 6  # up to this many points, each one is drawn as a marker with its interval as an error bar


def _x_limits(report: RunReport, s: _Series) -> tuple[float, float]:
    """From just before 0 to just after the last epoch done or planned: one epoch is not a sliver."""
    right = float(max([1, *s.done]))
    if report.max_epochs is not None and math.isfinite(report.max_epochs):
        right = max(right, report.max_epochs)
    margin = max(0.15, 0.03 * right)
    return -margin, right + margin


def _draw_convergence(ax: Axes, report: RunReport, scale: float, unit: str) -> None:
    s = _series(report)
    few = len(s.done) <= _FEW
    ax.plot(
        [0, *s.done],
        [c / scale for c in s.cumulative],
        "-o",
        ms=6 if few else 3,
        color=_MEASURED,
        label="measured so far",
    )
    history = s.projections
    if history:
        x = [h.epoch + 1 for h in history]
        total = [h.total_j / scale for h in history]
        low = [h.low_j / scale for h in history]
        high = [h.high_j / scale for h in history]
        if len(history) > 1:
            ax.fill_between(x, low, high, color=_PROJECTED, alpha=0.2, label="projection interval")
        if len(history) <= _FEW:  # a band over one or two points is invisible: error bars and markers
            ax.errorbar(
                x,
                total,
                yerr=[
                    [t - lo for t, lo in zip(total, low, strict=True)],
                    [h - t for t, h in zip(total, high, strict=True)],
                ],
                fmt="s",
                ms=7,
                capsize=6,
                elinewidth=1.5,
                color=_PROJECTED,
                label="STEP projected total and interval",
            )
            if len(history) > 1:
                ax.plot(x, total, "-", color=_PROJECTED, lw=1)
        else:
            ax.plot(x, total, "-s", ms=3, color=_PROJECTED, label="STEP projected total")
        if report.expected:  # EarlyStopping: the expected total (stop forecast) beside the bound
            ex = [e.epoch + 1 for e in report.expected]
            ax.fill_between(
                ex, [e.low_j / scale for e in report.expected], [e.high_j / scale for e in report.expected],
                color="tab:green", alpha=0.15, label="expected interval (early stopping)",
            )  # fmt: skip
            ax.plot(ex, [e.total_j / scale for e in report.expected], "-^", ms=3, color="tab:green",
                    label="expected total (early stopping)")  # fmt: skip
        declared = report.first_stable
        if declared is not None:
            ax.axvline(declared.epoch + 1, color=_STABLE, ls=":", lw=1)
            ax.plot(
                [declared.epoch + 1],
                [declared.total_j / scale],
                "*",
                ms=12,
                color="black",
                label=f"first declared stable after epoch {declared.epoch}",
            )
        max_epochs = report.max_epochs
        if max_epochs is not None and s.done and max_epochs > s.done[-1]:
            ax.plot(
                [s.done[-1], max_epochs],
                [s.cumulative[-1] / scale, history[-1].total_j / scale],
                ":",
                color=_PROJECTED,
                lw=1,
            )
    wx, wy = _window_series(report)
    if wx:
        ax.plot(
            wx,
            [v / scale for v in wy],
            "-o" if len(s.done) <= 2 else "-",
            ms=3,
            lw=0.8,
            color=_PROJECTED,
            alpha=0.6,
            label="in-epoch projection",
        )
    pre = report.pre_available
    if pre is not None and pre.total_j is not None:
        ax.axhline(pre.total_j / scale, color=_PRE, ls="--", lw=1.2, label="PRE estimate (before training)")
        if pre.low_j is not None and pre.high_j is not None:
            ax.axhspan(pre.low_j / scale, pre.high_j / scale, color=_PRE, alpha=0.07)
    ax.set_ylabel(f"energy of the run ({unit})")
    ax.set_ylim(bottom=0)
    ax.set_xlim(*_x_limits(report, s))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def _title(report: RunReport, scale: float, unit: str) -> str:
    s = _series(report)
    measured = report.totals.energy_j
    parts = [
        f"{report.status} run, {len(s.done)} epoch{'' if len(s.done) == 1 else 's'}, measured "
        + ("nothing" if measured is None else f"{sig(measured / scale)} {unit}")
    ]
    if s.projections:
        parts.append(f"projected {sig(s.projections[-1].total_j / scale)} {unit}")
    pre = report.pre_available
    if pre is not None and pre.total_j is not None:
        parts.append(f"PRE {sig(pre.total_j / scale)} {unit}")
    return ", ".join(parts) + report.upper_bound_note()  # whenever the projection is one


def plot_report(report: RunReport, path: str | os.PathLike[str]) -> Path:
    """Draw one run to a PNG at ``path``: how the projection converged, and each epoch's energy.

    Top: cumulative measured energy, the STEP projected total with its interval band after each epoch, the
    point where it became stable, and the PRE estimate. Bottom: the energy of each epoch (missing ones
    marked). Returns the path written. Raises ImportError (with the install hint) without matplotlib.
    """
    return _save(_report_figure(report), path)


def _report_figure(report: RunReport) -> Figure:
    """The figure :func:`plot_report` saves (top: convergence; bottom: energy of each epoch)."""
    readable = energy_unit(_max_j(report))
    unit, scale = readable.name, readable.joules
    figure = _new_figure(9.0, 6.5)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.0])
    _draw_convergence(top, report, scale, unit)
    top.set_title(_title(report, scale, unit), fontsize=10)
    s = _series(report)
    bars_in = energy_unit(max([e or 0.0 for e in s.energy], default=0.0))
    bar_unit, bar_scale = bars_in.name, bars_in.joules
    heights = [(e or 0.0) / bar_scale for e in s.energy]
    # each bar spans its epoch: epoch e from x = e to x = e + 1
    bars = bottom.bar(
        [x - 1 for x in s.done],
        heights,
        color=_BAR,
        edgecolor=_MEASURED,
        width=0.9,
        align="edge",
        label="energy of the epoch",
    )
    if len(s.done) <= _FEW:
        labels = ["" if e is None else f"{sig(e / bar_scale)} {bar_unit}" for e in s.energy]
        bottom.bar_label(bars, labels=labels, fontsize=8, padding=2)
    bottom.margins(y=0.3)  # room above the bars for the labels and the legend
    missing = [x for x, e in zip(s.done, s.energy, strict=True) if e is None]
    if missing:
        bottom.plot(
            [x - 0.5 for x in missing],
            [0.0] * len(missing),
            "x",
            color="red",
            ms=9,
            label="missing (not measured)",
        )
    bottom.set_ylabel(f"per epoch ({bar_unit})")
    bottom.set_xlabel("epochs completed (epoch 0 runs from x = 0 to x = 1)")
    bottom.grid(alpha=0.3, axis="y")
    bottom.legend(loc="best", fontsize=8)
    return figure


def plot_compare(
    reports: Sequence[RunReport], path: str | os.PathLike[str], names: Sequence[str] | None = None
) -> Path:
    """Draw several runs to one PNG: cumulative and projected energy per run, and their totals vs PRE."""
    if not reports:
        raise ValueError("reports must hold at least one report; got none")
    labels = list(names) if names is not None else [f"run {i + 1}" for i in range(len(reports))]
    if len(labels) != len(reports):
        raise ValueError(f"names must have one label per report ({len(reports)}); got {len(labels)}")
    readable = energy_unit(max(_max_j(r) for r in reports))
    unit, scale = readable.name, readable.joules
    figure = _new_figure(12.0, 5.0)
    left, right = figure.subplots(1, 2, width_ratios=[1.6, 1.0])
    colors = [f"C{i % 10}" for i in range(len(reports))]
    for report, label, color in zip(reports, labels, colors, strict=True):
        s = _series(report)
        left.plot(
            [0, *s.done], [c / scale for c in s.cumulative], "-", color=color, label=f"{label} measured"
        )
        if s.projections:
            x = [h.epoch + 1 for h in s.projections]
            left.plot(
                x, [h.total_j / scale for h in s.projections], "--", color=color, label=f"{label} projected"
            )
    left.set_xlabel("epochs completed")
    left.set_ylabel(f"energy ({unit})")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    width = 0.27
    for i, report in enumerate(reports):
        measured = (report.totals.energy_j or 0.0) / scale
        right.bar(i - width, measured, width, color=_MEASURED, label="measured" if i == 0 else None)
        history = _series(report).projections
        if history:
            last = history[-1]
            err = [[(last.total_j - last.low_j) / scale], [(last.high_j - last.total_j) / scale]]
            right.bar(
                i,
                last.total_j / scale,
                width,
                yerr=err,
                capsize=3,
                color=_PROJECTED,
                label="projected (last)" if i == 0 else None,
            )
        pre = report.pre_available
        if pre is not None and pre.total_j is not None:
            low, high = pre.low_j or pre.total_j, pre.high_j or pre.total_j
            right.bar(
                i + width,
                pre.total_j / scale,
                width,
                yerr=[[(pre.total_j - low) / scale], [(high - pre.total_j) / scale]],
                capsize=3,
                color=_PRE,
                label="PRE estimate" if i == 0 else None,
            )
    right.set_xticks(range(len(reports)), labels, rotation=20, ha="right", fontsize=8)
    right.set_ylabel(f"total ({unit})")
    right.grid(alpha=0.3, axis="y")
    right.legend(fontsize=8)
    figure.suptitle(f"{len(reports)} runs compared", fontsize=11)
    return _save(figure, path)
