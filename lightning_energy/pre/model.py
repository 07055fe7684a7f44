"""PreEstimator: physics-shaped model + kernel residual with shrinkage + per-GPU calibration from history.

log epoch_seconds and log power_w are each ``physics(descriptor) + residual(descriptor)``. The residual is an
RBF kernel ridge on z-scored log features whose centres are the distinct run configurations of the fitting
data (descriptor centroids, no measurements); far from them it decays to 0 and the physics part is left.
The interval grows with the distance ``d`` (z-units) to the nearest fitted configuration:
``log_sigma**2 = in_sample**2 + (per_distance * d)**2``, ``per_distance`` calibrated so that 90% of the
held-out runs of leave-one-GPU-out and leave-one-architecture-out folds (each fold weighted equally) fall
inside the 90% interval.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from lightning_energy.errors import EstimationError
from lightning_energy.pre import physics
from lightning_energy.pre.descriptors import LabelledRun, RunDescriptor

if TYPE_CHECKING:
    from lightning_energy.pre.history import RunHistory

FORMAT_VERSION = 2
#: Residual kernel width and shrinkage, chosen on the leave-one-GPU/architecture-out folds of the GAISSA data
#: under the constraint that 5-fold CV stays within its targets (see docs/pre.md).
KERNEL_GAMMA = 0.2
KERNEL_RIDGE = 0.3
#: Upper bound of the log-energy sigma (rel_sigma about 2.9): beyond this the estimate says nothing anyway.
MAX_LOG_SIGMA = 1.5
#: Distance floor (z-units) of a configuration that is not one of the fitted ones: a new architecture can be
#: close in every descriptor (ResNet50 vs Xception differ by 17% in FLOPs) and still be 20% off.
DISTANCE_FLOOR = 1.0
#: Below this z-distance a configuration counts as one of the fitted ones.
SAME_CONFIG_DISTANCE = 1e-3
MIN_FEATURE_SCALE = 0.25
Z_90 = 1.6449
UNKNOWN_GPU_LOG_SIGMA = 0.5
UNSEEN_PRECISION_LOG_SIGMA = 0.3
CV_FOLDS = 5


@dataclass(frozen=True)
class Estimate:
    """Per-epoch estimate of one run on one GPU. low_j/high_j: 90% interval of the per-epoch energy."""

    epoch_energy_j: float
    power_w: float
    epoch_seconds: float
    log_sigma: float
    gpu_name: str
    calibration_runs: int = 0

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

    def total_j(self, epochs: int) -> float:
        """Energy of ``epochs`` epochs."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise EstimationError(f"epochs must be an integer >= 0, got {epochs!r}")
        return self.epoch_energy_j * epochs

    def total_interval_j(self, epochs: int) -> tuple[float, float]:
        """90% interval of the total; the model error is shared by all epochs, so it scales with epochs."""
        self.total_j(epochs)
        return self.low_j * epochs, self.high_j * epochs

    def to_dict(self) -> dict[str, float | str | int]:
        return {
            "gpu_name": self.gpu_name,
            "epoch_energy_j": self.epoch_energy_j,
            "power_w": self.power_w,
            "epoch_seconds": self.epoch_seconds,
            "low_j": self.low_j,
            "high_j": self.high_j,
            "rel_sigma": self.rel_sigma,
            "calibration_runs": self.calibration_runs,
        }


@dataclass(frozen=True)
class GpuCorrection:
    """Shrunk mean log residuals of the history runs on one GPU."""

    runs: int
    log_time: float
    log_power: float
    log_sigma_bias: float


