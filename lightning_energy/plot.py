"""PNG pictures of reports: how the STEP projection converged on one run, or several runs side by side.

matplotlib is imported only when a plot is drawn (``pip install lightning-energy[plot]``); figures are drawn
with matplotlib's object API on the Agg canvas, so the caller's pyplot backend and state are left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_energy.report import energy_unit, first_stable, pre_run_totals_j

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


def _series(report: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Per-epoch x positions (epochs completed), energies, cumulative energy and projection history."""
    epochs = list(report.get("epochs") or [])
    done = [int(e.get("epoch", i)) + 1 for i, e in enumerate(epochs)]
    energy = [e.get("energy_j") for e in epochs]
    cumulative, running = [0.0], 0.0
    for value in energy:
        running += value or 0.0
        cumulative.append(running)
    history = [
        h for h in (report.get("projection") or {}).get("history") or [] if h.get("total_j") is not None
    ]
    return {"done": done, "energy": energy, "cumulative": cumulative, "history": history}


def _max_j(report: Mapping[str, Any]) -> float:
    s = _series(report)
    values = [*s["cumulative"], *(h.get("high_j") or h["total_j"] for h in s["history"])]
    pre = pre_run_totals_j(report)
    return max(values + (list(pre) if pre else []))


def _draw_convergence(ax: Axes, report: Mapping[str, Any], scale: float, unit: str) -> None:
    s = _series(report)
    ax.plot(
        [0, *s["done"]],
        [c / scale for c in s["cumulative"]],
        "-o",
        ms=3,
        color=_MEASURED,
        label="measured so far",
    )
    history = s["history"]
    if history:
        x = [int(h["epoch"]) + 1 for h in history]
        low = [(h.get("low_j") if h.get("low_j") is not None else h["total_j"]) / scale for h in history]
        high = [(h.get("high_j") if h.get("high_j") is not None else h["total_j"]) / scale for h in history]
        ax.fill_between(x, low, high, color=_PROJECTED, alpha=0.2, step=None, label="projection interval")
        ax.plot(
            x,
            [h["total_j"] / scale for h in history],
            "-s",
            ms=3,
            color=_PROJECTED,
            label="STEP projected total",
        )
        declared = first_stable(report)
        if declared is not None:
            x_declared = int(declared["epoch"]) + 1
            ax.axvline(x_declared, color=_STABLE, ls=":", lw=1)
            ax.plot(
                [x_declared],
                [declared["total_j"] / scale],
                "*",
                ms=12,
                color="black",
                label=f"first declared stable after epoch {declared['epoch']}",
            )
        max_epochs = report.get("max_epochs")
        if isinstance(max_epochs, int) and s["done"] and max_epochs > s["done"][-1]:
            ax.plot(
                [s["done"][-1], max_epochs],
                [s["cumulative"][-1] / scale, history[-1]["total_j"] / scale],
                ":",
                color=_PROJECTED,
                lw=1,
            )
    pre = pre_run_totals_j(report)
    if pre is not None:
        ax.axhline(pre[0] / scale, color=_PRE, ls="--", lw=1.2, label="PRE estimate (before training)")
        ax.axhspan(pre[1] / scale, pre[2] / scale, color=_PRE, alpha=0.07)
    ax.set_ylabel(f"energy of the run ({unit})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _title(report: Mapping[str, Any], scale: float, unit: str) -> str:
    totals = report.get("totals") or {}
    s = _series(report)
    parts = [
        f"{report.get('status', '?')} run, {len(s['done'])} epochs, "
        f"measured {float(totals.get('energy_j') or 0.0) / scale:.4g} {unit}"
    ]
    if s["history"]:
        last = s["history"][-1]
        parts.append(f"projected {last['total_j'] / scale:.4g} {unit}")
    pre = pre_run_totals_j(report)
    if pre is not None:
        parts.append(f"PRE {pre[0] / scale:.4g} {unit}")
    bound = " (upper bound: early stopping)" if report.get("upper_bound") else ""
    return ", ".join(parts) + bound


def plot_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Draw one run to a PNG at ``path``: how the projection converged, and each epoch's energy.

    Top: cumulative measured energy, the STEP projected total with its interval band after each epoch, the
    point where it became stable, and the PRE estimate. Bottom: the energy of each epoch (missing ones
    marked). Returns the path written. Raises ImportError (with the install hint) without matplotlib.
    """
    unit, scale = energy_unit(_max_j(report))
    figure = _new_figure(9.0, 6.5)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.0])
    _draw_convergence(top, report, scale, unit)
    top.set_title(_title(report, scale, unit), fontsize=10)
    s = _series(report)
    bar_unit, bar_scale = energy_unit(max([e or 0.0 for e in s["energy"]], default=0.0))
    heights = [(e or 0.0) / bar_scale for e in s["energy"]]
    bottom.bar(s["done"], heights, color=_BAR, edgecolor=_MEASURED, width=0.8, label="energy of the epoch")
    missing = [x for x, e in zip(s["done"], s["energy"], strict=True) if e is None]
    if missing:
        bottom.plot(missing, [0.0] * len(missing), "x", color="red", ms=9, label="missing (not measured)")
    bottom.set_ylabel(f"per epoch ({bar_unit})")
    bottom.set_xlabel("epochs completed (epoch 0 ends at x = 1)")
    bottom.grid(alpha=0.3, axis="y")
    bottom.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def plot_compare(
    reports: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], names: Sequence[str] | None = None
) -> Path:
    """Draw several runs to one PNG: cumulative and projected energy per run, and their totals vs PRE."""
    if not reports:
        raise ValueError("reports must hold at least one report; got none")
    labels = list(names) if names is not None else [f"run {i + 1}" for i in range(len(reports))]
    if len(labels) != len(reports):
        raise ValueError(f"names must have one label per report ({len(reports)}); got {len(labels)}")
    unit, scale = energy_unit(max(_max_j(r) for r in reports))
    figure = _new_figure(12.0, 5.0)
    left, right = figure.subplots(1, 2, width_ratios=[1.6, 1.0])
    colors = [f"C{i % 10}" for i in range(len(reports))]
    for report, label, color in zip(reports, labels, colors, strict=True):
        s = _series(report)
        left.plot(
            [0, *s["done"]], [c / scale for c in s["cumulative"]], "-", color=color, label=f"{label} measured"
        )
        if s["history"]:
            x = [int(h["epoch"]) + 1 for h in s["history"]]
            left.plot(
                x, [h["total_j"] / scale for h in s["history"]], "--", color=color, label=f"{label} projected"
            )
    left.set_xlabel("epochs completed")
    left.set_ylabel(f"energy ({unit})")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    width = 0.27
    for i, report in enumerate(reports):
        measured = float((report.get("totals") or {}).get("energy_j") or 0.0) / scale
        right.bar(i - width, measured, width, color=_MEASURED, label="measured" if i == 0 else None)
        history = _series(report)["history"]
        if history:
            last = history[-1]
            err = [
                [(last["total_j"] - (last.get("low_j") or last["total_j"])) / scale],
                [((last.get("high_j") or last["total_j"]) - last["total_j"]) / scale],
            ]
            right.bar(
                i,
                last["total_j"] / scale,
                width,
                yerr=err,
                capsize=3,
                color=_PROJECTED,
                label="projected (last)" if i == 0 else None,
            )
        pre = pre_run_totals_j(report)
        if pre is not None:
            right.bar(
                i + width,
                pre[0] / scale,
                width,
                yerr=[[(pre[0] - pre[1]) / scale], [(pre[2] - pre[0]) / scale]],
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
