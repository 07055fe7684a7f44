"""A deterministic, made-up report of a 1-GPU run, for tests and the docs' examples."""

from __future__ import annotations

from typing import Any

from lightning_energy.report_model import REPORT_FORMAT, REPORT_VERSION, RunReport
from lightning_energy.units import JOULES_PER_KWH


def example_report(num_epochs: int = 10, max_epochs: int = 10, status: str = "complete") -> RunReport:
    """The example as a typed report."""
    return RunReport.from_json(example_report_json(num_epochs, max_epochs, status))


def example_report_json(
    num_epochs: int = 10, max_epochs: int = 10, status: str = "complete"
) -> dict[str, Any]:
    """A deterministic, made-up report of a 1-GPU run (for documentation, tests and trying the CLI)."""
    if num_epochs < 1 or max_epochs < num_epochs:
        raise ValueError(
            f"need 1 <= num_epochs <= max_epochs; got num_epochs={num_epochs}, max_epochs={max_epochs}"
        )
    epochs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    total_j = 0.0
    for epoch in range(num_epochs):
        duration_s = 60.0 + (6.0 if epoch == 0 else 0.0) + (epoch % 3) * 0.8
        power = {"gpu": 240.0 + 8.0 * ((epoch * 7) % 5 - 2), "cpu": 45.0, "ram": 6.0}
        parts = {name: watts * duration_s for name, watts in power.items()}
        energy_j = sum(parts.values())
        total_j += energy_j
        done = epoch + 1
        mean_j = total_j / done
        spread = 0.25 / done + 0.01
        projected = total_j + mean_j * (max_epochs - done)
        stable_since = 3 if epoch >= 3 else None
        epochs.append(
            {
                "epoch": epoch,
                "duration_s": duration_s,
                "energy_j": energy_j,
                "components_j": parts,
                "power_w": energy_j / duration_s,
                "missing": False,
                "reason": None,
            }
        )
        history.append(
            {
                "epoch": epoch,
                "total_j": projected,
                "low_j": projected * (1 - spread),
                "high_j": projected * (1 + spread),
                "stable": stable_since is not None,
                "stable_since": stable_since,
                "epoch_energy_j": mean_j,
            }
        )
    duration = sum(e["duration_s"] for e in epochs)
    per_gpu_pre_j = 0.92 * history[-1]["total_j"]
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "status": status,
        "started_at": "2026-11-24T09:00:00+00:00",
        "ended_at": "2026-11-24T09:11:00+00:00",
        "world_size": 1,
        "num_nodes": 1,
        "max_epochs": max_epochs,
        "upper_bound": False,
        "components": {"gpu": "measured", "cpu": "estimated", "ram": "estimated"},
        "epochs": epochs,
        "totals": {
            "energy_j": total_j,
            "energy_kwh": total_j / JOULES_PER_KWH,
            "components_kwh": {
                c: sum(e["components_j"][c] for e in epochs) / JOULES_PER_KWH for c in ("gpu", "cpu", "ram")
            },
            "fit_energy_j": total_j * 1.02,
            "duration_s": duration,
            "measured_epochs": num_epochs,
            "missing_epochs": 0,
        },
        "projection": {"method": "step", "upper_bound": False, "history": history},
        "pre": {
            "total_j": per_gpu_pre_j,
            "low_j": 0.7 * per_gpu_pre_j,
            "high_j": 1.35 * per_gpu_pre_j,
            "total_epochs": max_epochs,
            "devices": 1,
            "upper_bound": False,
            "estimate": {
                "epoch_energy_j": per_gpu_pre_j / max_epochs,
                "power_w": 270.0,
                "epoch_seconds": 62.0,
                "gpu_name": "Example GPU",
                "rel_sigma": 0.2,
                "speed_source": "measured",
                "gpu_busy_share": 0.93,
                "calibration_runs": 2,
            },
            "descriptor": {},
        },
        "carbon": {
            "g_per_kwh": 56.0,
            "pue": 1.2,
            "source": "user",
            "year": None,
            "country_iso3": None,
            "country_name": None,
            "co2_kg": total_j / JOULES_PER_KWH * 1.2 * 56.0 / 1000,
            "projected_co2_kg": history[-1]["total_j"] / JOULES_PER_KWH * 1.2 * 56.0 / 1000,
        },
        "hardware": {"gpus": [{"name": "Example GPU"}]},
        "versions": {"lightning_energy": "0.1.0", "lightning": "2.6.6", "torch": "2.13.0", "python": "3.11"},
        "warnings": [],
    }