@dataclass(frozen=True)
class _Residual:
    mean: np.ndarray
    scale: np.ndarray
    centres: np.ndarray
    time_weights: np.ndarray
    power_weights: np.ndarray

    def kernel(self, x_log: np.ndarray) -> np.ndarray:
        z = (x_log - self.mean) / self.scale
        d2 = ((z[:, None, :] - self.centres[None, :, :]) ** 2).sum(axis=-1)
        return np.exp(-KERNEL_GAMMA * d2)

    def distance(self, k: np.ndarray) -> np.ndarray:
        """Effective z-space distance to the nearest centre, from the kernel matrix ``k`` of :meth:`kernel`:
        0 for a fitted configuration, else ``sqrt(d**2 + DISTANCE_FLOOR**2)``."""
        d = np.sqrt(np.maximum(-np.log(np.maximum(k.max(axis=1), 1e-300)) / KERNEL_GAMMA, 0.0))
        return np.where(d < SAME_CONFIG_DISTANCE, 0.0, np.sqrt(d**2 + DISTANCE_FLOOR**2))


def _fit_residual(x_log: np.ndarray, r_time: np.ndarray, r_power: np.ndarray) -> _Residual:
    mean = x_log.mean(axis=0)
    scale = np.maximum(x_log.std(axis=0), MIN_FEATURE_SCALE)
    z = np.round((x_log - mean) / scale, 9)
    centres, inverse = np.unique(z, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse).astype(float)
    k = np.exp(-KERNEL_GAMMA * ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))
    system = k + KERNEL_RIDGE * np.diag(1.0 / counts)
    weights = [np.linalg.solve(system, np.bincount(inverse, weights=r) / counts) for r in (r_time, r_power)]
    return _Residual(mean, scale, centres, weights[0], weights[1])


