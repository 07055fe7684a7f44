"""Issue 24, resume state and report files: damaged states are refused, the report pair is never mixed,
and a bad PRE estimate never stops a run."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
from report_examples import example_report

from lightning_energy import _io
from lightning_energy.accounting import EnergyLedger, EpochRecord
from lightning_energy.budget import Budget
from lightning_energy.errors import EnergyError, StateError
from lightning_energy.pre.model import Estimate
from lightning_energy.report import EPOCHS_CSV_FILENAME, REPORT_FILENAME, write_report
from lightning_energy.report_model import PreSummary
from lightning_energy.run import EnergyRun, RunStateError


def _record(epoch: int, energy_j: float = 100.0) -> dict[str, Any]:
    return EpochRecord(epoch, 10.0, energy_j, {"gpu": energy_j}, None, 4).to_dict()


def _run(epochs: int = 3, max_epochs: int = 6) -> EnergyRun:
    run = EnergyRun()
    run.set_budget(Budget(max_epochs=max_epochs))
    for epoch in range(epochs):
        run.finish_epoch(EpochRecord(epoch, 10.0, 100.0, {"gpu": 100.0}, None, 4))
    return run


# ------------------------------------------------------------------------------------------ item 7
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("energy_j", math.nan),
        ("energy_j", math.inf),
        ("energy_j", -500.0),
        ("energy_j", "100"),
        ("duration_s", math.nan),
        ("duration_s", -1.0),
        ("duration_s", math.inf),
        ("epoch", -1),
        ("epoch", 1.5),
        ("epoch", math.nan),
        ("batches", math.inf),
        ("batches", -3),
        ("components_j", {"gpu": math.nan}),
        ("components_j", {"gpu": -500.0}),
        ("components_j", {"gpu": 40.0}),  # not the record's 100 J
        ("components_j", [1.0]),
    ],
)
def test_a_damaged_epoch_record_is_refused_naming_the_field(field: str, value: Any) -> None:
    data = _record(0)
    data[field] = value
    with pytest.raises(StateError, match=field):
        EpochRecord.from_dict(data)
    ledger = EnergyLedger()
    ledger.load_state_dict({"records": [_record(0)]})
    with pytest.raises(StateError):
        ledger.load_state_dict({"records": [_record(0), data]})
    assert [r.epoch for r in ledger.records] == [0]  # unchanged


def test_a_good_record_and_a_missing_one_round_trip() -> None:
    missing = EpochRecord(3, 5.0, None, {}, "dead meter", None)
    measured = EpochRecord(4, 5.0, 60.0, {"gpu": 50.0, "cpu": 10.0}, None, 8)
    assert EpochRecord.from_dict(missing.to_dict()) == missing
    assert EpochRecord.from_dict(measured.to_dict()) == measured


def test_ledger_epochs_out_of_order_are_refused() -> None:
    with pytest.raises(StateError, match="out of order"):
        EnergyLedger().load_state_dict({"records": [_record(1), _record(0)]})
    with pytest.raises(StateError, match="list"):
        EnergyLedger().load_state_dict({"records": "abc"})


@pytest.mark.parametrize("energy", [math.nan, math.inf, -500.0])
def test_a_damaged_run_state_is_refused_and_the_run_left_unchanged(energy: float) -> None:
    state = _run().state_dict()
    state["ledger"]["records"][1]["energy_j"] = energy
    state["ledger"]["records"][1]["components_j"] = {"gpu": energy}
    fresh = _run(epochs=1)
    before = fresh.state_dict()
    with pytest.raises(RunStateError) as caught:
        fresh.load_state_dict(state)
    assert isinstance(caught.value, StateError) and isinstance(caught.value, EnergyError)
    assert fresh.state_dict() == before
    assert fresh.status() == "complete" and fresh.ledger.total_j == 100.0


# ------------------------------------------------------------------------------------------ item 8
def test_a_state_whose_projector_saw_more_epochs_than_its_ledger_holds_is_refused() -> None:
    state = _run(epochs=5).state_dict()
    state["ledger"]["records"] = state["ledger"]["records"][:2]
    state["history"] = state["history"][:2]
    with pytest.raises(RunStateError, match="5 epochs but the saved ledger holds 2"):
        _run(epochs=0).load_state_dict(state)


def test_a_state_whose_projector_measured_more_than_its_ledger_is_refused() -> None:
    state = _run(epochs=3).state_dict()
    for record in state["ledger"]["records"]:
        record["energy_j"], record["components_j"] = 10.0, {"gpu": 10.0}
    with pytest.raises(RunStateError, match="measured 300 J but the saved ledger only 30 J"):
        _run(epochs=0).load_state_dict(state)


def test_a_state_with_projections_beyond_its_ledger_is_refused() -> None:
    state = _run(epochs=3).state_dict()
    state["history"][-1]["epoch"] = 7
    with pytest.raises(RunStateError, match="beyond"):
        _run(epochs=0).load_state_dict(state)


def test_a_state_whose_window_projector_saw_more_windows_than_recorded_is_refused() -> None:
    run = EnergyRun()
    run.set_budget(Budget(max_epochs=2, batches_per_epoch=8), window_batches=2)
    for step in range(3):
        run.close_window(epoch=0, step=step, time_s=step, batches=2, energy_j=10.0, duration_s=1.0)
    state = run.state_dict()
    state["windows"]["records"] = state["windows"]["records"][:1]
    with pytest.raises(RunStateError, match="3 windows"):
        EnergyRun().load_state_dict(state)


def test_an_agreeing_state_still_loads_and_continues() -> None:
    run = _run(epochs=3)
    resumed = EnergyRun()
    resumed.load_state_dict(run.state_dict())
    resumed.set_budget(Budget(max_epochs=6))
    outcome = resumed.finish_epoch(EpochRecord(3, 10.0, 100.0, {"gpu": 100.0}, None, 4))
    assert outcome.projection is not None and outcome.projection.total_j == pytest.approx(600.0)
    assert not resumed.warnings


def test_an_unbounded_run_state_with_an_unfed_projector_still_loads() -> None:
    run = EnergyRun()
    run.set_budget(Budget())  # no end: the projector is never fed
    run.finish_epoch(EpochRecord(0, 10.0, 100.0, {"gpu": 100.0}, None, 4))
    resumed = EnergyRun()
    resumed.load_state_dict(run.state_dict())
    assert len(resumed.ledger.records) == 1


# ----------------------------------------------------------------------------------------- item 12
def _estimate(epoch_energy_j: float, log_sigma: float = 0.3) -> Estimate:
    return Estimate(epoch_energy_j, 100.0, 1.0, log_sigma, "NVIDIA H100 80GB HBM3")


@pytest.mark.parametrize(
    "pre",
    [
        PreSummary(total_j=math.nan, estimate=_estimate(math.nan), total_epochs=3.0),
        PreSummary(total_j=math.inf, estimate=_estimate(math.inf), total_epochs=3.0),
        PreSummary(total_j=300.0, estimate=_estimate(100.0, log_sigma=math.nan), total_epochs=3.0),
        PreSummary(total_j=300.0, estimate=_estimate(100.0, log_sigma=1e200), total_epochs=3.0),
        PreSummary(total_j=0.0, estimate=_estimate(0.0), total_epochs=3.0),
        PreSummary(total_j=3e308, estimate=_estimate(1e308), total_epochs=3.0, devices=8),
    ],
)
def test_an_unusable_pre_estimate_is_a_warning_never_an_error(pre: PreSummary) -> None:
    run = _run(epochs=0)
    run.set_pre(pre)  # must not raise
    assert run.warnings and "PRE estimate not used" in run.warnings[-1]
    for epoch in range(3):
        run.finish_epoch(EpochRecord(epoch, 10.0, 100.0, {"gpu": 100.0}, None, 4))
    assert run.last_projection is not None and math.isfinite(run.last_projection.total_j)
    assert not any("STEP projection failed" in w for w in run.warnings)


# ----------------------------------------------------------------------------------------- item 11
def _old_pair(folder: Path) -> tuple[str, str]:
    write_report(folder, example_report(num_epochs=2))
    return (folder / REPORT_FILENAME).read_text(), (folder / EPOCHS_CSV_FILENAME).read_text()


def _failing_second_replace(monkeypatch: pytest.MonkeyPatch, also_fail_restore: bool = False) -> None:
    real = os.replace
    calls = {"n": 0}

    def replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2 or (also_fail_restore and calls["n"] == 3):
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(_io.os, "replace", replace)


def test_a_failed_second_rename_rolls_the_first_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_json, old_csv = _old_pair(tmp_path)
    _failing_second_replace(monkeypatch)
    with pytest.raises(OSError, match="no file was changed"):
        write_report(tmp_path, example_report(num_epochs=5))
    assert (tmp_path / REPORT_FILENAME).read_text() == old_json
    assert (tmp_path / EPOCHS_CSV_FILENAME).read_text() == old_csv
    assert sorted(p.name for p in tmp_path.iterdir()) == [EPOCHS_CSV_FILENAME, REPORT_FILENAME]


def test_a_failed_second_rename_of_a_first_report_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_second_replace(monkeypatch)
    with pytest.raises(OSError, match="no file was changed"):
        write_report(tmp_path, example_report(num_epochs=5))
    assert list(tmp_path.iterdir()) == []


def test_when_even_the_roll_back_fails_the_error_names_the_changed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_pair(tmp_path)
    _failing_second_replace(monkeypatch, also_fail_restore=True)
    with pytest.raises(OSError) as caught:
        write_report(tmp_path, example_report(num_epochs=5))
    message = str(caught.value)
    assert "no file was changed" not in message
    assert f"only {tmp_path / REPORT_FILENAME} holds the new content" in message
    assert "every other file was left as it was" in message
    assert caught.value.errno == 5


def test_a_successful_pair_write_leaves_no_aside_copies(tmp_path: Path) -> None:
    _old_pair(tmp_path)
    write_report(tmp_path, example_report(num_epochs=5))
    assert sorted(p.name for p in tmp_path.iterdir()) == [EPOCHS_CSV_FILENAME, REPORT_FILENAME]
    assert "\n4," in (tmp_path / EPOCHS_CSV_FILENAME).read_text()


def test_the_callback_does_not_claim_no_file_changed_when_one_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning.pytorch as pl
    from lightning.pytorch.demos.boring_classes import BoringModel

    from lightning_energy import EnergyCallback
    from lightning_energy.meters import FakeMeter

    _old_pair(tmp_path)
    _failing_second_replace(monkeypatch, also_fail_restore=True)
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        default_root_dir=tmp_path,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EnergyCallback(meter=FakeMeter({"gpu0": 100.0}), history_path=False)],
    )
    with pytest.warns(UserWarning, match="holds the new content") as caught:
        trainer.fit(BoringModel())
    assert not any("no file was changed" in str(w.message) for w in caught)


# ------------------------------------------------------------------------- a ledger ahead of the trainer
def test_a_saved_state_ahead_of_the_resumed_epoch_is_dropped() -> None:
    # the trainer resumes at epoch 2 but the state holds epochs 0-3: another run's, or a later checkpoint's
    saved = _run(epochs=4)
    saved.close_window(epoch=3, step=15, time_s=1.0, batches=2, energy_j=50.0, duration_s=1.0)
    run = EnergyRun()
    run.load_state_dict(saved.state_dict())
    run.set_budget(Budget(max_epochs=6))
    problem = run.note_unmetered(2)
    assert problem is not None and "holds epochs up to 3 but training resumes at epoch 2" in problem
    assert [(r.epoch, r.energy_j) for r in run.ledger.records] == [(0, None), (1, None)]
    assert run.windows == [] and run.window_series.projector.epochs_seen == 0
    assert run.projector.epochs_seen == 2  # the two unmetered epochs only
    outcome = run.finish_epoch(EpochRecord(2, 10.0, 100.0, {"gpu": 100.0}, None, 4))
    assert outcome.projection is not None and outcome.projection.total_j == pytest.approx(600.0)
    assert _run(epochs=2).note_unmetered(2) is None  # a state that ends where the trainer resumes is fine
