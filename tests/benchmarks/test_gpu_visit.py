"""The GPU visit (benchmarks/gpu/) on the CPU: pure helpers, the time budget, then the command itself.

The dry run is the visit's own command line (``python benchmarks/gpu/visit.py --out OUT --budget-s 450``,
``PYTHONPATH`` = the repository) plus ``--dry-run`` (the CPU, tiny models, short epochs: the same code),
against the REAL nvidia-ml-py binding and the fake ``libnvidia-ml.so.1`` of tests/nvml_fake (two GPUs,
``CUDA_VISIBLE_DEVICES=1``: CUDA's device 0 is NVML's device 1), with ``tests/benchmarks/guard`` first on the
path: it refuses and logs any import of CodeCarbon and any network connection, as the GPU machine would.
It proves the flow and the files, not a measurement: docs/validation.md says what a real GPU gives.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lightning_energy.meters import FakeMeter, Trace, TraceReading, load_trace

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "gpu"
GUARD = Path(__file__).resolve().parent / "guard"
sys.path.insert(0, str(BENCH))
analysis = pytest.importorskip("analysis")
summarise = pytest.importorskip("summarise")
plan = pytest.importorskip("plan")

GPU_A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
GPU_B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"
TWO_GPUS = (
    "driver 550.54.15\n"
    f"gpu uuid={GPU_A} name=NVIDIA_H100_80GB_HBM3 energy=0,+1000 instant=300000 power=290000 "
    "limit=700000 memory=85899345920 pci=00000000:3B:00.0\n"
    f"gpu uuid={GPU_B} name=NVIDIA_H100_80GB_HBM3 energy=5000000,+2000 instant=350000 power=340000 "
    "limit=700000 memory=85899345920 pci=00000000:5B:00.0\n"
)
RECORDINGS = {s.name: s for s in plan.STAGES if s.kind == "record"}


@dataclass(frozen=True)
class Visit:
    out: Path
    returncode: int
    stdout: str
    stderr: str
    guard_log: str  # attempts at CodeCarbon or the network, one a line


def run_visit(fake_nvml_dir: Path, tmp: Path, *args: str, script: str = TWO_GPUS) -> Visit:
    """The visit's command from the repository root, on the fake NVML, guarded; ``tmp/out`` is ``$OUT``."""
    (tmp / "nvml.txt").write_text(script, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(GUARD), str(REPO)]),
        "LD_LIBRARY_PATH": os.pathsep.join([str(fake_nvml_dir), os.environ.get("LD_LIBRARY_PATH", "")]),
        "FAKE_NVML_SCRIPT": str(tmp / "nvml.txt"),
        "VISIT_GUARD_LOG": str(tmp / "guard.log"),
        "CUDA_VISIBLE_DEVICES": "1",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }
    command = [sys.executable, "benchmarks/gpu/visit.py", "--out", str(tmp / "out"), *args]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    guard = tmp / "guard.log"
    return Visit(
        tmp / "out",
        result.returncode,
        result.stdout,
        result.stderr,
        guard.read_text(encoding="utf-8") if guard.exists() else "",
    )


# ---------------------------------------------------------------------------------------- pure helpers
def test_integrate_power_interpolates_at_the_ends() -> None:
    samples = [(0.0, 100.0), (1.0, 200.0), (2.0, 200.0)]
    assert analysis.integrate_power_j(samples, 0.0, 2.0) == pytest.approx(150.0 + 200.0)
    assert analysis.integrate_power_j(samples, 0.5, 1.5) == pytest.approx(0.5 * (150.0 + 200.0) / 2 + 100.0)
    assert analysis.integrate_power_j(samples, -1.0, 1.0) is None  # not covered
    assert analysis.integrate_power_j(samples, 1.0, 1.0) is None  # empty window


def test_percentile_latency_and_change_intervals() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert analysis.percentile(values, 99.0) == 990.0 and analysis.percentile(values, 50.0) == 500.0
    ticks = iter(range(100))
    latency = analysis.time_calls(lambda: None, 10, lambda: float(next(ticks)))
    assert latency.median_us == 1e6 and latency.p99_us == 1e6 and latency.calls == 10
    series = [(0.0, 1.0), (0.01, 1.0), (0.02, 2.0), (0.03, 2.0), (0.07, 3.0), (0.12, 4.0)]
    assert analysis.change_intervals_s(series) == pytest.approx([0.05, 0.05])
    with pytest.raises(ValueError, match="n must be"):
        analysis.time_calls(lambda: None, 0, lambda: 0.0)


