"""The GPU visit: real-GPU evidence in one command of at most 8 minutes (see benchmarks/gpu/README.md).

    PYTHONPATH=$PWD python3 benchmarks/gpu/visit.py --out $OUT --budget-s 450

Run from the repository root with the machine's own Python (CUDA torch, Lightning, numpy/scipy,
nvidia-ml-py; no install, no network, no CodeCarbon). In order:

1. the NVML check (``nvml_check.py``, under a minute), saved to ``OUT/nvml_check.json`` before its child
   processes run; **it stops the visit (exit status 2, a ``STOP:`` line) if the GPU has no energy counter**;
2. the stages of ``plan.py``, most valuable first: four recordings (a compute-bound CNN, a transformer in
   bf16, a bandwidth-bound CNN, a planned power step), each a probe that sizes epochs of about 5 s and then
   10-12 epochs with the energy callback, its trace ``OUT/<stage>.json`` rewritten after every epoch and
   holding PRE's estimate made at fit start; then four overhead runs (without, with, with, without the
   callback).

``OUT/summary.json`` says what was planned, what ran, what it measured and what was skipped; it is rewritten
after every change, so a command cut by a time limit still returns what it did. A stage that would end
after ``--budget-s`` seconds from the start (by its estimate, ``plan.py``) is skipped and named there.
``OUT`` gets at most 6 files, one level deep. ``--plan`` prints the plan and its time estimate and exits.

``--dry-run`` runs the same code on the CPU with tiny models, a short burst and short epochs, still metering
through ``NvmlMeter`` (tests/benchmarks run it against the fake ``libnvidia-ml.so.1`` of tests/nvml_fake):
a test of the flow, never a measurement (``dry_run`` is true in every file).

Exit status: 0 done (stages skipped for time included), 1 a stage failed (the others ran), 2 stopped at the
NVML check.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analysis import write_json
from plan import DRY_RUN, H100, STAGES, Budget, Stage, Timing, plan_table, total_estimate_s

VISIT_FORMAT = "lightning_energy.gpu_visit"
VISIT_VERSION = 1
SUMMARY_FILE = "summary.json"
CHECK_FILE = "nvml_check.json"
NO_COUNTER_EXIT = 2


class Summary:
    """``OUT/summary.json``, rewritten after every change."""

    def __init__(self, out: Path, data: dict[str, Any], *, started: float) -> None:
        self.path = out / SUMMARY_FILE
        self.data = data
        self.started = started

    def stage(self, name: str) -> dict[str, Any]:
        return self.data["stages"][name]  # type: ignore[no-any-return]

    def update(self, name: str, **fields: Any) -> None:
        self.stage(name).update(fields)
        self.save()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.monotonic() - self.started, 3)
        write_json(self.data, self.path)


def versions() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "nvidia_ml_py": version("nvidia-ml-py"),
        "lightning": version("lightning"),
        "torch": getattr(torch, "__version__", None) if torch else version("torch"),
        "cuda_runtime": getattr(getattr(torch, "version", None), "cuda", None) if torch else None,
    }


def codecarbon_imported() -> bool:
    return any(name == "codecarbon" or name.startswith("codecarbon.") for name in sys.modules)


# ------------------------------------------------------------------------------------------- NVML check
def nvml_check(args: argparse.Namespace, summary: Summary) -> dict[str, Any]:
    """The check, saved before its child processes and again after them."""
    from nvml_check import CheckSettings, check_mapping, run_check

    settings = CheckSettings(
        device="cpu" if args.dry_run else "cuda",
        cuda_index=args.cuda_index,
        burst_s=0.3 if args.dry_run else CheckSettings.burst_s,
        idle_s=0.1 if args.dry_run else CheckSettings.idle_s,
    )
    summary.update("nvml_check", status="running")
    t0 = time.monotonic()
    result = run_check(settings)
    result["versions"] = versions()
    path = write_json(result, summary.path.parent / CHECK_FILE)  # saved before the children
    if result["gpu"]["energy_counter"]:
        result["mapping"] = check_mapping(result["gpu"]["uuid"], settings.device)
        write_json(result, path)
    summary.update("nvml_check", wall_s=round(time.monotonic() - t0, 3), file=path.name)
    return result


# ---------------------------------------------------------------------------------------------- stages
def run_stage(
    stage: Stage, args: argparse.Namespace, timing: Timing, budget: Budget, summary: Summary
) -> None:
    """Probe, then record or measure the overhead; the outcome goes into the summary."""
    from record import overhead, probe_step_s, record_workload
    from workloads import steps_for_target

    from lightning_energy.meters import NvmlMeter, load_trace

    device, tiny = ("cpu", True) if args.dry_run else ("cuda", False)

    def make_meter(sample_power: bool) -> NvmlMeter:
        return NvmlMeter([args.cuda_index], sample_power=sample_power)

    summary.update(stage.name, status="probing")
    step_s = probe_step_s(stage.workload, device=device, tiny=tiny, cuda_index=args.cuda_index)
    steps = steps_for_target(step_s, timing.epoch_s)
    epoch_s = max(timing.epoch_s, steps * step_s)
    rest_s = stage.fits * (timing.fit_s + stage.epochs * epoch_s * timing.margin)
    summary.update(stage.name, probe_step_s=step_s, steps_per_epoch=steps, estimate_after_probe_s=rest_s)
    if not budget.fits(rest_s):  # the GPU is slower than planned: what is left would end too late
        summary.update(stage.name, status=budget.why_not(rest_s) + " (after the probe)")
        return
    summary.update(stage.name, status="running")
    if stage.kind == "overhead":
        row = overhead(
            stage.workload,
            device=device,
            epochs=stage.epochs,
            steps=steps,
            tiny=tiny,
            fits=stage.fits,
            make_meter=make_meter,
            cuda_index=args.cuda_index,
        )
        summary.update(stage.name, status="measured", overhead=row)
        return
    path = summary.path.parent / f"{stage.name}.json"
    summary.update(stage.name, trace=path.name)
    record_workload(
        stage.workload,
        path=path,
        device=device,
        epochs=stage.epochs,
        steps=steps,
        tiny=tiny,
        make_meter=make_meter,
        meta={
            "dry_run": args.dry_run,
            "stage": stage.name,
            "probe_step_s": step_s,
            "epoch_seconds_target": timing.epoch_s,
            "environment": summary.data["environment"],
            "recorded_by": "benchmarks/gpu/visit.py",
        },
        cuda_index=args.cuda_index,
        unfreeze_epoch=stage.unfreeze_epoch,
    )
    complete = bool(load_trace(path).meta.get("complete"))
    summary.update(stage.name, status="recorded" if complete else "incomplete")


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="output folder (at most 6 files, one level)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="skip what would end later (450)")
    parser.add_argument("--cuda-index", type=int, default=0, help="the CUDA device to run on (default 0)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models: a test of the flow")
    parser.add_argument("--plan", action="store_true", help="print the plan and its time estimate, exit")
    args = parser.parse_args(argv)
    if not args.plan and args.out is None:
        parser.error("--out is required")
    if not args.budget_s > 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s}")
    if args.cuda_index < 0:
        parser.error(f"--cuda-index must be >= 0, got {args.cuda_index}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    timing = DRY_RUN if args.dry_run else H100
    estimate_s = total_estimate_s(timing)
    machine = "the CPU (dry run)" if args.dry_run else "an H100/H200"
    print(f"plan: about {estimate_s:.0f} s on {machine}; --budget-s {args.budget_s:g}\n")
    print(plan_table(timing) + "\n", flush=True)
    if args.plan:
        return 0
    budget = Budget(args.budget_s, clock=time.monotonic, started=started)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = Summary(
        args.out,
        {
            "format": VISIT_FORMAT,
            "version": VISIT_VERSION,
            "command": shlex.join(["visit.py", *(sys.argv[1:] if argv is None else argv)]),
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dry_run": args.dry_run,
            "budget_s": args.budget_s,
            "estimate_s": round(estimate_s, 1),
            "timing": vars(timing),
            "environment": versions(),
            "stages": {
                "nvml_check": {"status": "pending", "estimate_s": timing.start_s + timing.check_s},
                **{
                    s.name: {
                        "status": "pending",
                        "kind": s.kind,
                        "workload": s.workload,
                        "epochs": s.epochs,
                        "fits": s.fits,
                        "estimate_s": round(s.estimate_s(timing), 1),
                    }
                    for s in STAGES
                },
            },
            "skipped": [],
            "failed": [],
            "finished": False,
        },
        started=started,
    )
    summary.save()
    try:
        check = nvml_check(args, summary)
    except Exception as err:  # no driver, no GPU: nothing else can be measured
        summary.update("nvml_check", status="failed", error=f"{type(err).__name__}: {err}")
        print(f"STOP: the NVML check failed: {type(err).__name__}: {err}", file=sys.stderr)
        return NO_COUNTER_EXIT
    gpu = check["gpu"]
    if not gpu["energy_counter"]:
        summary.update("nvml_check", status="stopped: no energy counter")
        print(
            f"STOP: {gpu['name']} ({gpu['uuid']}) has no NVML energy counter "
            "(nvmlDeviceGetTotalEnergyConsumption is not supported); recordings would only measure sampled "
            "power, so the visit stops here.",
            file=sys.stderr,
        )
        return NO_COUNTER_EXIT
    summary.data["environment"] = {**versions(), "gpu_name": gpu["name"], "gpu_uuid": gpu["uuid"]}
    bad_mapping = [m["cuda_visible_devices"] for m in check.get("mapping", []) if not m["ok"]]
    summary.update("nvml_check", status="done", mapping_ok=not bad_mapping)
    if bad_mapping:
        print(f"WARNING: CUDA_VISIBLE_DEVICES mapping check failed for {bad_mapping}", file=sys.stderr)
    print(f"nvml_check: {gpu['name']}, counter yes, {budget.elapsed_s:.0f} s", flush=True)

    for stage in STAGES:
        estimate = stage.estimate_s(timing)
        if not budget.fits(estimate):
            summary.data["skipped"].append(stage.name)
            summary.update(stage.name, status=budget.why_not(estimate))
            print(f"{stage.name}: {summary.stage(stage.name)['status']}", flush=True)
            continue
        t0 = time.monotonic()
        try:
            run_stage(stage, args, timing, budget, summary)
        except Exception as err:  # one stage failing (out of memory, say) must not stop the others
            summary.data["failed"].append(stage.name)
            summary.update(stage.name, status="failed", error=f"{type(err).__name__}: {err}")
        if summary.stage(stage.name)["status"].startswith("skipped"):
            summary.data["skipped"].append(stage.name)
        summary.update(stage.name, wall_s=round(time.monotonic() - t0, 3))
        print(f"{stage.name}: {summary.stage(stage.name)['status']} ({budget.elapsed_s:.0f} s)", flush=True)

    summary.data.update(finished=True, codecarbon_imported=codecarbon_imported())
    summary.save()
    skipped = ", ".join(summary.data["skipped"]) or "none"
    print(f"\nwrote {summary.path.parent} in {budget.elapsed_s:.0f} s; skipped: {skipped}")
    try:  # the tables, for a first look; the files are what count
        import summarise

        print("\n" + summarise.render(summarise.load_results([args.out])))
    except Exception as err:
        print(f"(tables not printed: {type(err).__name__}: {err}; run summarise.py on the folder)")
    return 1 if summary.data["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
