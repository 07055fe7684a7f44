"""A fake ``pynvml`` *module file*, so that the runbook's commands and their child processes can run on a CPU.

Put this folder first on ``PYTHONPATH`` (the runbook tests do). It is the fake of ``tests/meters/conftest.py``
(loaded by path, unchanged) plus what the runbook reads beyond it: ``nvmlDeviceGetFieldValues`` with
``NVML_FI_DEV_POWER_INSTANT``, the NVML and CUDA driver versions and the compute capability.

One GPU, ``Fake H100`` (UUID ``GPU-12345678-...``), whose power follows ``250 + 100 sin(t)`` W on the
monotonic clock; its energy counter is the exact integral of that power, so integrating polled power must
agree with it.
``FAKE_NVML_COUNTER=0`` in the environment: the GPU has no energy counter.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

_CONFTEST = Path(__file__).resolve().parents[2] / "meters" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_lightning_energy_fake_nvml", _CONFTEST)
assert _spec is not None and _spec.loader is not None
_fake = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fake  # dataclasses look their module up there
_spec.loader.exec_module(_fake)

UUID = "GPU-12345678-aaaa-bbbb-cccc-1234567890ab"
NVML_FI_DEV_POWER_INSTANT = 186
BASE_W, SWING_W = 250.0, 100.0


def power_w(t_s: float) -> float:
    return BASE_W + SWING_W * math.sin(t_s)


def energy_j(t_s: float) -> float:
    """The integral of :func:`power_w` (an arbitrary origin, positive)."""
    return 1_000.0 + BASE_W * t_s - SWING_W * math.cos(t_s)


_state = _fake.FakeNvml()
_device = _state.add_gpu(UUID, name="Fake H100", counter=os.environ.get("FAKE_NVML_COUNTER", "1") != "0")
if _device.counter_mj is not None:
    _device.counter_mj = lambda: round(1000.0 * energy_j(time.monotonic()))
globals().update({k: v for k, v in vars(_state.module()).items() if not k.startswith("__")})


def nvmlDeviceGetPowerUsage(device: Any) -> int:
    return round(1000.0 * power_w(time.monotonic()))


def nvmlDeviceGetFieldValues(device: Any, field_ids: list[int]) -> list[types.SimpleNamespace]:
    values = []
    for field_id in field_ids:
        supported = field_id == NVML_FI_DEV_POWER_INSTANT
        value = types.SimpleNamespace(uiVal=round(1000.0 * power_w(time.monotonic())) if supported else 0)
        values.append(
            types.SimpleNamespace(
                fieldId=field_id, nvmlReturn=0 if supported else 3, valueType=1, value=value
            )
        )
    return values


def nvmlSystemGetNVMLVersion() -> str:
    return "12.550.54.15"


def nvmlSystemGetCudaDriverVersion() -> int:
    return 12040


def nvmlDeviceGetCudaComputeCapability(device: Any) -> tuple[int, int]:
    return (9, 0)
