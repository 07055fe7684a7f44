import math

import pytest

from lightning_energy.accounting import (
    EnergyLedger,
    EpochRecord,
    by_category,
    category_of,
    check_reading,
    reading_delta,
)
from lightning_energy.errors import MeterError


@pytest.mark.parametrize(
    ("component", "category"),
    [("gpu0", "gpu"), ("gpu12", "gpu"), ("gpu", "gpu"), ("cpu", "cpu"), ("ram", "ram"), ("fan", "other")],
)
def test_category_of(component: str, category: str) -> None:
    assert category_of(component) == category


def test_bool_readings_are_rejected_like_strings() -> None:
    with pytest.raises(MeterError, match="bool"):
        check_reading({"gpu0": True})


@pytest.mark.parametrize(
    ("reading", "message"),
    [
        ({}, "no components"),
        ({"gpu0": math.nan}, "gpu0"),
        ({"gpu0": math.inf}, "gpu0"),
        ({"gpu0": "x"}, "not a number"),
        ([1.0], "mapping"),
    ],
    ids=["empty", "nan", "inf", "text", "not-mapping"],
)
def test_check_reading_rejects(reading: object, message: str) -> None:
    with pytest.raises(MeterError, match=message):
        check_reading(reading)  # type: ignore[arg-type]


def test_reading_delta_exact_and_by_category() -> None:
    delta = reading_delta({"gpu0": 10.0, "gpu1": 5.0, "cpu": 1.0}, {"gpu0": 30.0, "gpu1": 6.5, "cpu": 4.0})
    assert delta == {"gpu0": 20.0, "gpu1": 1.5, "cpu": 3.0}
    assert by_category(delta) == {"gpu": 21.5, "cpu": 3.0, "ram": 0.0, "other": 0.0}


def test_reading_delta_counter_reset_is_an_error_not_negative_energy() -> None:
    with pytest.raises(MeterError, match=r"backwards.*gpu0"):
        reading_delta({"gpu0": 100.0}, {"gpu0": 3.0})


def test_reading_delta_changed_components() -> None:
    with pytest.raises(MeterError, match="components changed"):
        reading_delta({"gpu0": 1.0}, {"gpu0": 2.0, "cpu": 1.0})


def test_ledger_totals_skip_missing_and_round_trip() -> None:
    ledger = EnergyLedger()
    ledger.add(EpochRecord(0, 2.0, 100.0, {"gpu": 80.0, "cpu": 20.0}))
    ledger.add(EpochRecord(1, 2.0, None, {}, "meter raised"))
    ledger.add(EpochRecord(2, 4.0, 50.0, {"gpu": 50.0}))
    assert ledger.total_j == 150.0
    assert ledger.missing_epochs == 1
    assert ledger.duration_s == 8.0
    assert ledger.category_totals_j()["gpu"] == 130.0
    assert ledger.present_categories() == ["gpu", "cpu"]
    assert ledger.records[0].power_w == 50.0
    assert ledger.records[1].power_w is None

    restored = EnergyLedger()
    restored.load_state_dict(ledger.state_dict())
    assert restored.records == ledger.records
    empty = EnergyLedger()
    empty.load_state_dict({})
    assert empty.records == []
