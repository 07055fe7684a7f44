"""examples/config.yaml runs under LightningCLI (callback from class_path/init_args) and writes a report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightning.pytorch.cli import LightningCLI

from lightning_energy.callback import EnergyCallback
from lightning_energy.report import load_report

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "config.yaml"


def _test_config(tmp_path: Path) -> Path:
    """The example config: CPU, short, a FakeMeter (100 W on a virtual clock) instead of "auto"."""
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    trainer = config["trainer"]
    trainer.update(
        default_root_dir=str(tmp_path),
        accelerator="cpu",
        max_epochs=2,
        limit_train_batches=4,
        limit_val_batches=2,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    init_args = trainer["callbacks"][0]["init_args"]
    assert init_args["carbon_intensity"] == "FRA"
    init_args["meter"] = {
        "class_path": "lightning_energy.meters.FakeMeter",
        "init_args": {"powers_w": {"gpu0": 100.0}},
    }
    init_args["history_path"] = False
    init_args["window_batches"] = 0  # FakeMeter advances 1 s per read: only boundary reads, exact joules
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_example_config_names_the_callback() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    callback = config["trainer"]["callbacks"][0]
    assert callback["class_path"] == "lightning_energy.EnergyCallback"
    assert callback["init_args"]["carbon_intensity"] == "FRA"


@pytest.mark.timeout(120)
def test_lightningcli_fit_with_energy_callback(tmp_path: Path) -> None:
    cli = LightningCLI(
        args=["fit", "--config", str(_test_config(tmp_path))], save_config_kwargs={"overwrite": True}
    )
    callbacks = [cb for cb in cli.trainer.callbacks if isinstance(cb, EnergyCallback)]
    assert len(callbacks) == 1
    report = load_report(tmp_path)
    assert report.status == "complete"
    assert [e.epoch for e in report.epochs] == [0, 1]
    # FakeMeter: 100 W and 1 virtual second per read; each epoch is bounded by two reads.
    assert all(e.energy_j == pytest.approx(100.0) for e in report.epochs)
    assert report.totals.energy_j == pytest.approx(200.0)
    carbon = report.carbon
    assert carbon is not None
    assert carbon.intensity.country_iso3 == "FRA" and carbon.intensity.source.startswith("codecarbon")
    assert carbon.co2_kg == pytest.approx(200.0 / 3.6e6 * carbon.intensity.g_per_kwh / 1000)
    assert len(report.projections) == 2
    assert list(tmp_path.rglob("events.out.tfevents.*")), "the default TensorBoard logger got the layout"


@pytest.mark.timeout(180)
def test_the_command_the_config_gives_really_trains(tmp_path: Path) -> None:
    """The command written at the top of examples/config.yaml, run as a user would, writes a report."""
    commands = [
        line.strip("# ").split()
        for line in CONFIG.read_text().splitlines()
        if line.lstrip("# ").startswith("python ")
    ]
    assert commands == [["python", "examples/cli_model.py", "fit", "--config", "examples/config.yaml"]]
    command = commands[0]
    command[0], command[1], command[-1] = sys.executable, str(ROOT / command[1]), str(_test_config(tmp_path))
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=170, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = load_report(tmp_path)
    assert report.status == "complete" and report.totals.energy_j == pytest.approx(200.0)
