"""PreEstimator: the fitted PRE model (7 parameters, interval constants), per-GPU calibration from history.

Power follows the board class of the GPU (``GpuDescriptor.power_class``): consumer/workstation boards the
curve fitted on GAISSA, data-centre boards the same curve with the class shift ``data_centre_shift`` x the
busy share added to its utilisation logit, fitted on data-centre rows (Perseus, MLPerf;
``coefficients.json``'s ``board_class``; older files without it: 0).

A history also gives each machine its host effect (``lightning_energy.pre.machine``) when the fit selected
a ridge for it (``selected["machine_host_ridge"]``).

The parameters and constants are fitted by ``tools/pre_fit.py`` (nested selection on the GAISSA data; see
docs/pre.md) and shipped in ``coefficients.json``: no training rows, no per-configuration table.

Interval: the 90 % half-width of log energy is
``sqrt(q_model**2 + q_speed**2 + q_family**2 + q_traffic**2 + q_host**2)``.
``q_model`` is a 90 % quantile of held-out log errors (leave-one-GPU-out and leave-one-architecture-out,
GAISSA) on GPUs whose speed is measured, with ``q_host`` taken out of them, by a rule chosen by nested
selection (``tools/pre_interval.py``); ``q_host`` (``host_log_term``) how far the run's epoch time moves when
the per-step overhead and the host input cost are off by the factor H chosen with that rule (no
descriptor carries the host machine; near 0 for a GPU-bound run, up to log H for a step-bound one). The
selection may instead choose a regime-conditional (Mondrian) interval: ``q_model`` and H each the
predicted regime's own (GPU-bound: busy share >= ``physics.GPU_BOUND_SHARE``, or host/launch-bound);
``q_traffic`` how far it moves when inferred memory traffic is off by its rule's 90 % error;
``q_speed`` the 90 % error of the GPU-speed fallback when the GPU's speed is not measured (0 when it is);
``q_family`` the 90 % error of carrying the matmul reference over to other matmul workloads x the model's
matmul share (Lambda's other workloads), since the GAISSA runs are all CNNs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, Protocol

import numpy as np

from lightning_energy._io import atomic_write_text
from lightning_energy._validate import is_number
from lightning_energy.errors import EstimationError
from lightning_energy.pre import machine, physics
from lightning_energy.pre.descriptors import BoardClass, LabelledRun, RunDescriptor
from lightning_energy.pre.roofline import Regime
from lightning_energy.pre.throughput import SpeedSource


class RunSource(Protocol):
    """Anything that lists measured runs (a :class:`~lightning_energy.pre.history.RunHistory`)."""

    def runs(self) -> Sequence[LabelledRun]: ...


FORMAT_VERSION = 4
#: Share of the model's error variance shared by every run on one GPU (its machine: GPU, host, software);
#: the rest varies from run to run. A round prior, not tuned (GAISSA's three GPUs cannot estimate it; their
#: in-sample residuals put about 0.3 of the variance between GPUs).
SHARED_ERROR_SHARE = 0.5
Z_90 = 1.6449


@dataclass(frozen=True)
class Estimate:
    """Per-epoch estimate of one run on one GPU. low_j/high_j: 90% interval of the per-epoch energy."""

    epoch_energy_j: float
    power_w: float
    epoch_seconds: float
    log_sigma: float
    gpu_name: str
    calibration_runs: int = 0
    speed_source: SpeedSource | Literal["unknown"] = "measured"
    gpu_busy_share: float | None = None
    regime: Regime | None = None
    bandwidth_share: float | None = None
    traffic_inferred: bool | None = None
    #: the GPU's board class (``descriptors.BOARD_CLASSES``), which sets its power curve
    board_class: BoardClass | None = None

    @property
    def rel_sigma(self) -> float:
        """Relative standard deviation of the per-epoch energy (log-normal)."""
        return math.sqrt(math.expm1(self.log_sigma**2))

    @property
    def low_j(self) -> float:
        return self.epoch_energy_j * math.exp(-Z_90 * self.log_sigma)

    @property
    def high_j(self) -> float:
        return self.epoch_energy_j * math.exp(Z_90 * self.log_sigma)

    def total_j(self, epochs: float) -> float:
        """Energy of ``epochs`` epochs (may be fractional, e.g. a step budget)."""
        if not is_number(epochs) or not math.isfinite(float(epochs)) or float(epochs) < 0:
            raise EstimationError(f"epochs must be a finite number >= 0, got {epochs!r}")
        return self.epoch_energy_j * float(epochs)

    def total_interval_j(self, epochs: float) -> tuple[float, float]:
        """90% interval of the total; the model error is shared by all epochs, so it scales with epochs."""
        self.total_j(epochs)
        return self.low_j * float(epochs), self.high_j * float(epochs)

    def to_dict(self) -> dict[str, float | str | int]:
        data: dict[str, float | str | int] = {
            "gpu_name": self.gpu_name,
            "epoch_energy_j": self.epoch_energy_j,
            "power_w": self.power_w,
            "epoch_seconds": self.epoch_seconds,
            "low_j": self.low_j,
            "high_j": self.high_j,
            "rel_sigma": self.rel_sigma,
            "calibration_runs": self.calibration_runs,
            "speed_source": self.speed_source,
        }
        if self.gpu_busy_share is not None:
            data["gpu_busy_share"] = self.gpu_busy_share
        if self.regime is not None:
            data["regime"] = self.regime
        if self.bandwidth_share is not None:
            data["bandwidth_share"] = self.bandwidth_share
        if self.traffic_inferred is not None:
            data["traffic_inferred"] = self.traffic_inferred
        if self.board_class is not None:
            data["board_class"] = self.board_class
        return data


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number or null, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class IntervalConstants:
    """90 % half-widths of log energy (see the module docstring) and the run-to-run noise."""

    model_log_q90: float
    repeat_log_sigma: float
    #: Mondrian constants by predicted regime (GPU-bound: busy share >= physics.GPU_BOUND_SHARE); None: the
    #: pooled ``model_log_q90`` for every run
    gpu_bound_log_q90: float | None = None
    host_bound_log_q90: float | None = None
    #: log of the factor H by which the per-step overhead and the host input cost may be off on an unseen
    #: machine (no descriptor carries the host): adds ``host_log_term`` in quadrature; None: no such term
    host_log_factor: float | None = None
    #: Mondrian host factor: log H for GPU-bound runs (``host_log_factor`` then holds the host/launch-bound
    #: runs'); None: ``host_log_factor`` for every run
    gpu_bound_host_log_factor: float | None = None
    #: log H for a run on a machine whose host effect a history measured (``machine.host_effect``): what is
    #: left is the effect's own error; used where it narrows the host term; None: the unseen machine's H
    known_host_log_factor: float | None = None


@dataclass(frozen=True)
class GpuCorrection:
    """Shrunk mean log residuals of the history runs on one GPU, their interval, and the models they ran.

    ``log_q90`` narrows the interval only for a model the history ran on this GPU (same FLOPs, input shape
    and precision): on GAISSA, offsets learned from other architectures on the same machines put the right
    GPU first (18 of 20 configurations) but do not shrink the error of a new architecture (docs/pre.md).
    """

    runs: int
    log_time: float
    log_power: float
    log_q90: float
    models: frozenset[tuple[object, ...]] = frozenset()
    #: the machine's shrunk log factor on the per-step overhead and host cost (``machine.host_effect``;
    #: 0: the pooled host parts), applied before ``log_time``; set when the coefficients carry a selected
    #: ``machine_host_ridge``
    log_host_factor: float = 0.0
    #: whether ``log_host_factor`` was estimated from the machine's runs (then the interval's host term uses
    #: ``IntervalConstants.known_host_log_factor`` where it is narrower)
    host_measured: bool = False


def host_log_term(theta: np.ndarray, f: physics.Features, log_factor: float) -> np.ndarray:
    """How far log epoch time moves, per run, when the per-step overhead and the host input cost are both
    off by the factor ``exp(log_factor)`` (the larger move of scaling them up or down; launches excluded).
    About ``log_factor`` for a step- or host-bound run, near 0 for a GPU-bound one."""
    if log_factor < 0 or not math.isfinite(log_factor):
        raise EstimationError(f"log_factor must be finite and >= 0, got {log_factor!r}")
    base = np.log(physics.time_parts(theta, f).epoch_s)
    if log_factor == 0:
        return np.zeros_like(base)
    moves = []
    for sign in (1.0, -1.0):
        scaled = np.array(theta, dtype=float)
        scaled[1:3] += sign * log_factor
        moves.append(np.abs(np.log(physics.time_parts(scaled, f).epoch_s) - base))
    return np.maximum(moves[0], moves[1])


def model_key(descriptor: RunDescriptor) -> tuple[object, ...]:
    """What identifies "the same model" in a run history: forward FLOPs, input shape and precision."""
    m = descriptor.model
    return (round(m.forward_flops_per_sample, 6), m.input_shape, m.precision)


@dataclass(frozen=True)
class PreEstimator:
    """Estimates per-epoch energy, power and time of a run before it starts."""

    theta: np.ndarray
    phi: np.ndarray
    interval: IntervalConstants
    fitted_runs: int = 0
    corrections: Mapping[str, GpuCorrection] = field(default_factory=dict)
    selected: Mapping[str, float] = field(default_factory=dict)
    #: shift of the power curve's utilisation logit on data-centre boards (``physics.power_from_parts``),
    #: fitted on data-centre rows by ``tools/pre_fit.py``; 0: every board on the consumer curve
    data_centre_shift: float = 0.0

    # ------------------------------------------------------------- prediction
    def predict(self, descriptor: RunDescriptor) -> Estimate:
        """Estimate of one run."""
        return self.predict_many([descriptor])[0]

    def predict_many(self, descriptors: Sequence[RunDescriptor]) -> list[Estimate]:
        """Estimates of several runs (vectorised)."""
        for i, d in enumerate(descriptors):
            if not isinstance(d, RunDescriptor):
                raise EstimationError(f"descriptor[{i}] must be a RunDescriptor, got {type(d)!r}")
        if not descriptors:
            return []
        f = physics.Features.from_descriptors(descriptors)
        shift = np.array(
            [getattr(self.corrections.get(d.gpu.name), "log_host_factor", 0.0) for d in descriptors]
        )
        parts = physics.time_parts(self.theta, f, shift)
        log_t = np.log(parts.epoch_s)
        log_p = np.log(
            physics.power_from_parts(self.phi, parts, f.tdp_w, f.class_shift(self.data_centre_shift))
        )
        busy = parts.busy_share
        regimes = parts.regimes()
        bandwidth = parts.bandwidth_share
        known = np.array(
            [(c := self.corrections.get(d.gpu.name)) is not None and c.host_measured for d in descriptors]
        )
        q = self.log_q90(f, known)
        estimates = []
        for i, d in enumerate(descriptors):
            t, p, qi, runs = float(log_t[i]), float(log_p[i]), float(q[i]), 0
            correction = self.corrections.get(d.gpu.name)
            if correction is not None:
                t, p, runs = t + correction.log_time, p + correction.log_power, correction.runs
                if model_key(d) in correction.models:
                    qi = min(qi, correction.log_q90)
            seconds, power = math.exp(t), math.exp(p)
            estimates.append(
                Estimate(
                    power * seconds,
                    power,
                    seconds,
                    qi / Z_90,
                    d.gpu.name,
                    runs,
                    f.speed_source[i],
                    float(busy[i]),
                    regimes[i],
                    float(bandwidth[i]),
                    not d.model.traffic_counted,
                    d.gpu.power_class,
                )
            )
        return estimates

    def log_q90(self, f: physics.Features, known_host: np.ndarray | None = None) -> np.ndarray:
        """90 % half-width of log energy per run (before any per-model narrowing by a history);
        ``known_host``: per run, whether its machine's host effect was measured from a history (its host
        term then uses ``known_host_log_factor`` where that is narrower)."""
        c = self.interval
        speed = np.where(f.speed_measured, 0.0, f.speed_log_q90)
        # traffic inferred from the FLOPs: how far the epoch time moves when the bytes are off by the rule's
        # 90 % error (0 for counted traffic; small for a compute-bound run)
        parts = physics.time_parts(self.theta, f)
        scale = np.exp(f.traffic_log_q90)
        more = dataclasses.replace(f, bytes_matmul=f.bytes_matmul * scale, bytes_other=f.bytes_other * scale)
        traffic = np.log(physics.time_parts(self.theta, more).epoch_s / parts.epoch_s)
        model = np.full(len(parts.epoch_s), c.model_log_q90)
        if c.gpu_bound_log_q90 is not None and c.host_bound_log_q90 is not None:
            gpu_bound = parts.busy_share >= physics.GPU_BOUND_SHARE
            model = np.where(gpu_bound, c.gpu_bound_log_q90, c.host_bound_log_q90)
        host = host_log_term(self.theta, f, c.host_log_factor or 0.0)
        if c.gpu_bound_host_log_factor is not None:
            gpu_bound_host = host_log_term(self.theta, f, c.gpu_bound_host_log_factor)
            host = np.where(parts.busy_share >= physics.GPU_BOUND_SHARE, gpu_bound_host, host)
        if c.known_host_log_factor is not None and known_host is not None and known_host.any():
            known = host_log_term(self.theta, f, c.known_host_log_factor)
            host = np.where(known_host, np.minimum(host, known), host)
        return np.sqrt(model**2 + speed**2 + f.family_log_q90**2 + traffic**2 + host**2)

    # ------------------------------------------------------------ calibration
    def calibrated(self, history: RunSource) -> PreEstimator:
        """This estimator with a per-GPU correction from the recorded runs (Bayesian shrinkage to 0).

        The model's error on a run splits into a part shared by every run on that GPU (the machine: GPU,
        host, software; ``SHARED_ERROR_SHARE`` of the prior variance) and a part that differs from run to
        run (model, data, batch size; its variance is re-estimated from the GPU's runs once there are two).
        Each GPU's offset is the mean log residual of its runs times n / (n + run_var / shared_var) (normal
        shrinkage). For a model the history ran on that GPU, the interval is the run-to-run spread plus the
        offset's posterior variance: one run moves the estimate half-way and narrows the interval a little,
        runs that agree with each other narrow it more. A model the history has not run keeps the
        uncalibrated interval (its own error is not in the history), around the shifted estimate, except for
        its host term where the coefficients carry a ``known_host_log_factor``: the machine's host effect is
        then measured, and that factor (chosen by nested selection) replaces the unseen machine's H where it
        is narrower.

        When the coefficients carry a selected ``machine_host_ridge``, each GPU's machine first gets its host
        effect (:meth:`machine_effects_on`: a shrunk log factor on the per-step overhead and host cost,
        which moves step-bound runs and hardly GPU-bound ones), and the offsets are the residuals after it.
        """
        return self.calibrated_on(history.runs())

    @property
    def machine_host_ridge(self) -> float | None:
        """The ridge of the per-machine host effect selected by the fit (``machine.host_effect``); None
        when the coefficients carry none (no host effect is estimated from a history)."""
        value = self.selected.get("machine_host_ridge")
        return None if value is None else float(value)

    def machine_effects_on(self, runs: Sequence[LabelledRun]) -> PreEstimator:
        """This estimator with only each machine's (GPU's) host effect estimated from ``runs``
        (``machine.host_effect`` with the selected ridge; none without one): no offsets, no narrower
        interval. :meth:`calibrated_on` applies it before its offsets."""
        for i, run in enumerate(runs):
            if not isinstance(run, LabelledRun):
                raise EstimationError(f"runs[{i}] must be a LabelledRun, got {type(run)!r}")
        ridge = self.machine_host_ridge
        corrections = {}
        if ridge is not None:
            by_gpu: dict[str, list[LabelledRun]] = {}
            for run in runs:
                by_gpu.setdefault(run.descriptor.gpu.name, []).append(run)
            for name, seen in by_gpu.items():
                f = physics.Features.from_descriptors([r.descriptor for r in seen])
                log_t = np.log([r.epoch_seconds for r in seen])
                effect = machine.host_effect(self.theta, f, log_t, ridge)
                corrections[name] = GpuCorrection(
                    len(seen), 0.0, 0.0, math.inf, log_host_factor=effect, host_measured=True
                )
        return dataclasses.replace(self, corrections=corrections)

    def calibrated_on(self, runs: Sequence[LabelledRun]) -> PreEstimator:
        """This estimator with per-GPU corrections from measured runs (see :meth:`calibrated`)."""
        for i, run in enumerate(runs):
            if not isinstance(run, LabelledRun):
                raise EstimationError(f"runs[{i}] must be a LabelledRun, got {type(run)!r}")
        base = self.machine_effects_on(runs)
        # the offsets' prior is the unseen-machine interval, whatever the known-machine host factor
        unmeasured = dataclasses.replace(
            base,
            corrections={
                name: dataclasses.replace(c, host_measured=False) for name, c in base.corrections.items()
            },
        )
        by_gpu: dict[str, list[tuple[float, float, float]]] = {}
        models: dict[str, set[tuple[object, ...]]] = {}
        predictions = unmeasured.predict_many([r.descriptor for r in runs])
        for run, est in zip(runs, predictions, strict=True):
            models.setdefault(run.descriptor.gpu.name, set()).add(model_key(run.descriptor))
            by_gpu.setdefault(run.descriptor.gpu.name, []).append(
                (
                    math.log(run.epoch_seconds / est.epoch_seconds),
                    math.log(run.power_w / est.power_w),
                    est.log_sigma * Z_90,
                )
            )
        repeat_var = self.interval.repeat_log_sigma**2
        corrections = {}
        for name, residuals in by_gpu.items():
            n = len(residuals)
            prior_var = (max(r[2] for r in residuals) / Z_90) ** 2
            shared_var = max(SHARED_ERROR_SHARE * prior_var, 1e-12)
            run_var = (1.0 - SHARED_ERROR_SHARE) * prior_var + repeat_var
            if n >= 2:  # the runs' own spread, pooled with two pseudo-runs of the prior
                spread = statistics.variance([t + p for t, p, _ in residuals])
                run_var = ((n - 1) * spread + 2.0 * run_var) / (n + 1)
            run_var = max(run_var, repeat_var, 1e-12)
            shrink = n / (n + run_var / shared_var)
            offset_var = 1.0 / (n / run_var + 1.0 / shared_var)
            corrections[name] = GpuCorrection(
                runs=n,
                log_time=shrink * sum(r[0] for r in residuals) / n,
                log_power=shrink * sum(r[1] for r in residuals) / n,
                log_q90=Z_90 * math.sqrt(run_var + offset_var),
                models=frozenset(models[name]),
                log_host_factor=getattr(base.corrections.get(name), "log_host_factor", 0.0),
                host_measured=getattr(base.corrections.get(name), "host_measured", False),
            )
        return dataclasses.replace(self, corrections=corrections)

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, object]:
        """Fitted parameters and constants only (no training rows): JSON-ready."""
        return {
            "format": FORMAT_VERSION,
            "fitted_runs": self.fitted_runs,
            "time": dict(zip(physics.TIME_PARAM_NAMES, self.theta.tolist(), strict=True)),
            "power": dict(zip(physics.POWER_PARAM_NAMES, self.phi.tolist(), strict=True)),
            "interval": {k: v for k, v in dataclasses.asdict(self.interval).items() if v is not None},
            "selected": dict(self.selected),
            "board_class": {"data_centre_shift": self.data_centre_shift},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreEstimator:
        """Inverse of :meth:`to_dict`; raises EstimationError naming a missing field or a wrong format."""
        try:
            if data["format"] != FORMAT_VERSION:
                raise EstimationError(f"format must be {FORMAT_VERSION}, got {data['format']!r}")
            time_params: Mapping[str, float] = data["time"]
            power_params: Mapping[str, float] = data["power"]
            interval: Mapping[str, float] = data["interval"]
            return cls(
                theta=np.array([float(time_params[n]) for n in physics.TIME_PARAM_NAMES]),
                phi=np.array([float(power_params[n]) for n in physics.POWER_PARAM_NAMES]),
                interval=IntervalConstants(
                    model_log_q90=float(interval["model_log_q90"]),
                    repeat_log_sigma=float(interval["repeat_log_sigma"]),
                    gpu_bound_log_q90=_optional_float(interval.get("gpu_bound_log_q90")),
                    host_bound_log_q90=_optional_float(interval.get("host_bound_log_q90")),
                    host_log_factor=_optional_float(interval.get("host_log_factor")),
                    gpu_bound_host_log_factor=_optional_float(interval.get("gpu_bound_host_log_factor")),
                    known_host_log_factor=_optional_float(interval.get("known_host_log_factor")),
                ),
                fitted_runs=int(data["fitted_runs"]),
                selected=dict(data.get("selected") or {}),
                data_centre_shift=float((data.get("board_class") or {}).get("data_centre_shift", 0.0)),
            )
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise EstimationError(f"coefficients are missing or have a bad field: {exc!r}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the coefficients JSON atomically (readers see the old file or the whole new one)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PreEstimator:
        """Coefficients written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError, RecursionError) as exc:
            raise EstimationError(f"cannot read coefficients {str(path)!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise EstimationError(f"coefficients {str(path)!r} must be a JSON object")
        estimator = cls.from_dict(data)
        constants = [*estimator.theta.tolist(), *estimator.phi.tolist(), estimator.data_centre_shift]
        constants += [float(v) for v in dataclasses.astuple(estimator.interval) if v is not None]
        if not all(math.isfinite(v) for v in constants):
            raise EstimationError(f"coefficients {str(path)!r} hold a value that is not a finite number")
        return estimator

    @classmethod
    def default(cls) -> PreEstimator:
        """The shipped model (``coefficients.json``, fitted by ``tools/pre_fit.py``)."""
        resource = resources.files("lightning_energy.pre").joinpath("coefficients.json")
        return cls.from_dict(json.loads(resource.read_text(encoding="utf-8")))
