"""Runbook steps 2-5: record real GPU energy traces of the workloads (see benchmarks/gpu/README.md).

    PYTHONPATH=$PWD python3 benchmarks/gpu/record.py --workloads resnet18,resnet50 --out OUT/rec1

For each workload, one short probe (2 epochs of 20 steps; the second, warm, epoch is timed) sets the steps per
epoch so that an epoch lasts about ``--epoch-seconds``; then ``--epochs`` epochs are trained with

    EnergyCallback(meter=RecordingMeter(NvmlMeter([i], sample_power=True), OUT/<workload>.json),
                   estimate=True, report=False, history_path=False)

so every boundary reading of the energy counter, the 20 Hz power samples, the GPU, the PRE estimate made at
fit start (``meta.pre``) and the run's settings land in the trace (format: lightning_energy.trace, version 1).
The meter is passed explicitly: neither CodeCarbon nor a host meter is needed.

``--overhead a,b``: for each workload, ``--overhead-pairs`` blocks of four runs of ``--overhead-epochs``
epochs without and with the callback (its defaults, with an NVML meter and no history), in the order
without, with, with, without, which cancels a linear drift. Reported: the ratio of the training epochs' wall
time with / without (the per-epoch cost, what a long run pays), the ratio of the whole fits, and the one-off
seconds of setup and teardown (PRE, report, meter start) that a long run amortises.

``OUT/record_summary.json`` (calibration, timings, overhead, versions, skipped or failed workloads) is
rewritten after every step, so a command stopped at its time limit keeps what it finished. A workload whose
complete trace is already in OUT is skipped (``--force`` records it again); a workload or overhead run that
would not end within ``--budget-s`` of the command's start is skipped, and the command to run it is printed.

``--device cpu`` trains tiny models on the CPU, still through ``NvmlMeter`` (a dry run against a fake
``pynvml``, tests/benchmarks); ``--dry-run`` trains tiny models on the CPU with a ``FakeMeter`` (no NVML at
all). Neither is a measurement: never commit their traces (``meta.dry_run`` is true).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analysis import write_json
from workloads import WORKLOADS, build_workload, loader, steps_for_target

from lightning_energy.meters import FakeMeter, NvmlMeter, RecordingMeter, TraceFormatError, load_trace
from lightning_energy.meters.base import EnergyMeter

SUMMARY_FILE = "record_summary.json"
RERUN = "PYTHONPATH=$PWD python3 benchmarks/gpu/record.py"
SUMMARY_FORMAT = "lightning_energy.gpu_record_summary"
PROBE_STEPS = 20
TINY_STEPS = 3
# Budget guesses in seconds (an H100); deliberately pessimistic so a command never meets its 10-minute limit.
START_S, PROBE_S, COMPILE_S, EPOCH_MARGIN = 10.0, 20.0, 90.0, 1.1

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
) -> float:
    """Train workload ``name``; wall seconds of ``trainer.fit`` (CUDA synchronised)."""
    workload = build_workload(name, tiny=tiny, epochs=epochs)
    with tempfile.TemporaryDirectory(prefix="le-gpu-") as root:
        trainer = _trainer(device, cuda_index, epochs, workload.precision, callbacks, Path(root))
        t0 = time.perf_counter()
        trainer.fit(workload.module, train_dataloaders=loader(workload, steps))
        _sync(trainer)
        return time.perf_counter() - t0


def probe_step_s(name: str, *, device: str, tiny: bool, cuda_index: int = 0) -> float:
    """Seconds per step, timed on the warm second epoch of a 2-epoch, 20-step probe."""
    timer = EpochTimer()
    fit(name, device=device, epochs=2, steps=PROBE_STEPS, tiny=tiny, callbacks=[timer], cuda_index=cuda_index)
    return timer.epoch_s[-1] / PROBE_STEPS


def record_workload(
    name: str,
    *,
    out: Path,
    device: str,
    epochs: int,
    steps: int,
    tiny: bool,
    make_meter: MeterFactory,
    meta: dict[str, Any] | None = None,
    cuda_index: int = 0,
) -> Path:
    """Train ``name`` with the energy callback on a recording meter; returns the trace path."""
    from lightning_energy import EnergyCallback

    path = out / f"{name}.json"
    workload = build_workload(name, tiny=tiny, epochs=epochs)
    recorder = RecordingMeter(make_meter(True), path, meta={**workload.descriptor, **(meta or {})})
    callback = EnergyCallback(meter=recorder, estimate=True, report=False, history_path=False)
    timer = EpochTimer()
    recorder.meta.update(epochs=epochs, steps_per_epoch=steps, complete=False)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="le-gpu-") as root:
            trainer = _trainer(device, cuda_index, epochs, workload.precision, [callback, timer], Path(root))
            trainer.fit(workload.module, train_dataloaders=loader(workload, steps))
        recorder.meta["complete"] = len(timer.epoch_s) == epochs
    finally:
        recorder.meta.update(
            fit_wall_s=time.perf_counter() - t0,
            epoch_wall_s=list(timer.epoch_s),
            pre=None if callback.run.pre is None else callback.run.pre.to_json(),  # PRE made at fit start
            recorded_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        recorder.close()
    return path


def overhead(
    name: str,
    *,
    device: str,
    epochs: int,
    steps: int,
    tiny: bool,
    pairs: int,
    make_meter: MeterFactory,
    cuda_index: int = 0,
) -> dict[str, Any]:
    """Runs without / with the callback in ABBA order; wall-time ratios of the whole fits and the epochs."""
    from lightning_energy import EnergyCallback

    runs: list[dict[str, Any]] = []
    for with_callback in [False, True, True, False] * pairs:
        timer = EpochTimer()
        callbacks: list[pl.Callback] = [timer]
        meter = make_meter(False) if with_callback else None
        try:
            if meter is not None:
                callbacks.insert(0, EnergyCallback(meter=meter, history_path=False))
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

    def one_off_s(with_callback: bool) -> float:  # setup and teardown: PRE, report, meter start and stop
        return (total("fit_s", with_callback) - total("epochs_s", with_callback)) / (2 * pairs)

    return {
        "workload": name,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "callback": "EnergyCallback(meter=NvmlMeter([i]), history_path=False), other arguments default",
        "runs": runs,
        "fit_ratio": total("fit_s", True) / total("fit_s", False),
        "epochs_ratio": total("epochs_s", True) / total("epochs_s", False),
        "one_off_s": one_off_s(True) - one_off_s(False),
    }


# ------------------------------------------------------------------------------------------------ main
def environment(device: str, cuda_index: int) -> dict[str, Any]:
    import torch

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "lightning": pl.__version__,
        "nvidia_ml_py": version("nvidia-ml-py"),
        "device": device,
        "gpu_name": torch.cuda.get_device_name(cuda_index) if device == "cuda" else None,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def complete_trace(path: Path) -> bool:
    """Whether ``path`` holds a trace this script finished (resuming skips it)."""
    try:
        return bool(load_trace(path).meta.get("complete"))
    except (OSError, TraceFormatError):
        return False


def previous_summary(path: Path) -> dict[str, Any]:
    """The summary an earlier run left in the output folder, or ``{}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == SUMMARY_FORMAT else {}


