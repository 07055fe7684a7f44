"""EnergyCallback with EarlyStopping: the expected total next to the max_epochs bound (CPU, fake meter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback, load_report
from lightning_energy.report_table import format_table
from tests.test_callback import EpochMeter, make_trainer, report_of


class Accuracy(BoringModel):
    """Logs an accuracy that rises as 0.9 - 0.5 exp(-epoch / 4): 0.85 is reached at epoch 9 (0-based)."""

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().validation_step(batch, batch_idx)
        self.log("acc", 0.9 - 0.5 * 2.718281828 ** (-(self.current_epoch + 1) / 4.0))
        return out


def test_expected_total_is_logged_and_converges_to_the_measured_one(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    callback = EnergyCallback(meter=EpochMeter({"gpu0": 100.0}), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=60, callbacks=[stopper])
    trainer.fit(Accuracy())
    assert trainer.current_epoch < 20  # stopped by the threshold
    metrics = trainer.logged_metrics
    assert {"energy/expected_kwh", "energy/expected_low_kwh", "energy/expected_high_kwh"} <= set(metrics)
    measured = float(metrics["energy/total_kwh"])
    expected = float(metrics["energy/expected_kwh"])
    bound = float(metrics["energy/projected_kwh"])
    assert abs(expected - measured) / measured < 0.15
    assert bound > 3 * measured  # the max_epochs bound stays far above
    points = callback.run.expected
    assert len(points) >= 5
    errors = [abs(p.total_j / 3.6e6 - measured) / measured for p in points]
    assert errors[-1] < errors[2]  # converges


def test_without_early_stopping_nothing_changes(tmp_path: Path) -> None:
    callback = EnergyCallback(meter=EpochMeter({"gpu0": 100.0}), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=3)
    trainer.fit(BoringModel())
    assert not any(k.startswith("energy/expected") for k in trainer.logged_metrics)
    assert callback.run.stop is None and callback.run.expected == []


def test_report_holds_the_expected_total_over_time(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    callback = EnergyCallback(meter=EpochMeter({"gpu0": 100.0}), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=60, callbacks=[stopper])
    trainer.fit(Accuracy())
    report = report_of(trainer)
    expected = report["projection"]["expected"]
    assert expected and {"epoch", "total_j", "low_j", "high_j", "stop_epoch"} <= set(expected[-1])
    assert load_report(Path(trainer.log_dir) / "energy_report.json").expected[-1].stop_epoch > 0


def test_report_table_shows_the_expected_total(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    callback = EnergyCallback(meter=EpochMeter({"gpu0": 100.0}), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=60, callbacks=[stopper])
    trainer.fit(Accuracy())
    text = format_table(load_report(Path(trainer.log_dir) / "energy_report.json"))
    assert "expected with early stopping:" in text and "stop predicted at epoch" in text
    assert "STEP projection:" in text  # the max_epochs bound stays beside it


def test_plot_draws_the_expected_total(tmp_path: Path) -> None:
    from lightning_energy.plot import plot_report

    stopper = EarlyStopping(monitor="acc", mode="max", stopping_threshold=0.85, patience=1000)
    callback = EnergyCallback(meter=EpochMeter({"gpu0": 100.0}), history_path=False)
    trainer = make_trainer(tmp_path, callback, max_epochs=60, callbacks=[stopper])
    trainer.fit(Accuracy())
    out = plot_report(load_report(Path(trainer.log_dir) / "energy_report.json"), tmp_path / "plot.png")
    assert Path(out).stat().st_size > 0
