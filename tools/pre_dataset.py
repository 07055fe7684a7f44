"""The rows the PRE model is fitted on: labelled runs (``Dataset``), power-only rows (``PowerRows``) and the
power forms that turn the time parts into board power (``form_power_w``).

Research/fitting code (not part of the runtime package), used by ``tools/pre_fit.py`` and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.errors import EstimationError
from lightning_energy.pre import physics
from lightning_energy.pre.descriptors import DATA_CENTRE, LabelledRun, RunDescriptor
from tools.perseus import PowerRun

MIN_TRAIN_RUNS = 8


#: The power forms the benchmarks compare (``form_power_w``). Only ``CURVE`` (``physics.power_from_parts``)
#: ships; ``ROOFLINE`` is a candidate that ``benchmarks/pre_power.py`` judges by its decision rule.
CURVE, ROOFLINE = "utilisation curve", "roofline shares"
POWER_FORMS = (CURVE, ROOFLINE)


#: GPUs whose power reading does not track the board's draw: their runs are fitted for time only, never for
#: power. Decided from physics and the data's README before any comparison (docs/pre.md, "Power"): GAISSA's
#: GTX 750 Ti reads 28.1 W +- 0.13 W (nvidia-smi ``power.draw``, 47 % of its 60 W limit) on every run, at
#: 95 % utilisation, for five architectures and several batch sizes, whereas the same models span x1.8-2.2
#: in power on the other two GPUs; a board's real draw moves with the kernels' mix and with temperature, so a
#: reading constant to 0.5 % is not a measurement of it. Its epoch time (the run's duration) is measured.
UNTRACKED_POWER_GPUS = frozenset({"GTX 750 Ti"})


def form_power_w(
    form: str,
    phi: np.ndarray,
    parts: physics.TimeParts,
    tdp_w: np.ndarray,
    class_shift: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Mean board power of ``form`` from the time parts.

    ``CURVE``: the shipped utilisation curve (``physics.power_from_parts``; ``class_shift``: the board
    class's shift of its utilisation logit, ``physics.Features.class_shift``; the other form has none).
    ``ROOFLINE``: from the roofline's
    busy shares of the epoch, compute-bound ``s_c`` (FLOP-limited kernels), bandwidth-bound ``s_b`` and
    launch/overhead ``s_o`` (the rest idles or waits on the host)::

        activity = s_c + s_b * sigmoid(phi[1]) + s_o * sigmoid(phi[2])
        power_w  = tdp_w * (idle + (1 - idle) * activity ** exp(phi[3])),   idle = sigmoid(phi[0])
    """
    if form == CURVE:
        return physics.power_from_parts(phi, parts, tdp_w, class_shift)
    if form != ROOFLINE:
        raise EstimationError(f"power form must be one of {POWER_FORMS}, got {form!r}")
    flop_s = np.minimum(parts.flop_s, parts.compute_s)
    bytes_s = parts.compute_s - flop_s
    activity = (
        flop_s + bytes_s / (1.0 + np.exp(-phi[1])) + parts.overhead_s / (1.0 + np.exp(-phi[2]))
    ) / parts.epoch_s
    idle = 1.0 / (1.0 + np.exp(-phi[0]))
    return tdp_w * (idle + (1.0 - idle) * np.clip(activity, 1e-9, 1.0) ** np.exp(phi[3]))


@dataclass(frozen=True)
class PowerRows:
    """Measured mean board power without a labelled epoch (Perseus): rows for the power fit only."""

    features: physics.Features
    log_p: np.ndarray
    gpu: np.ndarray
    #: per row: its weight in the power fit and the share of time it idles outside the descriptor
    weight: np.ndarray
    idle_share: np.ndarray

    @classmethod
    def from_runs(cls, runs: Sequence[PowerRun]) -> PowerRows:
        return cls(
            features=physics.Features.from_descriptors([r.descriptor for r in runs]),
            log_p=np.log([r.power_w for r in runs]),
            gpu=np.array([r.gpu_name for r in runs]),
            weight=np.array([r.weight for r in runs], dtype=float),
            idle_share=np.array([r.idle_share for r in runs], dtype=float),
        )

    def predict_w(
        self, phi: np.ndarray, theta: np.ndarray, form: str = CURVE, data_centre_shift: float = 0.0
    ) -> np.ndarray:
        """Predicted mean power of the rows (``form``: ``form_power_w``): the descriptor's power while busy,
        idle power in ``idle_share``; ``data_centre_shift``: the data-centre class shift (board class)."""
        f = self.features
        shift = f.class_shift(data_centre_shift)
        busy = form_power_w(form, phi, physics.time_parts(theta, f), f.tdp_w, shift)
        idle = physics.idle_power_w(phi, self.features.tdp_w)
        return (1.0 - self.idle_share) * busy + self.idle_share * idle

    def subset(self, idx: np.ndarray | None) -> PowerRows:
        """Rows ``idx`` (all when None)."""
        if idx is None:
            return self
        f = self.features
        columns = {}
        for fld in dataclasses.fields(f):
            value = getattr(f, fld.name)
            columns[fld.name] = tuple(value[i] for i in idx) if isinstance(value, tuple) else value[idx]
        return PowerRows(
            physics.Features(**columns),
            self.log_p[idx],
            self.gpu[idx],
            self.weight[idx],
            self.idle_share[idx],
        )