def parse_names(text: str, parser: argparse.ArgumentParser, option: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"{option}: unknown {unknown}; choose from {', '.join(WORKLOADS)}")
    return names


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str], list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (traces and summary)")
    parser.add_argument("--workloads", default="", help=f"comma-separated, from {', '.join(WORKLOADS)}")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per recording (default 12; 2 tiny)")
    parser.add_argument("--epoch-seconds", type=float, default=10.0, help="target epoch length (5-30 s)")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch: skips the probe")
    parser.add_argument("--overhead", default="", help="comma-separated workloads for the overhead runs")
    parser.add_argument("--overhead-epochs", type=int, default=2, help="epochs per overhead run (default 2)")
    parser.add_argument("--overhead-pairs", type=int, default=1, help="ABBA blocks per workload (default 1)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip what would end later (480 s)")
    parser.add_argument("--cuda-index", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="record workloads whose trace is complete")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: tiny, NvmlMeter")
    parser.add_argument("--dry-run", action="store_true", help="tiny CPU models with a FakeMeter")
    args = parser.parse_args(argv)
    names = parse_names(args.workloads, parser, "--workloads")
    overhead_names = parse_names(args.overhead, parser, "--overhead")
    if not names and not overhead_names:
        parser.error("give --workloads and/or --overhead")
    if not 5 <= args.epoch_seconds <= 30:
        parser.error(f"--epoch-seconds must be in [5, 30], got {args.epoch_seconds}")
    for option in ("epochs", "steps", "overhead_epochs", "overhead_pairs"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {value}")
    if args.budget_s <= 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s}")
    return args, names, overhead_names


