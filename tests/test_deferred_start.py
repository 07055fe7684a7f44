"""The first epoch's start does not wait for a meter still opening in the background (CPU, virtual clock)."""

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


class VirtualClock:
    """``time.monotonic`` for the fit: 10 ms per training batch, 1 s between set-up and the first epoch."""

    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


class SteadyMeter:
    """10 W on the (virtual) monotonic clock from the moment it is told to count from."""

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
    """Lets the meter finish opening only once the first training batch has started (an epoch start that
    waited for it would wait until the opening thread gives up); moves the clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.gate = threading.Event()
        self.clock = clock

    def on_train_start(self, *args: Any) -> None:
        self.clock.t_s += 1.0  # the first epoch starts 1 s after the fit's first reading (the baseline)

    def on_train_batch_start(self, *args: Any) -> None:
        self.gate.set()

    def on_train_batch_end(self, *args: Any) -> None:
        self.clock.t_s += 0.01


def test_the_first_epoch_starts_without_waiting_and_is_measured_from_the_settled_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock()
    monkeypatch.setattr(time, "monotonic", clock)
    opener = OpenAtFirstBatch(clock)

    def open_meter() -> SteadyMeter:
        if not opener.gate.wait(5):
            raise RuntimeError("the first epoch's start waited for the meter")
        return SteadyMeter()

    meter = BackgroundMeter(open_meter, ("cpu",), name="steady", clock=clock)
    callback = EnergyCallback(meter=meter, history_path=False, window_batches=0)
    trainer = make_trainer(tmp_path, callback, callbacks=[opener], max_epochs=2, limit_val_batches=0)
    trainer.fit(BoringModel())
    epochs = callback.run.ledger.records
    assert [e.missing for e in epochs] == [False, False]
    # constant power: the settled start gives the first epoch exactly its time's share (4 batches, 40 ms)
    assert [e.energy_j for e in epochs] == pytest.approx([POWER_W * 0.04] * 2, rel=1e-9)
    assert [e.duration_s for e in epochs] == pytest.approx([0.04] * 2, rel=1e-9)
    assert callback.fit_report is not None
    assert callback.fit_report.totals.fit_energy_j == pytest.approx(POWER_W * 1.08, rel=1e-9)
