"""``trainer.validate/test/predict`` with the callback attached: each call is metered on its own."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.metering import Reading
from lightning_energy.meters import FakeMeter
from lightning_energy.report import load_report
from lightning_energy.stages import StageEnergy, stage_sums


def trainer(root: Path, callback: EnergyCallback, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 2,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "limit_predict_batches": 2,
        "default_root_dir": root,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
    }
    return pl.Trainer(callbacks=[callback], **{**options, **kwargs})


def test_validate_test_and_predict_are_each_metered_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 10 W on a virtual clock that moves 1 s per read: a stage (one read at its start, one at its end) is 10 J
    callback = EnergyCallback(
        meter=FakeMeter({"cpu": 10.0}, labels={"cpu": "estimated"}), history_path=False, window_batches=0
    )
    t = trainer(tmp_path, callback)
    with warnings.catch_warnings(), caplog.at_level(logging.INFO):
        warnings.simplefilter("ignore")
        t.fit(BoringModel())
        assert callback.stages == {}  # the validation loops inside fit belong to its epochs
        fit_report = (tmp_path / "energy_report.json").read_text()
        assert callback.fit_report is not None and callback.total_j == callback.fit_report.totals.energy_j
        assert load_report(tmp_path) == callback.fit_report  # the report kept is the one written, built once
        t.validate(BoringModel())
        t.test(BoringModel())
        t.predict(BoringModel())
    assert set(callback.stages) == {"validate", "test", "predict"}
    for stage in ("validate", "test", "predict"):
        result = callback.stages[stage]
        assert (result.stage, result.energy_j, dict(result.components_j)) == (stage, 10.0, {"cpu": 10.0})
        assert result.duration_s > 0 and result.reason is None
        data = json.loads((tmp_path / f"energy_{stage}.json").read_text())
        assert data["format"] == "lightning_energy.stage" and data["stage"] == stage
        assert (data["energy_j"], data["components_j"], data["components"]) == (
            10.0,
            {"cpu": 10.0},
            {"cpu": "estimated"},
        )
    assert (tmp_path / "energy_report.json").read_text() == fit_report  # the fit's report is untouched
    (line,) = [r.getMessage() for r in caplog.records if "trainer.test" in r.getMessage()]
    assert line.startswith("lightning_energy: trainer.test used 10.0 J in ")
    assert line.endswith(" s (cpu estimated); measured, not projected")


def test_a_stage_alone_needs_no_fit_and_report_false_writes_no_file(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=FakeMeter({"gpu0": 100.0}), history_path=False, report=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path, callback).test(BoringModel())
    assert callback.stages["test"].energy_j == 100.0
    assert callback.fit_report is None and callback.total_j is None
    assert not list(tmp_path.glob("energy_*.json"))


def test_a_stage_the_meter_could_not_read_is_missing_never_zero() -> None:
    end = Reading(2.0, {"cpu": 5.0})
    failed = stage_sums(Reading(0.0, None, "boom"), end)
    result = StageEnergy.from_sums("test", failed, {"cpu": "estimated"}, 1)
    assert result.energy_j is None and result.components_j == {}
    assert result.reason == "the meter failed on 1 of 1 ranks"
    assert result.line() == "trainer.test: energy not measured (the meter failed on 1 of 1 ranks)"
    assert StageEnergy.from_sums("test", stage_sums(None, end), {}, 1).energy_j is None  # no start read
    backwards = stage_sums(Reading(0.0, {"cpu": 9.0}), end)
    assert backwards["missing"] == 1.0
    # two ranks, one with nothing to meter (no component): the sum is the other's
    summed = {
        k: v + w
        for (k, v), w in zip(
            stage_sums(Reading(0.0, {"cpu": 1.0}), end).items(),
            stage_sums(Reading(0.0, {}), Reading(2.0, {})).values(),
            strict=True,
        )
    }
    both = StageEnergy.from_sums("predict", summed, {"cpu": "estimated"}, 2)
    assert (both.energy_j, both.duration_s, both.world_size) == (4.0, 2.0, 2)


class FailingTest(BoringModel):
    def test_step(self, batch: Any, batch_idx: int) -> Any:
        raise RuntimeError("test broke")


def test_a_failed_test_leaves_the_fits_report_alone(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=FakeMeter({"cpu": 10.0}), history_path=False, window_batches=0)
    t = trainer(tmp_path, callback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(BoringModel())
        before = (tmp_path / "energy_report.json").read_text()
        with pytest.raises(RuntimeError, match="test broke"):
            t.test(FailingTest())
    assert (tmp_path / "energy_report.json").read_text() == before
    assert json.loads(before)["status"] == "complete" and "test" not in callback.stages
