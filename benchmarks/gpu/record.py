"""Record real GPU energy traces and validate the meters (issue #6). Run by ``make gpu-validate``.

For each workload: ``--epochs`` short epochs (about ``--epoch-seconds`` each) trained with
``EnergyCallback(meter=RecordingMeter(NvmlMeter(..., sample_power=True), path))``; the trace goes to
``--out/<workload>.json``. Then it prints Markdown tables:

* NVML read latency (median, P99) of ``NvmlMeter.read()``;
* per workload, energy counter vs integrated power samples over the same epochs;
* callback overhead: wall time with / without the callback.

``--dry-run`` (or ``--device cpu``) runs tiny models on the CPU for 2 epochs with a FakeMeter: a smoke test of
this script, not a measurement. See docs/validation.md.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS, build_workload, loader, steps_for_target

from lightning_energy.meters import FakeMeter, NvmlMeter, RecordingMeter, Trace, load_trace
from lightning_energy.meters.base import EnergyMeter

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "traces"


class _EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.epoch_s: list[float] = []
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(trainer)
        self.epoch_s.append(time.perf_counter() - self._t0)


def _sync(trainer: pl.Trainer) -> None:
    import torch

    if trainer.strategy.root_device.type == "cuda":
        torch.cuda.synchronize(trainer.strategy.root_device)


def _trainer(device: str, epochs: int, precision: str, callbacks: list[pl.Callback]) -> pl.Trainer:
    return pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        precision=precision,  # type: ignore[arg-type]
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=callbacks,
    )


def fit(
    name: str, *, device: str, epochs: int, steps: int, tiny: bool, callbacks: list[pl.Callback]
) -> float:
    """Train workload ``name``; wall seconds of ``trainer.fit``."""
    workload = build_workload(name, tiny=tiny, epochs=epochs)
    trainer = _trainer(device, epochs, workload.precision, callbacks)
    t0 = time.perf_counter()
    trainer.fit(workload.module, train_dataloaders=loader(steps))
    _sync(trainer)
    return time.perf_counter() - t0


def calibrate_steps(name: str, *, device: str, tiny: bool, epoch_s: float) -> int:
    """Steps per epoch for epochs of about ``epoch_s`` seconds (timed on a warm second epoch of 20 steps)."""
    timer = _EpochTimer()
    fit(name, device=device, epochs=2, steps=20, tiny=tiny, callbacks=[timer])
    return steps_for_target(timer.epoch_s[-1] / 20, epoch_s)


def record_workload(
    name: str,
    *,
    out: Path,
    device: str,
    epochs: int,
    steps: int,
    tiny: bool,
    make_meter: Callable[[], EnergyMeter],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Train ``name`` with the energy callback on a recording meter; returns the trace path."""
    from lightning_energy import EnergyCallback

    path = out / f"{name}.json"
    workload = build_workload(name, tiny=tiny, epochs=epochs)
    recorder = RecordingMeter(make_meter(), path, meta={**workload.descriptor, **(meta or {})})
    callback = EnergyCallback(meter=recorder, estimate=False, report=False, history_path=False)
    trainer = _trainer(device, epochs, workload.precision, [callback])
    t0 = time.perf_counter()
    try:
        trainer.fit(workload.module, train_dataloaders=loader(steps))
    finally:
        recorder.meta.update(epochs=epochs, steps_per_epoch=steps, fit_wall_s=time.perf_counter() - t0)
        recorder.close()
    return path


# ------------------------------------------------------------------------------------------------ analysis
def read_latency_ms(read: Callable[[], object], n: int = 1000) -> tuple[float, float]:
    """Median and P99 latency of ``read()`` in milliseconds."""
    times: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        read()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def integrate_power_j(samples: Sequence[tuple[float, float]], t0_s: float, t1_s: float) -> float | None:
    """Trapezoid integral of (t_s, W) samples over [t0_s, t1_s] (ends interpolated); None if not covered."""
    points = sorted(samples)
    if len(points) < 2 or points[0][0] > t0_s or points[-1][0] < t1_s or t1_s <= t0_s:
        return None

    def power_at(t_s: float) -> float:
        for (ta, wa), (tb, wb) in itertools.pairwise(points):
            if ta <= t_s <= tb:
                return wa if tb == ta else wa + (wb - wa) * (t_s - ta) / (tb - ta)
        return points[-1][1]

    inside = [(t, w) for t, w in points if t0_s < t < t1_s]
    curve = [(t0_s, power_at(t0_s)), *inside, (t1_s, power_at(t1_s))]
    return sum(0.5 * (wa + wb) * (tb - ta) for (ta, wa), (tb, wb) in itertools.pairwise(curve))