@dataclass(frozen=True)
class Dataset:
    """Labelled runs with their features computed once, and optional power-only rows (``power_rows``)
    that the power curve is fitted on as well (never the time model)."""

    runs: list[LabelledRun]
    features: physics.Features
    unknown_trainable: np.ndarray
    log_t: np.ndarray
    log_p: np.ndarray
    gpu: np.ndarray
    architecture: np.ndarray
    power_rows: PowerRows | None = None
    #: the power form fitted and predicted (``form_power_w``)
    power_form: str = CURVE
    #: per run: whether its power is fitted into the consumer curve: its reading tracks the board's draw
    #: (``UNTRACKED_POWER_GPUS``) and its board is not a data-centre one (``GpuDescriptor.power_class``: that
    #: power belongs to the class shift, ``class_shift_for``); the others are fitted for time only. None:
    #: every run's power is fitted (``fit_params`` still refuses data-centre boards).
    power_measured: np.ndarray | None = None

    @classmethod
    def from_runs(
        cls,
        runs: Sequence[LabelledRun],
        power_runs: Sequence[PowerRun] = (),
        power_form: str = CURVE,
        untracked_power_gpus: frozenset[str] = UNTRACKED_POWER_GPUS,
    ) -> Dataset:
        runs = list(runs)
        if len(runs) < MIN_TRAIN_RUNS:
            raise EstimationError(f"runs must hold at least {MIN_TRAIN_RUNS} labelled runs, got {len(runs)}")
        for i, run in enumerate(runs):
            if not isinstance(run, LabelledRun):
                raise EstimationError(f"runs[{i}] must be a LabelledRun, got {type(run)!r}")
        return cls(
            runs=runs,
            features=physics.Features.from_descriptors([r.descriptor for r in runs]),
            unknown_trainable=np.array([r.descriptor.model.trainable_fraction is None for r in runs]),
            log_t=np.log([r.epoch_seconds for r in runs]),
            log_p=np.log([r.power_w for r in runs]),
            gpu=np.array([r.gpu_name for r in runs]),
            architecture=np.array([r.architecture for r in runs]),
            power_rows=PowerRows.from_runs(power_runs) if power_runs else None,
            power_form=power_form,
            power_measured=np.array(
                [
                    r.gpu_name not in untracked_power_gpus and r.descriptor.gpu.power_class != DATA_CENTRE
                    for r in runs
                ]
            ),
        )

    def power_runs(self, idx: np.ndarray) -> np.ndarray:
        """The runs of ``idx`` whose power reading tracks the board (fitted and scored for power)."""
        return idx if self.power_measured is None else idx[self.power_measured[idx]]

    @property
    def log_e(self) -> np.ndarray:
        return self.log_t + self.log_p

    def subset(self, idx: np.ndarray, trainable: float | None = None) -> physics.Features:
        """Features of runs ``idx``; ``trainable`` replaces the unknown trained shares."""
        f = self.features
        columns = {}
        for fld in dataclasses.fields(f):
            value = getattr(f, fld.name)
            columns[fld.name] = tuple(value[i] for i in idx) if isinstance(value, tuple) else value[idx]
        if trainable is not None:
            columns["trainable_share"] = np.where(
                self.unknown_trainable[idx], trainable, columns["trainable_share"]
            )
        return physics.Features(**columns)


def repeat_log_sigma(ds: Dataset) -> float:
    """Pooled within-configuration SD of log energy (run-to-run noise)."""
    keys: dict[tuple[object, ...], list[float]] = {}
    for run, e in zip(ds.runs, ds.log_e, strict=True):
        d = run.descriptor
        key = (run.gpu_name, run.architecture, run.dataset, d.data.batch_size, d.model.input_shape)
        keys.setdefault(key, []).append(float(e))
    deviations = [v - np.mean(vs) for vs in keys.values() if len(vs) > 1 for v in vs]
    dof = sum(len(vs) - 1 for vs in keys.values() if len(vs) > 1)
    return float(math.sqrt(np.sum(np.square(deviations)) / max(dof, 1)))


def with_trainable(descriptor: RunDescriptor, trainable: float) -> RunDescriptor:
    """``descriptor`` with an unknown trained share set to ``trainable`` (the GAISSA nuisance)."""
    if descriptor.model.trainable_fraction is not None:
        return descriptor
    return dataclasses.replace(
        descriptor, model=dataclasses.replace(descriptor.model, trainable_fraction=trainable)
    )
