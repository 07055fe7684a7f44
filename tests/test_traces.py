"""Recorded traces (tests/data/traces/*.json) replayed through the callback and the STEP projector.

Real GPU traces recorded by ``benchmarks/gpu/record.py`` land in the same folder and are picked up here;
``synthetic_steady.json`` keeps the test meaningful before any is recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback, ReplayMeter
from lightning_energy.meters import load_trace
from lightning_energy.meters.trace import Trace

TRACES = sorted((Path(__file__).parent / "data" / "traces").glob("*.json"))


def epoch_energies_j(trace: Trace) -> list[float]:
    """Energy of each epoch from the trace's own boundary readings (all components)."""
    bounds: dict[tuple[str, int], dict[str, float]] = {}
    for reading in trace.readings:
        if reading.event and reading.epoch is not None and reading.joules is not None:
            bounds[(reading.event, reading.epoch)] = reading.joules
    epochs = sorted({epoch for _, epoch in bounds})
    return [sum(bounds[("epoch_end", e)].values()) - sum(bounds[("epoch_start", e)].values()) for e in epochs]


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_trace_replays_through_the_callback_and_step(path: Path, tmp_path: Path) -> None:
    trace = load_trace(path)
    expected = epoch_energies_j(trace)
    trainer = pl.Trainer(
        max_epochs=len(expected),
        accelerator="cpu",
        default_root_dir=tmp_path,
        limit_train_batches=1,
        limit_val_batches=0,
        callbacks=[EnergyCallback(meter=ReplayMeter(trace), history_path=False)],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )
    trainer.fit(BoringModel())
    report = json.loads((tmp_path / "energy_report.json").read_text())
    measured = [epoch["energy_j"] for epoch in report["epochs"]]
    assert measured == pytest.approx(expected, rel=1e-9)

    total_j = sum(expected)
    history = report["projection"]["history"]
    assert history[-1]["total_j"] == pytest.approx(total_j, rel=1e-9)  # the last projection is the total
    stable = [h for h in history if h["stable"]]
    if "frozen_backbone_until_epoch" not in trace.meta:  # a steady workload
        assert stable, "STEP never declared a steady trace stable"
        worst = max(abs(h["total_j"] - total_j) / total_j for h in stable)
        assert worst <= 0.01  # the target: within 1% from the first stable declaration on
    for h in stable:
        assert h["low_j"] <= h["total_j"] <= h["high_j"]