def counter_vs_sampling(trace: Trace, component: str = "gpu0") -> list[dict[str, float | int | None]]:
    """Per epoch: energy from the boundary readings (counter) and from the power samples; gap in %."""
    starts = {r.epoch: r for r in trace.readings if r.event == "epoch_start" and r.joules}
    rows: list[dict[str, float | int | None]] = []
    for end in trace.readings:
        if end.event != "epoch_end" or not end.joules or end.epoch not in starts:
            continue
        start = starts[end.epoch]
        assert start.joules is not None
        counter_j = end.joules.get(component, 0.0) - start.joules.get(component, 0.0)
        sampled_j = integrate_power_j(trace.power_samples, start.t_s, end.t_s)
        gap = None if sampled_j is None or counter_j == 0 else 100.0 * (sampled_j - counter_j) / counter_j
        rows.append(
            {
                "epoch": end.epoch,
                "seconds": end.t_s - start.t_s,
                "counter_j": counter_j,
                "sampled_j": sampled_j,
                "gap_pct": gap,
            }
        )
    return rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if value is None:
            return "n/a"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated, from {WORKLOADS}")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--epoch-seconds", type=float, default=15.0, help="target epoch length (10-30 s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--cuda-index", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="tiny CPU run, 2 epochs, FakeMeter")
    parser.add_argument("--overhead-epochs", type=int, default=5, help="epochs per overhead run (0: skip)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"--workloads: unknown {unknown}; choose from {WORKLOADS}")
    dry = args.dry_run or args.device == "cpu"
    device = "cpu" if dry else "cuda"
    epochs = 2 if dry else args.epochs
    if not dry and not 10 <= args.epoch_seconds <= 30:
        parser.error(f"--epoch-seconds must be in [10, 30], got {args.epoch_seconds}")

    def make_meter() -> EnergyMeter:
        if dry:
            return FakeMeter({"gpu0": 300.0}, seconds_per_read=0.5, hardware={"fake": True, "dry_run": True})
        return NvmlMeter([args.cuda_index], sample_power=True)

    results: list[tuple[str, Path, int]] = []
    for name in names:
        steps = 3 if dry else calibrate_steps(name, device=device, tiny=False, epoch_s=args.epoch_seconds)
        path = record_workload(
            name,
            out=args.out,
            device=device,
            epochs=epochs,
            steps=steps,
            tiny=dry,
            make_meter=make_meter,
            meta={"dry_run": dry},
        )
        results.append((name, path, steps))
        print(f"recorded {name}: {path} ({epochs} epochs x {steps} steps)", flush=True)

    meter = make_meter()
    try:
        median_ms, p99_ms = read_latency_ms(meter.read, n=200 if dry else 2000)
    finally:
        meter.close()
    print("\n### NVML read latency (NvmlMeter.read)\n")
    print(markdown_table(["median ms", "P99 ms"], [[median_ms, p99_ms]]))

    print("\n### Energy counter vs power sampling (per epoch, gpu0)\n")
    summary_rows: list[list[object]] = []
    for name, path, _steps in results:
        rows = counter_vs_sampling(load_trace(path))
        gaps = [abs(r["gap_pct"]) for r in rows if r["gap_pct"] is not None]
        summary_rows.append(
            [
                name,
                len(rows),
                sum(float(r["counter_j"] or 0) for r in rows),
                statistics.mean(gaps) if gaps else None,
                max(gaps) if gaps else None,
            ]
        )
    print(markdown_table(["workload", "epochs", "counter J", "mean |gap| %", "max |gap| %"], summary_rows))

    if args.overhead_epochs > 0:
        from lightning_energy import EnergyCallback

        print("\n### Callback overhead (wall time with / without)\n")
        overhead_rows: list[list[object]] = []
        for name, _path, steps in results:
            kwargs: dict[str, Any] = {
                "device": device,
                "epochs": 2 if dry else args.overhead_epochs,
                "steps": steps,
                "tiny": dry,
            }
            base_a = fit(name, callbacks=[], **kwargs)
            overhead_meter = make_meter()
            try:
                callback = EnergyCallback(
                    meter=overhead_meter, estimate=False, report=False, history_path=False
                )
                with_cb = fit(name, callbacks=[callback], **kwargs)
            finally:
                overhead_meter.close()
            base_b = fit(name, callbacks=[], **kwargs)
            base = (base_a + base_b) / 2
            overhead_rows.append([name, base, with_cb, with_cb / base])
        print(markdown_table(["workload", "without s", "with s", "ratio"], overhead_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
