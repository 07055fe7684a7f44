"""The first epoch's start does not wait for a meter still opening in the background (CPU, real clock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_energy import EnergyCallback
from lightning_energy.meters.lazy import BackgroundMeter
from tests.test_callback import make_trainer

POWER_W = 10.0


class SteadyMeter:
    """10 W on the monotonic clock from the moment it is told to count from."""

    def __init__(self) -> None:
        self.start_s = time.monotonic()

    def count_from(self, start_s: float) -> None:
        self.start_s = start_s

    def read(self) -> Mapping[str, float]:
        return {"cpu": POWER_W * (time.monotonic() - self.start_s)}

    labels: Mapping[str, str] = {"cpu": "estimated"}
    hardware: Mapping[str, object] = {}

    def close(self) -> None:
        pass


class OpenAtFirstBatch(pl.Callback):
    """Lets the meter finish opening only once the first training batch has started: an epoch start that
    waited for it would wait until the opening thread gives up."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def on_train_batch_start(self, *args: Any) -> None:
        self.gate.set()


def test_the_first_epoch_starts_without_waiting_and_is_measured_from_the_settled_start(
    tmp_path: Path,
) -> None:
    opener = OpenAtFirstBatch()

    def open_meter() -> SteadyMeter:
        if not opener.gate.wait(5):
            raise RuntimeError("the first epoch's start waited for the meter")
        return SteadyMeter()

    meter = BackgroundMeter(open_meter, ("cpu",), name="steady", clock=time.monotonic)
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=0)
    trainer = make_trainer(tmp_path, callback, callbacks=[opener], max_epochs=2, limit_val_batches=0)
    trainer.fit(BoringModel())
    epochs = callback.run.ledger.records
    assert [e.missing for e in epochs] == [False, False]
    for epoch in epochs:  # constant power: the settled start gives the epoch its time's share exactly
        assert epoch.energy_j == pytest.approx(POWER_W * epoch.duration_s, rel=0.01)
    assert callback.total_j == pytest.approx(sum(e.energy_j or 0.0 for e in epochs))