def _trace(epochs: int, epoch_j: list[float] | None = None, **meta: Any) -> Trace:
    """A trace with 10 s epochs; gpu0 at 100 W unless ``epoch_j`` says otherwise; power samples at 1 Hz."""
    readings, samples, total_j, t_s = [], [], 0.0, 0.0
    for epoch in range(epochs):
        energy_j = epoch_j[epoch] if epoch_j else 1000.0
        readings.append(TraceReading(t_s, {"gpu0": total_j}, "epoch_start", epoch))
        samples += [(t_s + i, energy_j / 10.0) for i in range(11)]
        t_s, total_j = t_s + 10.0, total_j + energy_j
        readings.append(TraceReading(t_s, {"gpu0": total_j}, "epoch_end", epoch))
        t_s += 0.5
    meta = {"workload": "w", "complete": True, **meta}
    hardware = {"gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}
    return Trace(
        meta=meta, labels={"gpu0": "measured"}, hardware=hardware, readings=readings, power_samples=samples
    )


def test_counter_vs_sampling_and_epochs_of_a_trace() -> None:
    trace = _trace(3, [1000.0, 2000.0, 1500.0])
    rows = analysis.counter_vs_sampling(trace)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert [row["counter_j"] for row in rows] == pytest.approx([1000.0, 2000.0, 1500.0])
    assert [row["sampled_j"] for row in rows] == pytest.approx([1000.0, 2000.0, 1500.0])
    epochs = analysis.trace_epochs(trace)
    assert [e.gpu_j for e in epochs] == [1000.0, 2000.0, 1500.0] and epochs[1].seconds == 10.0


def test_markdown_table_uses_three_significant_figures() -> None:
    table = analysis.markdown_table(["a", "b", "c"], [[1, 2.5, True], ["x", None, 12345.678]])
    assert table.splitlines() == [
        "| a | b | c |",
        "|---|---|---|",
        "| 1 | 2.50 | yes |",
        "| x | n/a | 12346 |",
    ]


def test_step_replay_declares_a_long_steady_trace_stable_and_accurate() -> None:
    replay = summarise.step_replay("w", _trace(30, [1000.0 + 5.0 * math.sin(i) for i in range(30)]))
    assert replay.first_stable is not None and replay.first_stable >= 9  # never before min_epochs
    assert replay.worst_after_stable_pct is not None and replay.worst_after_stable_pct <= 1.0
    assert replay.errors_pct[-1] == pytest.approx(0.0, abs=1e-9)


def test_pre_table_compares_the_estimate_with_the_measured_gpu_energy() -> None:
    from lightning_energy.pre import DataDescriptor, ModelDescriptor, PreEstimator, RunDescriptor, lookup_gpu

    traces = {}
    for name, batch in (("resnet18", 256), ("resnet50", 128)):
        descriptor = RunDescriptor(
            ModelDescriptor(3.6e9 if batch == 256 else 8.2e9, (3, 224, 224), parameter_count=11_000_000),
            DataDescriptor(batch_size=batch, train_samples=batch * 100),
            lookup_gpu("H100 SXM"),
        )
        estimate = PreEstimator.default().predict(descriptor)
        measured_j = estimate.epoch_energy_j * 1.1  # the GPU used 10 % more than PRE says, every epoch
        pre = {"descriptor": descriptor.to_dict(), "total_j": 1.0, "total_epochs": 12}
        traces[name] = (Path(f"{name}.json"), _trace(12, [measured_j] * 12, pre=pre))
    table = summarise.pre_table(summarise.Results(traces=traces))
    for line in table.splitlines()[2:]:
        row = line.split(" | ")
        assert float(row[4]) == pytest.approx(-100.0 / 11.0, rel=1e-2)  # PRE as shipped
        # calibrated on the other workload's run: moved towards the truth, not past it
        assert -100.0 / 11.0 < float(row[6]) < 0.0


def test_copy_traces_names_each_file_after_its_gpu(tmp_path: Path) -> None:
    results = summarise.Results(
        traces={
            "resnet18": (tmp_path / "a.json", _trace(2)),
            "mlp": (tmp_path / "b.json", _trace(2, dry_run=True)),
            "bf16": (tmp_path / "c.json", _trace(2, complete=False)),
        }
    )
    written = summarise.copy_traces(results, tmp_path / "traces")
    assert [p.name for p in written] == ["nvidia_h100_80gb_hbm3_resnet18.json"]  # no dry run, no incomplete
    assert load_trace(written[0]).meta["gpu_name"] == "NVIDIA H100 80GB HBM3"


def test_workloads_validate_names() -> None:
    workloads = pytest.importorskip("workloads")
    with pytest.raises(ValueError, match="name must be one of"):
        workloads.build_workload("vgg")
    with pytest.raises(ValueError, match="unfreeze_epoch is for finetune only"):
        workloads.build_workload("finetune", tiny=True)
    with pytest.raises(ValueError, match="unfreeze_epoch is for finetune only"):
        workloads.build_workload("resnet50", tiny=True, unfreeze_epoch=2)
    with pytest.raises(ValueError, match="step_time_s must be a positive"):
        workloads.steps_for_target(0.0, 15.0)
    assert workloads.steps_for_target(0.1, 15.0) == 150


# ------------------------------------------------------------------------------------------ time budget
def test_the_plan_fits_its_budget_on_an_h100() -> None:
    """The estimate from the per-stage settings: inside the command's default budget and under 8 minutes."""
    total_s = plan.total_estimate_s(plan.H100)
    assert total_s <= 450.0 < 8 * 60
    table = plan.plan_table(plan.H100)
    assert [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[3:]] == [
        s.name for s in plan.STAGES
    ]
    assert table.splitlines()[-1].endswith(f"| {total_s:.0f} |")
    kinds = {s.workload for s in plan.STAGES if s.kind == "record"}
    assert kinds == {"resnet50", "transformer_bf16", "mobilenet_v2", "finetune"}  # the four regimes


def test_stage_estimates_follow_their_settings() -> None:
    timing = plan.Timing(start_s=1, check_s=2, fit_s=3, probe_s=4, epoch_s=5, margin=1.0)
    record = plan.Stage("r", "record", "resnet50", epochs=10)
    assert record.estimate_s(timing) == (3 + 4) + (3 + 10 * 5)
    abba = plan.Stage("o", "overhead", "mlp", epochs=2, fits=4)
    assert abba.estimate_s(timing) == (3 + 4) + 4 * (3 + 2 * 5)
    assert plan.total_estimate_s(timing, (record, abba)) == 1 + 2 + 60 + 59
    with pytest.raises(ValueError, match="margin must be >= 1"):
        plan.Timing(start_s=1, check_s=2, fit_s=3, probe_s=4, epoch_s=5, margin=0.9)


def test_budget_skips_what_would_end_after_it() -> None:
    now = [100.0]
    budget = plan.Budget(450.0, clock=lambda: now[0])
    assert budget.fits(450.0) and not budget.fits(450.1)
    now[0] += 380.0  # 380 s used: a 70 s stage ends at 450, a 71 s one after it
    assert budget.fits(70.0) and not budget.fits(71.0)
    assert budget.why_not(71.0) == "skipped (time budget): needs about 71 s, 380 s of --budget-s 450 used"
    with pytest.raises(ValueError, match="budget_s must be > 0"):
        plan.Budget(0.0, clock=lambda: 0.0)


# ------------------------------------------------------------------------------------------- the dry run
@pytest.fixture(scope="module")
def visit(fake_nvml_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Visit:
    """The whole visit, once, as the GPU machine would run it (plus --dry-run)."""
    return run_visit(fake_nvml_dir, tmp_path_factory.mktemp("visit"), "--budget-s", "450", "--dry-run")


def test_dry_run_writes_at_most_eight_small_files_one_level_deep(visit: Visit) -> None:
    assert visit.returncode == 0, visit.stderr[-3000:]
    files = sorted(p.relative_to(visit.out).as_posix() for p in visit.out.rglob("*"))
    assert files == sorted(["nvml_check.json", "summary.json", *(f"{name}.json" for name in RECORDINGS)])
    assert all((visit.out / f).is_file() and (visit.out / f).stat().st_size < 1_000_000 for f in files)
    assert len(files) <= 8


def test_dry_run_imports_no_codecarbon_and_touches_no_network(visit: Visit) -> None:
    assert visit.guard_log == ""
    assert json.loads((visit.out / "summary.json").read_text())["codecarbon_imported"] is False


def test_the_guard_sees_codecarbon_and_network_attempts(tmp_path: Path) -> None:
    """The guard the dry run relies on does catch both (else the test above could not fail)."""
    code = (
        "import socket\n"
        "try:\n    import codecarbon\nexcept ImportError as err:\n    print('refused', err)\n"
        "try:\n    socket.create_connection(('pypi.org', 443), timeout=1)\nexcept OSError as err:\n"
        "    print('refused', err)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(GUARD), "VISIT_GUARD_LOG": str(tmp_path / "log")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.count("refused") == 2, result.stderr
    log = (tmp_path / "log").read_text()
    assert "import codecarbon" in log and "network socket.create_connection" in log


def test_nvml_check_finds_the_compute_gpu_by_uuid_not_by_index(visit: Visit) -> None:
    check = json.loads((visit.out / "nvml_check.json").read_text())
    gpu = check["gpu"]
    assert check["dry_run"] is True and gpu["energy_counter"] is True
    # CUDA_VISIBLE_DEVICES=1: CUDA's device 0 is NVML's device 1, GPU B, and the meter agrees
    assert (gpu["cuda_index"], gpu["nvml_index"], gpu["uuid"], gpu["meter_uuid"]) == (0, 1, GPU_B, GPU_B)
    assert gpu["instant_power_field"] is True and gpu["power_limit_w"] == 700.0
    assert set(check["latency_us"]) == {"meter_read", "energy_counter", "power_usage", "instant_power"}
    assert all(v["calls"] == 1000 and v["median_us"] <= v["p99_us"] for v in check["latency_us"].values())
    burst = check["burst"]
    assert set(burst["windows"]) == {"burst", "burst_and_idle"} and burst["poller_error"] is None
    for window in burst["windows"].values():  # three integrals of the same window
        assert window["counter_j"] > 0 and window["power_usage_j"] > 0 and window["instant_j"] > 0
    assert [(m["cuda_visible_devices"], m["nvml_uuid"], m["ok"]) for m in check["mapping"]] == [
        (GPU_B, GPU_B, True),
        ("GPU-bbbbbbbb", GPU_B, True),
    ]


def test_every_recording_is_a_complete_trace_with_pre_and_its_planned_epochs(visit: Visit) -> None:
    for name, stage in RECORDINGS.items():
        trace = load_trace(visit.out / f"{name}.json")
        assert trace.meta["complete"] is True and trace.meta["dry_run"] is True, name
        assert trace.meta["epochs"] == trace.meta["epochs_done"] == stage.epochs
        assert trace.hardware["gpus"][0]["uuid"] == GPU_B and trace.labels == {"gpu0": "measured"}
        boundaries = [(r.event, r.epoch) for r in trace.readings if r.event in ("epoch_start", "epoch_end")]
        assert boundaries == [(e, i) for i in range(stage.epochs) for e in ("epoch_start", "epoch_end")]
        assert trace.power_samples, name
        assert "skipped" in trace.meta["pre"]  # PRE models GPUs: skipped on the CPU, made on a GPU
        assert len(trace.meta["epoch_wall_s"]) == stage.epochs
    finetune = load_trace(visit.out / "finetune.json")
    assert finetune.meta["frozen_backbone_until_epoch"] == plan.FINETUNE_UNFREEZE_EPOCH


def test_summary_says_what_ran_and_what_it_measured(visit: Visit) -> None:
    summary = json.loads((visit.out / "summary.json").read_text())
    assert summary["format"] == "lightning_energy.gpu_visit" and summary["finished"] is True
    assert summary["command"] == "visit.py --out " + str(visit.out) + " --budget-s 450 --dry-run"
    assert {name: s["status"] for name, s in summary["stages"].items()} == {
        "nvml_check": "done",
        **{name: "recorded" for name in RECORDINGS},
        "overhead_mlp": "measured",
    }
    assert summary["skipped"] == [] and summary["failed"] == []
    assert summary["elapsed_s"] <= summary["budget_s"]
    row = summary["stages"]["overhead_mlp"]["overhead"]
    assert [r["callback"] for r in row["runs"]] == [False, True, True, False]
    assert all(s["steps_per_epoch"] >= 5 for name, s in summary["stages"].items() if name != "nvml_check")
    assert "plan: about" in visit.stdout and "Callback overhead" in visit.stdout  # the plan, then the tables


def test_summarise_turns_the_returned_folder_into_tables(visit: Visit, tmp_path: Path) -> None:
    markdown = tmp_path / "tables.md"
    args = [str(visit.out), "--markdown", str(markdown), "--copy-traces", str(tmp_path / "t")]
    assert summarise.main([*args, "--allow-dry-run"]) == 0
    text = markdown.read_text()
    for heading in (
        "NVML read latency",
        "integrated three ways",
        "CUDA_VISIBLE_DEVICES mapping",
        "Energy counter vs power sampling",
        "STEP at each epoch",
        "PRE vs measured",
        "Callback overhead",
        "DRY RUN",
    ):
        assert heading in text, heading
    assert "Not done" not in text
    copied = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert copied == sorted(f"nvidia_h100_80gb_hbm3_{name}.json" for name in RECORDINGS)
    assert summarise.main([str(visit.out), "--copy-traces", str(tmp_path / "real")]) == 0
    assert not (tmp_path / "real").exists()  # dry-run traces are never copied for real


def test_a_short_budget_skips_every_stage_and_names_it(fake_nvml_dir: Path, tmp_path: Path) -> None:
    result = run_visit(fake_nvml_dir, tmp_path, "--budget-s", "0.5", "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in result.out.iterdir()) == ["nvml_check.json", "summary.json"]
    summary = json.loads((result.out / "summary.json").read_text())
    names = [s.name for s in plan.STAGES]
    assert summary["skipped"] == names and summary["finished"] is True
    for name in names:
        assert summary["stages"][name]["status"].startswith("skipped (time budget): needs about")
        assert f"{name}: skipped (time budget)" in result.stdout
    assert summary["stages"]["nvml_check"]["status"] == "done"  # the check always runs
    assert result.guard_log == ""


def test_no_energy_counter_stops_the_visit_after_the_check(fake_nvml_dir: Path, tmp_path: Path) -> None:
    script = f"gpu uuid={GPU_A} energy=NOT_SUPPORTED power=290000\ngpu uuid={GPU_B} energy=NOT_SUPPORTED\n"
    result = run_visit(fake_nvml_dir, tmp_path, "--budget-s", "450", "--dry-run", script=script)
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("STOP:")]
    assert GPU_B in line and "no NVML energy counter" in line
    assert sorted(p.name for p in result.out.iterdir()) == ["nvml_check.json", "summary.json"]
    assert json.loads((result.out / "nvml_check.json").read_text())["gpu"]["energy_counter"] is False
    summary = json.loads((result.out / "summary.json").read_text())
    assert summary["stages"]["nvml_check"]["status"] == "stopped: no energy counter"
    assert summary["finished"] is False


@pytest.mark.filterwarnings("ignore:You called .self.log")
def test_the_trace_is_rewritten_after_every_epoch(tmp_path: Path) -> None:
    """A fit cut after epoch k leaves a trace of k epochs: at each epoch start the file already has the
    epochs before it (and PRE's estimate, made at train start)."""
    record = pytest.importorskip("record")
    path = tmp_path / "mlp.json"
    seen: list[tuple[int, bool, bool]] = []

    class Peek(FakeMeter):
        def mark(self, event: str, epoch: int) -> None:
            super().mark(event, epoch)
            if event == "epoch_start":
                meta = load_trace(path).meta
                seen.append((meta["epochs_done"], meta["complete"], meta["pre"] is not None))

    record.record_workload(
        "mlp",
        path=path,
        device="cpu",
        epochs=3,
        steps=3,
        tiny=True,
        make_meter=lambda sample_power: Peek({"gpu0": 300.0}, seconds_per_read=0.5),
    )
    assert seen == [(0, False, True), (1, False, True), (2, False, True)]
    assert load_trace(path).meta["complete"] is True


@pytest.mark.filterwarnings("ignore:You called .self.log")
def test_record_one_tiny_workload_with_a_fake_meter(tmp_path: Path) -> None:
    record = pytest.importorskip("record")
    path = record.record_workload(
        "mlp",
        path=tmp_path / "mlp.json",
        device="cpu",
        epochs=2,
        steps=3,
        tiny=True,
        make_meter=lambda sample_power: FakeMeter({"gpu0": 300.0}, seconds_per_read=0.5),
        meta={"dry_run": True},
    )
    trace = load_trace(path)
    assert trace.meta["workload"] == "mlp" and trace.meta["complete"] is True
    rows = analysis.counter_vs_sampling(trace)
    # 300 W x 0.5 s per read: an epoch spans one or more reads (more if the live bar refreshed).
    assert len(rows) == 2
    assert all(float(row["counter_j"] or 0) > 0 and float(row["counter_j"] or 0) % 150.0 == 0 for row in rows)


@pytest.mark.parametrize("name", ["resnet50", "transformer_bf16", "mobilenet_v2", "mlp", "finetune"])
def test_pre_describes_every_workload_like_an_ordinary_run(name: str, tmp_path: Path) -> None:
    """PRE reads the loader and one batch: the synthetic loaders must show the real batch size and steps."""
    import lightning.pytorch as pl

    from lightning_energy.pre import estimate_for_fit

    workloads = pytest.importorskip("workloads")
    workload = workloads.build_workload(name, tiny=True, unfreeze_epoch=1 if name == "finetune" else None)
    fits: list[Any] = []

    class Describe(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            gpu = {"name": "NVIDIA H100 80GB HBM3"}
            fits.append(estimate_for_fit(trainer, pl_module, gpu_info=gpu, total_epochs=2))

    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        default_root_dir=tmp_path,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Describe()],
    )
    trainer.fit(workload.module, train_dataloaders=workloads.loader(workload, 3))
    (fit,) = fits
    assert fit.descriptor.data.batch_size == workload.descriptor["batch_size"]
    assert fit.descriptor.data.steps_per_epoch == 3
    assert fit.descriptor.model.input_shape == tuple(workload.example_inputs.shape[1:])
    assert fit.descriptor.gpu.name == "H100 SXM" and fit.total_j > 0


def test_the_readme_is_the_command_and_the_docs_show_the_current_plan() -> None:
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    command = "PYTHONPATH=$PWD python3 benchmarks/gpu/visit.py --out $OUT --budget-s 450"
    assert readme.splitlines()[0] == f"`{command}`"
    assert len(command) < 2000
    table = plan.plan_table(plan.H100)
    assert table in readme
    assert table in (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    minutes = f"{plan.total_estimate_s(plan.H100) / 60:.1f} minutes on an H100/H200"
    assert minutes in readme and minutes in (REPO / "docs" / "validation.md").read_text(encoding="utf-8")


def test_no_nvml_at_all_stops_the_visit_with_a_clear_line(fake_nvml_dir: Path, tmp_path: Path) -> None:
    result = run_visit(fake_nvml_dir, tmp_path, "--dry-run", script="init_error DRIVER_NOT_LOADED\n")
    assert result.returncode == 2
    assert any(line.startswith("STOP: the NVML check failed") for line in result.stderr.splitlines())
    summary = json.loads((result.out / "summary.json").read_text())
    assert summary["stages"]["nvml_check"]["status"] == "failed" and summary["finished"] is False


def test_the_visit_goes_on_after_a_failed_stage_and_skips_what_would_end_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the H100 plan with a 300 s budget and every stage taking exactly its estimate: the first three
    stages fit (one of them fails, the next still runs), the last two would end after 300 s."""
    visit = pytest.importorskip("visit")
    clock = [0.0]
    monkeypatch.setattr(visit, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    def check(args: Any, summary: Any) -> dict[str, Any]:
        clock[0] += plan.H100.start_s + plan.H100.check_s
        return {"gpu": {"name": "Fake H100", "uuid": GPU_B, "energy_counter": True}, "mapping": []}

    def run_stage(stage: Any, args: Any, timing: Any, budget: Any, summary: Any) -> None:
        clock[0] += stage.estimate_s(timing)
        if stage.name == "transformer_bf16":
            raise RuntimeError("CUDA out of memory")
        summary.update(stage.name, status="recorded")

    monkeypatch.setattr(visit, "nvml_check", check)
    monkeypatch.setattr(visit, "run_stage", run_stage)
    assert visit.main(["--out", str(tmp_path), "--budget-s", "300"]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == ["transformer_bf16"] and summary["skipped"] == ["finetune", "overhead_mlp"]
    statuses = {name: s["status"] for name, s in summary["stages"].items()}
    assert statuses["resnet50"] == statuses["mobilenet_v2"] == "recorded"
    assert summary["stages"]["transformer_bf16"]["error"] == "RuntimeError: CUDA out of memory"
    used_s = plan.H100.start_s + plan.H100.check_s + sum(s.estimate_s(plan.H100) for s in plan.STAGES[:3])
    finetune_s = plan.STAGES[3].estimate_s(plan.H100)
    assert 300 - finetune_s < used_s <= 300  # the plan is such that finetune is the first not to fit
    assert (
        statuses["finetune"]
        == f"skipped (time budget): needs about {finetune_s:.0f} s, {used_s:.0f} s of --budget-s 300 used"
    )
    assert summary["finished"] is True and summary["elapsed_s"] == pytest.approx(used_s)
