"""Every metric name the callback logs, in one place (a public format: rename only with a version bump).

``docs/callback.md`` lists exactly these names (a test checks it). Units are in the names.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "energy/"

EPOCH_KWH: Final = "energy/epoch_kwh"
EPOCH_POWER_W: Final = "energy/epoch_power_w"
TOTAL_KWH: Final = "energy/total_kwh"
GPU_KWH: Final = "energy/gpu_kwh"
CPU_KWH: Final = "energy/cpu_kwh"
RAM_KWH: Final = "energy/ram_kwh"
OTHER_KWH: Final = "energy/other_kwh"
PROJECTED_KWH: Final = "energy/projected_kwh"
PROJECTED_LOW_KWH: Final = "energy/projected_low_kwh"
PROJECTED_HIGH_KWH: Final = "energy/projected_high_kwh"
STABLE: Final = "energy/stable"
PRE_KWH: Final = "energy/pre_kwh"
CO2_KG: Final = "energy/co2_kg"
PROJECTED_CO2_KG: Final = "energy/projected_co2_kg"
# with an EarlyStopping callback: the expected total (stop forecast) beside the max_epochs bound
EXPECTED_KWH: Final = "energy/expected_kwh"
EXPECTED_LOW_KWH: Final = "energy/expected_low_kwh"
EXPECTED_HIGH_KWH: Final = "energy/expected_high_kwh"
EXPECTED_STOP_EPOCH: Final = "energy/expected_stop_epoch"

#: the measured energy of one component category (``gpu``, ``cpu``, ``ram``, ``other``)
CATEGORY_KWH: Final = {"gpu": GPU_KWH, "cpu": CPU_KWH, "ram": RAM_KWH, "other": OTHER_KWH}

ALL: Final = (
    EPOCH_KWH,
    EPOCH_POWER_W,
    TOTAL_KWH,
    GPU_KWH,
    CPU_KWH,
    RAM_KWH,
    OTHER_KWH,
    PROJECTED_KWH,
    PROJECTED_LOW_KWH,
    PROJECTED_HIGH_KWH,
    STABLE,
    PRE_KWH,
    CO2_KG,
    PROJECTED_CO2_KG,
    EXPECTED_KWH,
    EXPECTED_LOW_KWH,
    EXPECTED_HIGH_KWH,
    EXPECTED_STOP_EPOCH,
)
