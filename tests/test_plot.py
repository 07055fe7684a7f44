"""PNG plots of one report and of several."""

from __future__ import annotations

import builtins
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from report_examples import example_report

from lightning_energy.accounting import EpochRecord
from lightning_energy.plot import PLOT_INSTALL_HINT, _report_figure, plot_compare, plot_report
from lightning_energy.report_model import PreSummary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_plot_report_writes_a_png(tmp_path: Path) -> None:
    path = plot_report(example_report(), tmp_path / "sub" / "report.png")
    assert path == tmp_path / "sub" / "report.png"
    assert _is_png(path)


def test_plot_report_copes_with_missing_epochs_no_projection_no_pre(tmp_path: Path) -> None:
    report = example_report(num_epochs=3, status="partial")
    epochs = list(report.epochs)
    epochs[1] = EpochRecord(1, 60.0, None, {}, "dead")
    report = replace(
        report, epochs=tuple(epochs), projections=(), pre=PreSummary(skipped="CPU-only training")
    )
    assert _is_png(plot_report(report, tmp_path / "r.png"))
    assert plot_report(replace(report, epochs=()), tmp_path / "empty.png").is_file()


def test_plot_report_does_not_touch_pyplot(tmp_path: Path) -> None:
    import sys

    had_pyplot = "matplotlib.pyplot" in sys.modules
    plot_report(example_report(num_epochs=2), tmp_path / "r.png")
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_plot_compare_writes_a_png(tmp_path: Path) -> None:
    runs = [example_report(), example_report(num_epochs=5, status="partial")]
    assert _is_png(plot_compare(runs, tmp_path / "cmp.png", names=["a", "b"]))
    with pytest.raises(ValueError, match="names"):
        plot_compare(runs, tmp_path / "x.png", names=["a"])
    with pytest.raises(ValueError, match="at least one"):
        plot_compare([], tmp_path / "x.png")


def test_path_must_be_png(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        plot_report(example_report(), tmp_path / "report.jpg")


def test_missing_matplotlib_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install lightning-energy\[plot\]"):
        plot_report(example_report(), tmp_path / "r.png")
    assert "lightning-energy[plot]" in PLOT_INSTALL_HINT


def test_a_one_epoch_run_is_legible() -> None:
    """One epoch: the projection is a marker with its interval as an error bar (a band over one point is
    invisible), the x axis is not a sliver around one point, the epoch's bar spans its epoch, labelled."""
    from matplotlib.container import ErrorbarContainer

    report = example_report(num_epochs=1, max_epochs=1)
    figure = _report_figure(report)
    top, bottom = figure.axes[:2]
    bars = [c for c in top.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1, "the single projection is drawn with its interval"
    (marker,) = [line for line in top.get_lines() if line.get_marker() == "s"]
    assert list(marker.get_xdata()) == [1] and marker.get_markersize() >= 6
    left, right = top.get_xlim()
    assert left < 0 < 1 < right and right - left < 2
    (patch,) = bottom.patches
    assert patch.get_x() == pytest.approx(0.0) and 0.8 <= patch.get_width() <= 1.0  # epoch 0 is x in [0, 1]
    assert [t.get_text() for t in bottom.texts] == ["5.04 Wh"]
    assert "1 epoch," in top.get_title()
    many = _report_figure(example_report(num_epochs=10))
    assert not [c for c in many.axes[0].containers if isinstance(c, ErrorbarContainer)]  # the band suffices