@dataclass(frozen=True)
class PreEstimator:
    """Estimates per-epoch energy, power and time of a run before it starts."""

    theta: np.ndarray
    phi: np.ndarray
    residual: _Residual
    log_sigma_in: float
    log_sigma_out: float
    precisions: tuple[str, ...] = ("32-true",)
    fitted_runs: int = 0
    corrections: Mapping[str, GpuCorrection] = field(default_factory=dict)
    log_sigma_per_distance: float = 0.0

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, runs: Sequence[LabelledRun], *, estimate_sigma: bool = True) -> PreEstimator:
        """Fit on labelled runs; the interval comes from 5-fold CV and leave-one-GPU/architecture-out."""
        runs = list(runs)
        if len(runs) < 8:
            raise EstimationError(f"runs must hold at least 8 labelled runs, got {len(runs)}")
        for i, run in enumerate(runs):
            if not isinstance(run, LabelledRun):
                raise EstimationError(f"runs[{i}] must be a LabelledRun, got {type(run)!r}")
        f = physics.Features.from_descriptors([r.descriptor for r in runs])
        log_t = np.log([r.epoch_seconds for r in runs])
        log_p = np.log([r.power_w for r in runs])
        theta, phi = physics.fit_physics(f, np.exp(log_t), np.exp(log_p))
        base_t, base_p = cls._physics_log(theta, phi, f)
        residual = _fit_residual(f.log_matrix(), log_t - base_t, log_p - base_p)
        precisions = tuple(sorted({r.descriptor.model.precision for r in runs}))
        fitted = cls(theta, phi, residual, 0.1, 0.5, precisions, len(runs))
        if not estimate_sigma:
            return fitted
        sigma_in, sigma_out, per_distance = _held_out_log_sigmas(runs)
        return cls(theta, phi, residual, sigma_in, sigma_out, precisions, len(runs), {}, per_distance)

    @staticmethod
    def _physics_log(
        theta: np.ndarray, phi: np.ndarray, f: physics.Features
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.log(np.sum(physics.time_parts(theta, f), axis=0)), np.log(physics.power_w(phi, theta, f))

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
        log_t, log_p = self._physics_log(self.theta, self.phi, f)
        k = self.residual.kernel(f.log_matrix())
        log_t = log_t + k @ self.residual.time_weights
        log_p = log_p + k @ self.residual.power_weights
        similarity = k.max(axis=1)
        distance = self.residual.distance(k)
        estimates = []
        for i, d in enumerate(descriptors):
            correction = self.corrections.get(d.gpu.name)
            if self.log_sigma_per_distance > 0:
                bias_var = (self.log_sigma_per_distance * distance[i]) ** 2
            else:
                bias_var = (1.0 - similarity[i]) * self.log_sigma_out**2
            t, p, runs = log_t[i], log_p[i], 0
            if correction is not None:
                t, p, runs = t + correction.log_time, p + correction.log_power, correction.runs
                bias_var = min(bias_var, correction.log_sigma_bias**2)
            var = self.log_sigma_in**2 + bias_var
            if not d.gpu.from_table and correction is None:
                var += UNKNOWN_GPU_LOG_SIGMA**2
            if d.model.precision not in self.precisions:
                var += UNSEEN_PRECISION_LOG_SIGMA**2
            power = float(np.exp(p))
            seconds = float(np.exp(t))
            log_sigma = min(math.sqrt(var), MAX_LOG_SIGMA)
            estimates.append(Estimate(power * seconds, power, seconds, log_sigma, d.gpu.name, runs))
        return estimates

    # ------------------------------------------------------------ calibration
    def calibrated(self, history: RunHistory) -> PreEstimator:
        """This estimator with a per-GPU correction from the recorded runs (Bayesian shrinkage to 0).

        Each GPU's offset is the mean log residual of its history runs times n / (n + k0), k0 =
        in_sample_var / out_of_sample_var: one run moves the estimate most of the way when the model's
        out-of-sample error dominates; the interval narrows accordingly.
        """
        runs = history.runs()
        base = dataclasses.replace(self, corrections={})
        by_gpu: dict[str, list[tuple[float, float]]] = {}
        predictions = base.predict_many([r.descriptor for r in runs])
        for run, est in zip(runs, predictions, strict=True):
            by_gpu.setdefault(run.descriptor.gpu.name, []).append(
                (math.log(run.epoch_seconds / est.epoch_seconds), math.log(run.power_w / est.power_w))
            )
        k0 = self.log_sigma_in**2 / max(self.log_sigma_out**2, 1e-12)
        corrections = {}
        for name, residuals in by_gpu.items():
            n = len(residuals)
            shrink = n / (n + k0)
            corrections[name] = GpuCorrection(
                runs=n,
                log_time=shrink * sum(r[0] for r in residuals) / n,
                log_power=shrink * sum(r[1] for r in residuals) / n,
                log_sigma_bias=self.log_sigma_out * math.sqrt(k0 / (n + k0)),
            )
        return dataclasses.replace(self, corrections=corrections)

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, object]:
        """Fitted parameters only (no training rows): JSON-ready."""
        r = self.residual
        return {
            "format": FORMAT_VERSION,
            "fitted_runs": self.fitted_runs,
            "precisions": list(self.precisions),
            "time": dict(zip(physics.TIME_PARAM_NAMES, self.theta.tolist(), strict=True)),
            "power": dict(zip(physics.POWER_PARAM_NAMES, self.phi.tolist(), strict=True)),
            "log_sigma_in": self.log_sigma_in,
            "log_sigma_out": self.log_sigma_out,
            "log_sigma_per_distance": self.log_sigma_per_distance,
            "residual": {
                "gamma": KERNEL_GAMMA,
                "feature_mean": r.mean.tolist(),
                "feature_scale": r.scale.tolist(),
                "centres": np.round(r.centres, 6).tolist(),
                "time_weights": r.time_weights.tolist(),
                "power_weights": r.power_weights.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PreEstimator:
        try:
            if data["format"] != FORMAT_VERSION:
                raise EstimationError(f"format must be {FORMAT_VERSION}, got {data['format']!r}")
            res: Mapping[str, list[float]] = data["residual"]  # type: ignore[assignment]
            time_params: Mapping[str, float] = data["time"]  # type: ignore[assignment]
            power_params: Mapping[str, float] = data["power"]  # type: ignore[assignment]
            return cls(
                theta=np.array([time_params[n] for n in physics.TIME_PARAM_NAMES]),
                phi=np.array([power_params[n] for n in physics.POWER_PARAM_NAMES]),
                residual=_Residual(
                    *(
                        np.asarray(res[k], dtype=float)
                        for k in ("feature_mean", "feature_scale", "centres", "time_weights", "power_weights")
                    )
                ),
                log_sigma_in=float(data["log_sigma_in"]),  # type: ignore[arg-type]
                log_sigma_out=float(data["log_sigma_out"]),  # type: ignore[arg-type]
                precisions=tuple(data["precisions"]),  # type: ignore[arg-type, call-overload]
                fitted_runs=int(data["fitted_runs"]),  # type: ignore[call-overload]
                log_sigma_per_distance=float(data["log_sigma_per_distance"]),  # type: ignore[arg-type]
            )
        except KeyError as exc:
            raise EstimationError(f"coefficients are missing field {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=1)
            handle.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PreEstimator:
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    @classmethod
    def default(cls) -> PreEstimator:
        """The shipped model (``coefficients.json``, fitted by ``python -m lightning_energy.pre fit``)."""
        resource = resources.files("lightning_energy.pre").joinpath("coefficients.json")
        if not resource.is_file():
            raise EstimationError(
                "coefficients.json is missing; run `python -m lightning_energy.pre fit --data PATH`"
            )
        return cls.from_dict(json.loads(resource.read_text(encoding="utf-8")))


def _held_out_log_sigmas(runs: Sequence[LabelledRun]) -> tuple[float, float, float]:
    """(in-sample, out-of-sample, per-distance) log-energy sigma.

    in-sample: RMS log error under 5-fold CV. out-of-sample: RMS under leave-one-GPU-out and
    leave-one-architecture-out (where there are at least two groups). per-distance: the slope ``b`` of
    ``log_sigma**2 = in_sample**2 + (b * distance)**2`` that puts 90% of those held-out runs inside the 90%
    interval, each fold weighted equally (a weighted 90% quantile of the slope each run needs).
    """
    n = len(runs)
    truth = np.log([r.epoch_energy_j for r in runs])
    order = np.random.default_rng(0).permutation(n)
    cv_errors: list[float] = []
    for fold in np.array_split(order, CV_FOLDS):
        cv_errors.extend(_fold_log_errors(runs, set(fold.tolist()), truth)[0])
    sigma_in = float(np.sqrt(np.mean(np.square(cv_errors))))
    out_errors: list[float] = []
    needed: list[float] = []
    weights: list[float] = []
    for key in ("gpu_name", "architecture"):
        groups = sorted({getattr(r, key) for r in runs})
        if len(groups) < 2:
            continue
        for group in groups:
            held = {i for i, r in enumerate(runs) if getattr(r, key) == group}
            if len(held) <= n - 8:
                errors, distances = _fold_log_errors(runs, held, truth)
                out_errors.extend(errors)
                excess = np.sqrt(np.maximum(np.square(np.asarray(errors) / Z_90) - sigma_in**2, 0.0))
                needed.extend((excess / np.maximum(distances, 1e-6)).tolist())
                weights.extend([1.0 / len(errors)] * len(errors))
    sigma_out = float(np.sqrt(np.mean(np.square(out_errors)))) if out_errors else 0.5
    per_distance = _weighted_quantile(np.asarray(needed), np.asarray(weights), 0.9) if needed else 0.5
    return sigma_in, max(sigma_out, sigma_in), per_distance


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cumulative, q)), len(values) - 1)])


def _fold_log_errors(
    runs: Sequence[LabelledRun], held: set[int], truth: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """Log errors of the held-out runs under a model fitted on the others, and their z-distances to it."""
    train = [r for i, r in enumerate(runs) if i not in held]
    test = sorted(held)
    model = PreEstimator.fit(train, estimate_sigma=False)
    descriptors = [runs[i].descriptor for i in test]
    predicted = model.predict_many(descriptors)
    f = physics.Features.from_descriptors(descriptors)
    distances = model.residual.distance(model.residual.kernel(f.log_matrix()))
    errors = [math.log(p.epoch_energy_j) - truth[i] for p, i in zip(predicted, test, strict=True)]
    return errors, distances