def main(argv: Sequence[str] | None = None) -> int:
    args, names, overhead_names = parse_args(argv)
    started = time.monotonic()
    tiny = args.dry_run or args.device == "cpu"
    device = "cpu" if tiny else "cuda"
    epochs = args.epochs if args.epochs is not None else (2 if tiny else 12)

    def make_meter(sample_power: bool) -> EnergyMeter:
        if args.dry_run:
            return FakeMeter({"gpu0": 300.0}, seconds_per_read=0.5, hardware={"fake": True, "dry_run": True})
        return NvmlMeter([args.cuda_index], sample_power=sample_power)

    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "version": 1,
        "command": shlex.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dry_run": tiny,
        "epochs": epochs,
        "epoch_seconds_target": args.epoch_seconds,
        "environment": environment(device, args.cuda_index),
        "workloads": {},
        "overhead": [],
    }
    summary_path = args.out / SUMMARY_FILE
    previous = previous_summary(summary_path)  # a rerun into the same folder keeps what it does not redo
    summary["workloads"].update(previous.get("workloads", {}))
    summary["overhead"] = [r for r in previous.get("overhead", []) if r.get("workload") not in overhead_names]
    steps_of: dict[str, int] = {}
    failures = 0

    def fits_budget(seconds: float, what: str, rerun: str) -> bool:
        elapsed = time.monotonic() - started
        if elapsed + seconds <= args.budget_s:
            return True
        print(
            f"skipped {what}: needs about {seconds:.0f} s, {elapsed:.0f} s of --budget-s used; rerun: {rerun}"
        )
        return False

    def steps_for(name: str) -> tuple[int, float | None]:
        if name in steps_of:
            return steps_of[name], None
        if args.steps is not None or tiny:
            steps_of[name] = args.steps or TINY_STEPS
            return steps_of[name], None
        step_s = probe_step_s(name, device=device, tiny=False, cuda_index=args.cuda_index)
        steps_of[name] = steps_for_target(step_s, args.epoch_seconds)
        return steps_of[name], step_s

    for name in names:
        path = args.out / f"{name}.json"
        entry: dict[str, Any] = {"trace": path.name}
        summary["workloads"][name] = entry
        if not args.force and complete_trace(path):
            entry["status"] = "kept (complete trace already there)"
            print(f"kept {name}: {path} is complete")
            continue
        estimate_s = START_S + PROBE_S + (COMPILE_S if name == "compiled" else 0.0)
        estimate_s += epochs * args.epoch_seconds * EPOCH_MARGIN if not tiny else 0.0
        rerun = f"{RERUN} --workloads {name} --out {args.out}"
        if not fits_budget(estimate_s, name, rerun):
            entry.update(status="skipped (time budget)", rerun=rerun)
            write_json(summary, summary_path)
            continue
        t0 = time.monotonic()
        try:
            steps, step_s = steps_for(name)
            entry.update(steps_per_epoch=steps, probe_step_s=step_s)
            record_workload(
                name,
                out=args.out,
                device=device,
                epochs=epochs,
                steps=steps,
                tiny=tiny,
                make_meter=make_meter,
                meta={
                    "dry_run": tiny,
                    "probe_step_s": step_s,
                    "epoch_seconds_target": args.epoch_seconds,
                    "environment": summary["environment"],
                    "recorded_by": "benchmarks/gpu/record.py",
                },
                cuda_index=args.cuda_index,
            )
            entry["status"] = "recorded" if complete_trace(path) else "incomplete"
        except Exception as err:  # one workload failing (OOM, compiler missing) must not stop the others
            failures += 1
            entry.update(status="failed", error=f"{type(err).__name__}: {err}", rerun=rerun)
            print(f"FAILED {name}: {type(err).__name__}: {err}", file=sys.stderr)
        entry["wall_s"] = time.monotonic() - t0
        write_json(summary, summary_path)
        print(f"{entry['status']} {name}: {path} ({epochs} epochs x {entry.get('steps_per_epoch')} steps)")

    for name in overhead_names:
        rerun = f"{RERUN} --overhead {name} --out {args.out}"
        runs = 4 * args.overhead_pairs
        estimate_s = (0.0 if name in steps_of or tiny else PROBE_S) + runs * (
            START_S + args.overhead_epochs * args.epoch_seconds * EPOCH_MARGIN * (not tiny)
        )
        if not fits_budget(estimate_s, f"overhead {name}", rerun):
            summary["overhead"].append({"workload": name, "status": "skipped (time budget)", "rerun": rerun})
            write_json(summary, summary_path)
            continue
        try:
            steps, _ = steps_for(name)
            row = overhead(
                name,
                device=device,
                epochs=args.overhead_epochs,
                steps=steps,
                tiny=tiny,
                pairs=args.overhead_pairs,
                make_meter=make_meter,
                cuda_index=args.cuda_index,
            )
            row["status"] = "measured"
            print(
                f"overhead {name}: with / without = {row['fit_ratio']:.4f} (fit), {row['epochs_ratio']:.4f}"
            )
        except Exception as err:
            failures += 1
            row = {"workload": name, "status": "failed", "error": f"{type(err).__name__}: {err}"}
            print(f"FAILED overhead {name}: {type(err).__name__}: {err}", file=sys.stderr)
        summary["overhead"].append(row)
        write_json(summary, summary_path)

    summary["wall_s"] = time.monotonic() - started
    write_json(summary, summary_path)
    print(f"wrote {summary_path} ({summary['wall_s']:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
