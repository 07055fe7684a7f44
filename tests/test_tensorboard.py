"""The TensorBoard custom-scalars layout lands in the event file of every TensorBoardLogger."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_energy.tensorboard import add_energy_layout, custom_scalars_layout

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2


def _layouts(log_dir: Path) -> list[Any]:
    layouts = []
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "custom_scalars":
                    layouts.append(layout_pb2.Layout.FromString(value.tensor.string_val[0]))
    return layouts


def test_layout_puts_measured_projected_and_pre_on_one_chart() -> None:
    charts = custom_scalars_layout()["energy"]
    kind, tags = charts["run total kWh: measured so far, STEP projection, PRE estimate"]
    assert kind == "Multiline"
    for name in ("energy/total_kwh", "energy/projected_kwh", "energy/pre_kwh"):
        assert any(re.fullmatch(pattern, name) for pattern in tags), name
    assert not any(re.fullmatch(pattern, "energy/projected_low_kwh") for pattern in tags)
    margin = [spec for spec in charts.values() if spec[0] == "Margin"]
    assert margin == [
        ["Margin", ["energy/projected_kwh", "energy/projected_low_kwh", "energy/projected_high_kwh"]]
    ]


def test_layout_follows_the_logger_prefix() -> None:
    charts = custom_scalars_layout("run7")["energy"]
    assert charts["STEP projected total kWh with its interval"][1][0] == "run7-energy/projected_kwh"
    with pytest.raises(TypeError, match="prefix"):
        custom_scalars_layout(3)  # type: ignore[arg-type]


def test_add_energy_layout_writes_once_per_tensorboard_logger(tmp_path: Path) -> None:
    tb = TensorBoardLogger(tmp_path, name="tb")
    trainer = SimpleNamespace(loggers=[CSVLogger(tmp_path, name="csv"), tb])
    add_energy_layout(trainer)  # type: ignore[arg-type]
    add_energy_layout(trainer)  # type: ignore[arg-type]  # a second fit() on the same logger
    tb.experiment.flush()
    layouts = _layouts(tmp_path / "tb")
    assert len(layouts) == 1
    titles = [chart.title for category in layouts[0].category for chart in category.chart]
    assert "STEP projected total kWh with its interval" in titles
    margin = next(c.margin for cat in layouts[0].category for c in cat.chart if c.HasField("margin"))
    assert margin.series[0].value == "energy/projected_kwh"
    assert margin.series[0].lower == "energy/projected_low_kwh"
    assert margin.series[0].upper == "energy/projected_high_kwh"


def test_no_tensorboard_logger_is_a_no_op(tmp_path: Path) -> None:
    add_energy_layout(SimpleNamespace(loggers=[CSVLogger(tmp_path)]))  # type: ignore[arg-type]
    add_energy_layout(SimpleNamespace(loggers=[]))  # type: ignore[arg-type]
    assert not list(tmp_path.rglob("events.out.tfevents.*"))
