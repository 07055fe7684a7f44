"""Host CPU and RAM energy through CodeCarbon's hardware classes (imported lazily).

We use CodeCarbon's lower-level ``CPU`` and ``RAM`` classes, not its ``EmissionsTracker``: no background
scheduler, no lock file, no output files, no API, no GPU (NVML meters that), and never any geolocation.

* CPU: RAPL package counters when Linux exposes them readable (``/sys/class/powercap/intel-rapl``) -- label
  ``"measured"``; otherwise CodeCarbon's model, CPU load x TDP -- label ``"estimated"``.
* RAM: always CodeCarbon's RAM power model (DIMM count x W per DIMM) -- label ``"estimated"``.

Cost: a ``read()`` reads RAPL files or ``psutil`` CPU times and memory size, well under a few milliseconds;
construction reads the CPU model from ``/proc/cpuinfo`` and the sockets from sysfs and looks the model up in
CodeCarbon's TDP table (a few milliseconds; CodeCarbon's own detection, about a second, only where Linux does
not say). Reads happen at epoch boundaries and at most every few seconds for the live bar.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lightning_energy.errors import MeterError, MeterUnavailable
from lightning_energy.hardware import Hardware, HostInfo
from lightning_energy.meters.base import ESTIMATED, MEASURED, EnergyMeter, MeterLabel
from lightning_energy.units import kwh_to_joules

__all__ = ["HostMeter"]

TRACKING_MODES = ("machine", "process")
# CodeCarbon CPU modes that read a real energy counter.
_COUNTER_MODES = ("intel_rapl", "windows_emi", "intel_power_gadget", "apple_powermetrics")


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet_codecarbon() -> Iterator[None]:
    """CodeCarbon logs warnings on its own handler; let only its errors through while we call it. A filter,
    not ``setLevel``: that clears the cache of every logger in the process (about 0.1 ms a call)."""
    cc_logger, errors_only = logging.getLogger("codecarbon"), _ErrorsOnly()
    cc_logger.addFilter(errors_only)
    try:
        yield
    finally:
        cc_logger.removeFilter(errors_only)


class HostMeter(EnergyMeter):
    """Cumulative joules of the host CPU(s) and RAM: ``{"cpu": joules, "ram": joules}``.

    Args:
        tracking_mode: ``"machine"`` (whole host, what the electricity bill sees) or ``"process"`` (this
            process and its children's share of CPU load and memory; only affects the estimated model).
        cpu_power_w: CPU TDP in watts to use for the load model instead of CodeCarbon's lookup; also
            disables RAPL (the CPU is then always estimated).
        ram_power_w: constant RAM power in watts instead of CodeCarbon's model.
        use_rapl: read RAPL when available (``False``: always the load x TDP model).
        clock: monotonic clock in seconds.

    Raises:
        MeterUnavailable: CodeCarbon is not installed or cannot set up CPU/RAM measurement.
    """

    def __init__(
        self,
        *,
        tracking_mode: str = "machine",
        cpu_power_w: float | None = None,
        ram_power_w: float | None = None,
        use_rapl: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tracking_mode not in TRACKING_MODES:
            raise ValueError(f"tracking_mode must be one of {TRACKING_MODES}, got {tracking_mode!r}")
        for name, value in (("cpu_power_w", cpu_power_w), ("ram_power_w", ram_power_w)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number of watts or None, got {value!r}")
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._cpu_kwh = 0.0
        self._ram_kwh = 0.0
        try:
            import codecarbon
            from codecarbon.core import cpu as cc_cpu
            from codecarbon.core import util as cc_util
            from codecarbon.external.hardware import CPU, MODE_CPU_LOAD, POWER_CONSTANT
            from codecarbon.external.ram import RAM
        except ImportError as err:
            raise MeterUnavailable(
                f"host CPU/RAM energy needs CodeCarbon (pip install codecarbon): {err}"
            ) from err
        version = str(getattr(codecarbon, "__version__", "unknown"))
        try:
            with _quiet_codecarbon():
                rapl = (
                    use_rapl
                    and cpu_power_w is None
                    and sys.platform.startswith("linux")
                    and bool(cc_cpu.is_rapl_available())
                )
                if rapl:
                    self._cpu: Any = CPU.from_utils(
                        output_dir=".", mode="intel_rapl", tracking_mode=tracking_mode
                    )
                    model = _cpu_model(cc_util)
                    tdp_w: float | None = None
                else:
                    model, tdp_w = _cpu_model_and_tdp(cc_cpu, cc_util, cpu_power_w)
                    self._cpu = CPU.from_utils(
                        output_dir=".",
                        mode=MODE_CPU_LOAD,
                        model=model,
                        tdp=tdp_w,  # type: ignore[arg-type]  # annotated int, used as a float
                        tracking_mode=tracking_mode,
                    )
                self._ram: Any = RAM(
                    tracking_mode=tracking_mode,
                    force_ram_power=ram_power_w,  # type: ignore[arg-type]  # annotated int, used as a float
                )
                ram_gb = float(self._ram.machine_memory_GB)
                self._cpu.start()
                self._ram.start()
        except Exception as err:  # any failure inside CodeCarbon: the host is simply not metered
            raise MeterUnavailable(
                f"CodeCarbon {version} could not set up CPU/RAM measurement: {err!r}"
            ) from err
        # the mode and TDP CodeCarbon's CPU was given (without a TDP it uses its generic POWER_CONSTANT)
        self._cpu_mode = "intel_rapl" if rapl else str(MODE_CPU_LOAD)
        self._labels: dict[str, MeterLabel] = {
            "cpu": MEASURED if self._cpu_mode in _COUNTER_MODES else ESTIMATED,
            "ram": ESTIMATED,
        }
        self._host = HostInfo(
            cpu_model=model,
            cpu_mode=self._cpu_mode,
            cpu_tdp_w=POWER_CONSTANT if tdp_w is None else tdp_w,
            ram_gb=round(ram_gb, 2),
            tracking_mode=tracking_mode,
            codecarbon=version,
        )
        self._last_t_s = self._clock()
        self._counter_gap_s = 0.0  # seconds before the counter started that the first reading covers
        self._read_once = False

    @property
    def labels(self) -> Mapping[str, MeterLabel]:
        return dict(self._labels)

    @property
    def hardware(self) -> Mapping[str, object]:
        return Hardware(host=self._host).to_json()

    def count_from(self, start_s: float) -> None:
        """Let the first reading cover the time since ``start_s`` (on this meter's clock), as when the
        meter is opened in the background around the fit's first reading.

        The load and RAM models turn the interval's power into energy over the whole interval; a counter
        (RAPL) starts when the meter is constructed, so its first delta is scaled by the interval's length
        over the seconds it counted (the first interval's mean power, assumed over the seconds before).
        """
        with self._lock:
            if self._read_once:
                raise MeterError("HostMeter.count_from() after the first read()")
            now_s = self._last_t_s
            # a counter counts from construction: the gap (negative when start_s came later) scales it
            self._counter_gap_s = now_s - start_s if self._cpu_mode in _COUNTER_MODES else 0.0
            self._last_t_s = start_s

    def read(self) -> Mapping[str, float]:
        """Cumulative joules of ``cpu`` and ``ram`` since construction."""
        with self._lock:
            if self._closed:
                raise MeterError("HostMeter.read() after close()")
            now_s = self._clock()
            duration_s = max(0.0, now_s - self._last_t_s)
            try:
                with _quiet_codecarbon():
                    _, cpu_energy = self._cpu.measure_power_and_energy(last_duration=duration_s)
                    _, ram_energy = self._ram.measure_power_and_energy(last_duration=duration_s)
                cpu_kwh = float(cpu_energy.kWh)
                ram_kwh = float(ram_energy.kWh)
            except Exception as err:
                raise MeterError(f"CodeCarbon CPU/RAM measurement failed: {err!r}") from err
            if self._counter_gap_s and duration_s > self._counter_gap_s:
                cpu_kwh *= duration_s / (duration_s - self._counter_gap_s)
            self._counter_gap_s, self._read_once = 0.0, True
            self._last_t_s = now_s
            # A RAPL wrap or glitch can yield a negative delta; never let the cumulative value go down.
            self._cpu_kwh += max(0.0, cpu_kwh)
            self._ram_kwh += max(0.0, ram_kwh)
            return {"cpu": kwh_to_joules(self._cpu_kwh), "ram": kwh_to_joules(self._ram_kwh)}

    def close(self) -> None:
        """Nothing to release (no threads, no files); later reads raise. Idempotent."""
        with self._lock:
            self._closed = True


def _proc_cpu_model(path: str = "/proc/cpuinfo") -> str | None:
    """The CPU's model name from Linux's ``/proc/cpuinfo`` (no subprocess), or ``None``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        return None
    return None


def _sysfs_sockets(root: str = "/sys/devices/system/cpu") -> int | None:
    """The number of CPU packages (sockets) from Linux's sysfs topology, as ``lscpu`` counts them (no
    subprocess: CodeCarbon runs ``lscpu``, a few milliseconds), or ``None`` when sysfs does not say."""
    packages: set[str] = set()
    for path in Path(root).glob("cpu[0-9]*/topology/physical_package_id"):
        try:
            packages.add(path.read_text(encoding="ascii").strip())
        except OSError:
            continue
    return len(packages) or None


def _cpu_model(cc_util: Any) -> str:
    model = _proc_cpu_model()
    if model:
        return model
    try:
        return str(cc_util.detect_cpu_model() or "unknown")
    except Exception:
        return "unknown"


def _clean_cpu_name(name: str) -> str:
    """``"Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"`` -> ``"intel xeon gold 6130"`` (as CodeCarbon cleans)."""
    name = name.replace("(R)", "").replace("(TM)", "")
    name = re.sub(r" CPU @ .*$| @\s*\d+(\.\d+)?\s*GHz.*$", "", name)
    return " ".join(name.replace(" CPU", "").lower().split())


def _registry_tdp_w(model: str) -> float | None:
    """CodeCarbon's TDP (W) for ``model`` from its public CPU table, matched as CodeCarbon matches it.

    CodeCarbon's own ``TDP()`` detects the model through py-cpuinfo, which spawns a subprocess and costs about
    a second; on Linux we read the model from ``/proc/cpuinfo`` and look it up in the table that
    ``codecarbon.input.DataSource`` publishes (read with the csv module, not pandas):
    an exact (case-insensitive) name, else the one table name whose
    words are all in the model's cleaned name (or the reverse). Ambiguous or unknown: ``None``.
    """
    lowered = model.lower().strip()
    words = set(_clean_cpu_name(model).split())
    longest = max(words, key=len) if words else None
    exact: float | None = None
    matches: set[float] = set()
    try:
        from codecarbon.input import DataSource

        # one pass with the C csv reader (a DictReader over the ~5000 rows took most of the meter's opening)
        with open(DataSource().cpu_power_path, encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows)
            name_at, tdp_at = header.index("Name"), header.index("TDP")
            for row in rows:
                if len(row) <= max(name_at, tdp_at):
                    continue  # a short row
                low = row[name_at].lower()
                # a table name matches when one word set holds the other: it contains the model's longest
                # word, or all its (already clean) words are the model's; only those few names are cleaned
                if low != lowered and (
                    longest is None or (longest not in low and not set(low.split()) <= words)
                ):
                    continue
                try:
                    tdp = float(row[tdp_at])
                except ValueError:
                    continue  # a malformed row of the table (it has a few)
                if low == lowered:
                    exact = tdp if exact is None else exact
                    continue
                table_words = set(_clean_cpu_name(row[name_at]).split())
                if table_words and (table_words <= words or words <= table_words):
                    matches.add(tdp)
    except Exception:  # CodeCarbon's table missing or reshaped: fall back to its own detection
        return None
    if exact is not None:
        return exact
    return matches.pop() if len(matches) == 1 else None


def _cpu_model_and_tdp(cc_cpu: Any, cc_util: Any, cpu_power_w: float | None) -> tuple[str, float | None]:
    """CPU model and the TDP (W, all sockets) for CodeCarbon's load model, as its ResourceTracker does."""
    if cpu_power_w is not None:
        return _cpu_model(cc_util), float(cpu_power_w)
    sockets = _sysfs_sockets() or int(cc_util.count_physical_cpus() or 1)
    model = _proc_cpu_model()
    fast_tdp_w = _registry_tdp_w(model) if model else None
    if model and fast_tdp_w is None:  # not in the table: CodeCarbon's default power per thread
        fast_tdp_w = float(cc_cpu.count_cpus() * cc_cpu.DEFAULT_POWER_PER_CORE)
    if model and fast_tdp_w is not None:
        return model, fast_tdp_w * sockets
    tdp = cc_cpu.TDP()
    model = str(tdp.model or "unknown")
    if tdp.tdp is None:
        return model, None  # CodeCarbon then uses its generic constant (85 W)
    return model, float(tdp.tdp) * sockets
