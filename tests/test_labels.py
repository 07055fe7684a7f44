"""The closed vocabularies: meter labels, report component labels and mark events."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import lightning.pytorch as pl
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.labels import (
    COMPONENT_LABELS,
    LABELS,
    MARK_EVENTS,
    ComponentLabel,
    MarkEvent,
    MeterLabel,
    component_label,
    known_labels,
)
from lightning_energy.meters import EnergyMeter, ReplayMeter, as_meter
from lightning_energy.meters import base as meters_base
from lightning_energy.meters.trace import Trace, TraceReading
from lightning_energy.report_model import RunReport
from lightning_energy.run_metrics import component_labels


def test_the_vocabularies_are_the_literals_and_keep_their_old_names() -> None:
    assert LABELS == get_args(MeterLabel) == ("measured", "sampled", "estimated", "unknown")
    assert COMPONENT_LABELS == get_args(ComponentLabel) == (*LABELS, "mixed")
    assert MARK_EVENTS == get_args(MarkEvent) == ("epoch_start", "epoch_end", "window_end")
    assert (meters_base.LABELS, meters_base.MARK_EVENTS, meters_base.MEASURED) == (
        LABELS,
        MARK_EVENTS,
        "measured",
    )


def test_a_label_outside_the_vocabulary_reads_as_unknown_and_says_so() -> None:
    labels, problems = known_labels({"gpu0": "measured", "cpu": "rapl", 3: None})
    assert labels == {"gpu0": "measured", "cpu": "unknown", "3": "unknown"}
    assert len(problems) == 1 and "'rapl'" in problems[0] and "cpu" in problems[0]
    assert known_labels({"ram": "estimated"}) == ({"ram": "estimated"}, [])
    assert [component_label(v) for v in ("mixed", "sampled", "guessed", 1)] == [
        "mixed",
        "sampled",
        "unknown",
        "unknown",
    ]


def test_categories_of_differing_labels_are_mixed() -> None:
    assert component_labels({"gpu0": "measured", "gpu1": "sampled", "cpu": "estimated"}) == {
        "gpu": "mixed",
        "cpu": "estimated",
    }


class _Duck:
    @property
    def labels(self) -> dict[str, str]:
        return {"gpu0": "counter"}

    def read(self) -> dict[str, float]:
        return {"gpu0": 1.0}

    def close(self) -> None:
        pass


def test_a_duck_meters_odd_label_is_unknown_and_a_problem() -> None:
    meter = as_meter(_Duck())
    assert meter.labels == {"gpu0": "unknown"}
    assert any("'counter'" in p for p in meter.problems)


def test_a_traces_odd_label_replays_as_unknown() -> None:
    reading = TraceReading(t_s=0.0, joules={"gpu0": 0.0})
    replay = ReplayMeter(Trace(readings=[reading], labels={"gpu0": "counter", "cpu": "estimated"}))
    assert replay.labels == {"gpu0": "unknown", "cpu": "estimated"}


def test_a_reports_odd_component_label_reads_as_unknown() -> None:
    from report_examples import example_report_json

    data = example_report_json()
    data["components"] = {"gpu": "counter", "cpu": "mixed"}
    assert RunReport.from_json(data).components == {"gpu": "unknown", "cpu": "mixed"}


class _OddLabels(EnergyMeter):
    """+10 J per epoch, labelled outside the vocabulary."""

    def __init__(self) -> None:
        self.total = 0.0
        self.events: list[str] = []

    @property
    def labels(self) -> Mapping[str, Any]:
        return {"gpu0": "counter"}

    def mark(self, event: MarkEvent, epoch: int) -> None:
        self.events.append(event)
        if event == "epoch_end":
            self.total += 10.0

    def read(self) -> Mapping[str, float]:
        return {"gpu0": self.total}


def test_a_fit_with_an_odd_label_reports_unknown_and_warns(tmp_path: Path) -> None:
    meter = _OddLabels()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=0,
        enable_model_summary=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[EnergyCallback(meter=meter, history_path=False)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(BoringModel())
    report = json.loads((Path(trainer.log_dir or ".") / "energy_report.json").read_text())
    assert report["components"] == {"gpu": "unknown"}
    assert any("'counter'" in w for w in report["warnings"])
    assert set(meter.events) <= set(MARK_EVENTS) and "epoch_end" in meter.events
