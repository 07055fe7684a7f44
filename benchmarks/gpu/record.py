"""Training runs of the GPU visit: the probe, a recording with the energy callback, the overhead runs.

A recording trains a workload (``workloads.py``) with

    EnergyCallback(meter=RecordingMeter(NvmlMeter([i], sample_power=True), OUT/<name>.json),
                   estimate=True, report=False, history_path=False)

so every boundary reading of the energy counter, the 20 Hz power samples, the GPU, the PRE estimate made at
fit start (``meta.pre``) and the run's settings land in the trace (format ``lightning_energy.trace``,
version 1). The trace is rewritten at train start and after every epoch (``meta.complete`` false until the
fit ends), so a run cut short keeps what it measured. The meter is passed explicitly: no host meter, no
CodeCarbon.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from workloads import build_workload, loader

from lightning_energy import EnergyCallback, RecordingMeter
from lightning_energy.meters import EnergyMeter, write_trace

PROBE_STEPS = 20
TINY_PROBE_STEPS = 5

MeterFactory = Callable[[bool], EnergyMeter]  # argument: sample power too (the recorder wants samples)


class EpochTimer(pl.Callback):
    """Wall seconds of every training epoch (CUDA synchronised at the end)."""

    def __init__(self) -> None:
        self.epoch_s: list[float] = []
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(trainer)
        self.epoch_s.append(time.perf_counter() - self._t0)


class TraceWriter(pl.Callback):
    """Rewrites the recording's trace at train start (with PRE's estimate) and after every epoch.

    It must come after the energy callback in the callback list, so that the epoch's end reading is in.
    """

    def __init__(self, recorder: RecordingMeter, callback: EnergyCallback, timer: EpochTimer) -> None:
        self.recorder, self.callback, self.timer = recorder, callback, timer

    def update_meta(self) -> None:
        pre = self.callback.run.pre  # made at train start, before the first step
        self.recorder.meta.update(
            epochs_done=len(self.timer.epoch_s),
            epoch_wall_s=list(self.timer.epoch_s),
            pre=None if pre is None else pre.to_json(),
        )

    def write(self) -> None:
        self.update_meta()
        write_trace(self.recorder.trace(), self.recorder.path)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write()


def _sync(trainer: pl.Trainer) -> None:
    import torch

    if trainer.strategy.root_device.type == "cuda":
        torch.cuda.synchronize(trainer.strategy.root_device)


def _trainer(
    device: str, cuda_index: int, epochs: int, precision: str, callbacks: list[pl.Callback], root: Path
) -> pl.Trainer:
    return pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=[cuda_index] if device == "cuda" else 1,
        max_epochs=epochs,
        precision=precision,  # type: ignore[arg-type]
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
    )


def fit(
    name: str,
    *,
    device: str,
    epochs: int,
    steps: int,
    tiny: bool,
    callbacks: list[pl.Callback],
    cuda_index: int = 0,
    unfreeze_epoch: int | None = None,
) -> float:
    """Train workload ``name``; wall seconds of ``trainer.fit`` (CUDA synchronised)."""
    workload = build_workload(name, tiny=tiny, unfreeze_epoch=unfreeze_epoch)
    with tempfile.TemporaryDirectory(prefix="le-gpu-") as root:
        trainer = _trainer(device, cuda_index, epochs, workload.precision, callbacks, Path(root))
        t0 = time.perf_counter()
        trainer.fit(workload.module, train_dataloaders=loader(workload, steps))
        _sync(trainer)
        return time.perf_counter() - t0


def probe_step_s(name: str, *, device: str, tiny: bool, cuda_index: int = 0) -> float:
    """Seconds per training step (the whole model trained), timed on the warm second of two short epochs."""
    timer = EpochTimer()
    unfreeze = 0 if name == "finetune" else None
    steps = TINY_PROBE_STEPS if tiny else PROBE_STEPS
    fit(
        name,
        device=device,
        epochs=2,
        steps=steps,
        tiny=tiny,
        callbacks=[timer],
        cuda_index=cuda_index,
        unfreeze_epoch=unfreeze,
    )
    return timer.epoch_s[-1] / steps


def record_workload(
    name: str,
    *,
    path: Path,
    device: str,
    epochs: int,
    steps: int,
    tiny: bool,
    make_meter: MeterFactory,
    meta: dict[str, Any] | None = None,
    cuda_index: int = 0,
    unfreeze_epoch: int | None = None,
) -> Path:
    """Train ``name`` with the energy callback on a recording meter writing ``path``; returns ``path``."""
    workload = build_workload(name, tiny=tiny, unfreeze_epoch=unfreeze_epoch)
    recorder = RecordingMeter(make_meter(True), path, meta={**workload.descriptor, **(meta or {})})
    callback = EnergyCallback(meter=recorder, estimate=True, report=False, history_path=False)
    timer = EpochTimer()
    writer = TraceWriter(recorder, callback, timer)
    recorder.meta.update(epochs=epochs, steps_per_epoch=steps, complete=False)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="le-gpu-") as root:
            callbacks: list[pl.Callback] = [callback, timer, writer]  # the writer after the energy callback
            trainer = _trainer(device, cuda_index, epochs, workload.precision, callbacks, Path(root))
            trainer.fit(workload.module, train_dataloaders=loader(workload, steps))
        recorder.meta["complete"] = len(timer.epoch_s) == epochs
    finally:
        writer.update_meta()
        recorder.meta.update(
            fit_wall_s=time.perf_counter() - t0,
            recorded_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        recorder.close()  # writes the final trace
    return path


def overhead(
    name: str,
    *,
    device: str,
    epochs: int,
    steps: int,
    tiny: bool,
    fits: int,
    make_meter: MeterFactory,
    cuda_index: int = 0,
) -> dict[str, Any]:
    """``fits`` runs without / with the callback in ABBA order (which cancels a linear drift); wall-time
    ratios of the whole fits and of the training epochs, and the one-off seconds of setup and teardown."""
    if fits < 2 or fits % 2:
        raise ValueError(f"fits must be an even number >= 2, got {fits!r}")
    order = ([False, True, True, False] * fits)[:fits]
    runs: list[dict[str, Any]] = []
    for with_callback in order:
        timer = EpochTimer()
        callbacks: list[pl.Callback] = [timer]
        meter = make_meter(False) if with_callback else None
        try:
            if meter is not None:
                callbacks.insert(0, EnergyCallback(meter=meter, history_path=False, report=False))
            fit_s = fit(
                name,
                device=device,
                epochs=epochs,
                steps=steps,
                tiny=tiny,
                callbacks=callbacks,
                cuda_index=cuda_index,
            )
        finally:
            if meter is not None:
                meter.close()
        runs.append({"callback": with_callback, "fit_s": fit_s, "epochs_s": sum(timer.epoch_s)})

    def total(key: str, with_callback: bool) -> float:
        return float(sum(r[key] for r in runs if r["callback"] == with_callback))

    def one_off_s(with_callback: bool) -> float:  # setup and teardown: PRE, meter start and stop
        return (total("fit_s", with_callback) - total("epochs_s", with_callback)) / (fits // 2)

    return {
        "workload": name,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "callback": "EnergyCallback(meter=NvmlMeter([i]), history_path=False, report=False)",
        "runs": runs,
        "fit_ratio": total("fit_s", True) / total("fit_s", False),
        "epochs_ratio": total("epochs_s", True) / total("epochs_s", False),
        "one_off_s": one_off_s(True) - one_off_s(False),
    }
