"""Fit the PRE model on GAISSA runs with nested selection, and write ``coefficients.json``.

Research/fitting code (not part of the runtime package). What is fitted (log-space least squares with weak
Gaussian priors, weight ``prior_weight x sqrt(n)``):

* time: ``log_half_step_flop``, ``log_step_overhead_s``, ``log_host_s_per_sample``, ``numel_exponent`` and,
  for runs whose trained share is unknown, one data-set nuisance share (GAISSA's runs carry theirs, derived
  from the authors' protocols by ``tools/gaissa.py``, so the nuisance is unused there).
  ``overlap_exponent`` is a hyper-parameter (grid). The GPU's speed is *not* fitted: it comes from the
  measured throughput table.
* power: ``logit_idle_fraction``, ``util_bias``, ``util_per_log_busy``, ``util_per_log_step_s`` (the
  consumer curve, on GAISSA's runs) and, since v5.5, the data-centre class shift of the utilisation logit,
  fitted on the data-centre rows of Perseus (A100 80GB PCIe, A40) and MLPerf (H100 SXM at a stated GPU share)
  with the rest held fixed, its prior weight chosen by leave-one-data-centre-GPU-out (``class_shift_for``).

Selection (``select``): on a set of runs, leave-one-GPU-out and leave-one-architecture-out folds choose the
prior weight and the overlap exponent (mean absolute log energy error over folds, each fold weighted
equally; the lowest score, or the strongest prior within one standard error of it, whichever rule predicts
the held-out groups of a nested selection better: ``choose_selection_rule``), and the interval constant
``model_log_q90`` from those folds' held-out errors (runs on GPUs with measured speed) by one of three
rules, itself chosen by nested selection (``choose_interval_rule``): the group quantile (the larger of the
run-level split-conformal and the group-conformal 90 % quantiles), a random-effects predictive quantile (a
new group's shift drawn like the observed groups', Student-t with as many degrees of freedom as groups), or
the group quantile inflated by the factor that made it cover 90 % of groups it had not seen; with the rule,
the host factor H of the per-run host term (``model.host_log_term``: the per-step and host cost off by H,
which no descriptor can know), the errors being calibrated with that term taken out in quadrature.
Regime-conditional (Mondrian) candidates, ``q_model`` and H each the predicted regime's own (GPU-bound or
not), are judged by the same nested selection and replace the pooled choice only where they reach 90 % and
are narrower (v5.5; a fixed split was tried in v5 and dropped: its GPU-bound intervals covered 67 %
(held-out GPU) and 54 % (held-out architecture) of the outer folds' GPU-bound runs). With a per-machine host
effect, the host factor for a new model on a machine a history has measured (``choose_known_host_factor``)
is chosen on the leave-one-architecture-out folds. ``benchmarks/pre_accuracy.py`` runs ``select`` on the
training part of every outer fold only and reports the outer fold; the shipped model runs ``select`` on all
runs.

Run: ``python tools/pre_fit.py [--data ../shared/data/gaissa] [--perseus ../shared/data/perseus]
[--mlperf ../shared/data/mlperf] [--out PATH]`` (default: the package's
``lightning_energy/pre/coefficients.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.errors import EstimationError  # noqa: E402
from lightning_energy.pre import machine, physics  # noqa: E402
from lightning_energy.pre.descriptors import DATA_CENTRE, LabelledRun, RunDescriptor  # noqa: E402
from lightning_energy.pre.model import IntervalConstants, PreEstimator, host_log_term  # noqa: E402
from lightning_energy.pre.roofline import HOST  # noqa: E402
from tools.perseus import PowerRun  # noqa: E402

DEFAULT_OUT = REPO / "lightning_energy" / "pre" / "coefficients.json"
PRIOR_WEIGHTS = (0.01, 0.1, 1.0, 10.0, 100.0)
#: Whether the power curve gets its own prior weight, chosen by leave-one-GPU-out power error
#: (``select_power_weight``). Off, and no Perseus rows in the shipped consumer curve (GAISSA only): the nested
#: table of ``benchmarks/pre_power.py`` decided so (its rule is in its docstring). Perseus's and MLPerf's
#: data-centre rows set only the data-centre class shift (``class_shift_for``; v5.5, by the same table).
SEPARATE_POWER_WEIGHT = False
OVERLAP_EXPONENTS = (1.0, 2.0, 4.0)
BEST_SCORE, ONE_SE = "best score", "one standard error"
#: The candidate rules that pick the prior weight and overlap from the fold scores (``pick``), themselves
#: chosen by nested selection (``choose_selection_rule``).
SELECTION_RULES = (BEST_SCORE, ONE_SE)
MIN_TRAIN_RUNS = 8

#: Prior centres (physical orders of magnitude, not fitted): a step of ~3e10 forward FLOPs (e.g. ResNet-50
#: at batch 4) fills a GPU half as well as the references' 2e12; a training step costs ~5 ms of launches,
#: optimizer and Python on any GPU (a few hundred kernels at ~10-20 us); data loading costs ~1e-4 s per
#: 128 px image (about 1 ms of decode and augmentation per image on one core, ~10 loader workers) and grows
#: more slowly than the pixels, since part of it is per sample (file read, collation): exponent 1/2; the
#: trained share of the GAISSA runs is centred on 1/2 (logit 0). Power: a busy-but-stalled GPU draws ~27% of
#: its limit (logit -1), utilisation rises with the busy share and the step length.
TIME_PRIOR = np.array([math.log(3e10), math.log(5e-3), math.log(1e-4), 0.5, 0.0])
TIME_PRIOR_SD = np.array([3.0, 1.5, 3.0, 0.5, 2.0])
TIME_LOWER = np.array([math.log(1e6), math.log(1e-5), math.log(1e-8), 0.0, -6.0])
TIME_UPPER = np.array([math.log(1e14), 0.0, 0.0, 1.5, 6.0])
POWER_PRIOR = np.array([-1.0, 1.0, 1.0, 0.3])
POWER_PRIOR_SD = np.array([1.5, 2.0, 1.0, 1.0])

#: The power forms the benchmarks compare (``form_power_w``). Only ``CURVE`` (``physics.power_from_parts``)
#: ships; ``ROOFLINE`` is a candidate that ``benchmarks/pre_power.py`` judges by its decision rule.
CURVE, ROOFLINE = "utilisation curve", "roofline shares"
POWER_FORMS = (CURVE, ROOFLINE)
#: ``ROOFLINE`` priors: idle ~27 % of the limit (logit -1); bandwidth-bound kernels draw ~62 % of what
#: compute-bound ones do (logit 0.5), launch-bound steps ~27 % (logit -1); exponent 1 (log 0).
ROOFLINE_PRIOR = np.array([-1.0, 0.5, -1.0, 0.0])
ROOFLINE_PRIOR_SD = np.array([1.5, 1.5, 1.5, 1.0])

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


def power_prior(form: str) -> tuple[np.ndarray, np.ndarray]:
    """Prior centres and sds of ``form``'s parameters."""
    return (POWER_PRIOR, POWER_PRIOR_SD) if form == CURVE else (ROOFLINE_PRIOR, ROOFLINE_PRIOR_SD)


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


@dataclass(frozen=True)
class Fitted:
    theta: np.ndarray
    phi: np.ndarray
    trainable: float
    #: the data-centre class shift of the utilisation logit (``fit_class_shift``; 0: none)
    data_centre_shift: float = 0.0

    def predict_log(
        self, ds: Dataset, idx: np.ndarray, log_host_shift: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log time, log power and the predicted GPU busy share of runs ``idx`` (``log_host_shift``: per-run
        machine host effect, ``machine_shifts``)."""
        f = ds.subset(idx, self.trainable)
        parts = physics.time_parts(self.theta, f, log_host_shift)
        power = form_power_w(ds.power_form, self.phi, parts, f.tdp_w, f.class_shift(self.data_centre_shift))
        return np.log(parts.epoch_s), np.log(power), parts.busy_share

    def power_errors(self, ds: Dataset, idx: np.ndarray, power_idx: np.ndarray) -> np.ndarray:
        """Log power errors (predicted - measured) of runs ``idx`` and power-only rows ``power_idx``."""
        _, log_p, _ = self.predict_log(ds, idx)
        out = [log_p - ds.log_p[idx]]
        if ds.power_rows is not None and len(power_idx):
            rows = ds.power_rows.subset(power_idx)
            predicted = rows.predict_w(self.phi, self.theta, ds.power_form, self.data_centre_shift)
            out.append(np.log(predicted) - rows.log_p)
        return np.concatenate(out)


#: Prior of the data-centre class shift (``fit_class_shift``): centred on 0 (a data-centre board draws as the
#: consumer curve says), with the sd of ``util_bias`` (``POWER_PRIOR_SD[1]``).
CLASS_SHIFT_PRIOR_SD = 2.0


#: Which data-centre rows the class shift is fitted on (``class_shift_for``): every one (v5.5), or only those
#: the fitted time model predicts GPU-bound (not host-bound: the GPU's kernels outweigh both the per-step
#: overhead and the loading; ``physics.TimeParts.regimes``). The second is the v5.6 amendment, declared in
#: docs/pre.md ("Board class") before its run: a row predicted host-bound whose board draws near its limit
#: can only be fitted by a shift large enough to lift a waiting board to its limit, so its proxy's busy-share
#: error is attributed to the shift (MLPerf's DLRM, Llama-2 LoRA and U-Net3D rows).
ALL_ROWS, GPU_BOUND_ROWS = "all", "GPU-bound"
CLASS_ROW_RULES = (ALL_ROWS, GPU_BOUND_ROWS)
#: The rule the shipped shift uses (``fit_shipped``): v5.5's; the GPU-bound rule failed its declared rule
#: (held-out data-centre power MAPE 10.0 % against 7.0 %, more than 1 point worse; docs/pre.md).
SHIPPED_CLASS_ROWS = ALL_ROWS


def data_centre_rows(rows: Sequence[PowerRun]) -> list[PowerRun]:
    """The power-only rows measured on data-centre boards (``GpuDescriptor.power_class``)."""
    return [r for r in rows if r.descriptor.gpu.power_class == DATA_CENTRE]


def gpu_bound_rows(rows: Sequence[PowerRun], theta: np.ndarray) -> tuple[list[PowerRun], list[PowerRun]]:
    """(kept, dropped): the rows the time model ``theta`` predicts GPU-bound (regime not host-bound,
    ``physics.TimeParts.regimes``), and the others."""
    rows = list(rows)
    if not rows:
        return [], []
    features = physics.Features.from_descriptors([r.descriptor for r in rows])
    regimes = physics.time_parts(theta, features).regimes()
    kept = [r for r, regime in zip(rows, regimes, strict=True) if regime != HOST]
    dropped = [r for r, regime in zip(rows, regimes, strict=True) if regime == HOST]
    return kept, dropped


def fit_class_shift(rows: PowerRows, phi: np.ndarray, theta: np.ndarray, weight: float) -> float:
    """The data-centre class shift ``s`` of the utilisation logit (times the busy share,
    ``physics.power_from_parts``), fitted on data-centre power rows with the
    time model ``theta`` and the consumer curve ``phi`` held fixed: least squares in log power (each row
    counted at its weight, its pipeline bubble at idle power) with the prior N(0, ``CLASS_SHIFT_PRIOR_SD``)
    of weight ``weight x sqrt(rows)``. Rows on consumer boards are not allowed (their curve is ``phi``)."""
    from scipy.optimize import least_squares

    if not len(rows.log_p):
        raise EstimationError("fit_class_shift needs at least one data-centre power row")
    if not np.all(rows.features.data_centre == 1.0):
        raise EstimationError("fit_class_shift takes data-centre rows only (GpuDescriptor.power_class)")
    prior = weight * math.sqrt(len(rows.log_p)) / CLASS_SHIFT_PRIOR_SD

    def residuals(x: np.ndarray) -> np.ndarray:
        fit = rows.weight * (np.log(rows.predict_w(phi, theta, CURVE, float(x[0]))) - rows.log_p)
        return np.append(fit, prior * x[0])

    return float(least_squares(residuals, np.zeros(1)).x[0])


def select_class_weight(
    rows: PowerRows, phi: np.ndarray, theta: np.ndarray, grid: Sequence[float] = PRIOR_WEIGHTS
) -> tuple[float, dict[float, float]]:
    """The prior weight of the data-centre class shift, chosen by leave-one-GPU-out over the data-centre
    GPUs of ``rows`` (each held out in turn, the shift fitted on the others' rows; mean absolute log power
    error of the held-out GPU's rows, each GPU weighing 1); ties go to the stronger prior. With fewer than
    two GPUs nothing can be judged: the strongest prior of ``grid`` (the shift stays near 0)."""
    names = sorted(set(rows.gpu.tolist()))
    order = sorted(set(grid), reverse=True)
    if len(names) < 2:
        return order[0], {}
    every = np.arange(len(rows.log_p))
    scores = {}
    for weight in order:
        errors = []
        for name in names:
            held, train = every[rows.gpu == name], every[rows.gpu != name]
            shift = fit_class_shift(rows.subset(train), phi, theta, weight)
            test = rows.subset(held)
            errors.append(float(np.abs(np.log(test.predict_w(phi, theta, CURVE, shift)) - test.log_p).mean()))
        scores[weight] = float(np.mean(errors))
    best = min(order, key=lambda w: (round(scores[w], 12), order.index(w)))
    return best, scores


@dataclass(frozen=True)
class ClassShift:
    """The data-centre class shift, its selected prior weight and what it was fitted and chosen on."""

    shift: float
    weight: float
    scores: dict[float, float]
    rows: int
    gpus: tuple[str, ...]
    #: the row rule (``CLASS_ROW_RULES``) and the (GPU, model) of each data-centre row it left out
    rule: str = ALL_ROWS
    dropped: tuple[tuple[str, str], ...] = ()


def class_shift_for(rows: Sequence[PowerRun], fitted: Fitted, rule: str = ALL_ROWS) -> ClassShift:
    """Select the prior weight (``select_class_weight``) and fit the shift (``fit_class_shift``) on the
    data-centre rows of ``rows`` for the fit ``fitted`` (its time model and consumer curve held fixed);
    ``rule`` (``CLASS_ROW_RULES``): every data-centre row, or only those ``fitted``'s time model predicts
    GPU-bound (``gpu_bound_rows``)."""
    if rule not in CLASS_ROW_RULES:
        raise EstimationError(f"rule must be one of {CLASS_ROW_RULES}, got {rule!r}")
    centre = data_centre_rows(rows)
    dropped: list[PowerRun] = []
    if rule == GPU_BOUND_ROWS:
        centre, dropped = gpu_bound_rows(centre, fitted.theta)
    dc = PowerRows.from_runs(centre)
    weight, scores = select_class_weight(dc, fitted.phi, fitted.theta)
    shift = fit_class_shift(dc, fitted.phi, fitted.theta, weight)
    return ClassShift(
        shift,
        weight,
        scores,
        len(dc.log_p),
        tuple(sorted(set(dc.gpu.tolist()))),
        rule,
        tuple((r.gpu_name, r.model_name) for r in dropped),
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def fit_params(
    ds: Dataset,
    idx: np.ndarray,
    prior_weight: float,
    overlap: float,
    power_weight: float | None = None,
    power_idx: np.ndarray | None = None,
) -> Fitted:
    """Least squares in log space (time, then power) with Gaussian priors of weight prior_weight x sqrt(n);
    ``overlap`` is the overlap exponent (held fixed). The power curve's prior weight is ``power_weight``
    (default ``prior_weight``) x sqrt(its rows); its rows are the runs ``idx`` and the power-only rows
    ``power_idx`` of ``ds.power_rows`` (default all of them). The curve is the consumer boards': labelled
    runs on data-centre boards are fitted for time only (``Dataset.from_runs``), and a dataset that would
    fit their power raises EstimationError. Power-only rows are fitted into it only where the caller passes
    them (the comparison variants of ``benchmarks/pre_power.py``)."""
    from scipy.optimize import least_squares

    measured = ds.power_runs(idx)
    centre = sorted(set(ds.gpu[measured[ds.features.data_centre[measured] == 1.0]].tolist()))
    if centre:
        raise EstimationError(
            "fit_params fits the consumer power curve, but the runs whose power it would fit include "
            f"data-centre boards ({', '.join(centre)}); their power belongs to the data-centre class shift "
            "(class_shift_for): build the Dataset with Dataset.from_runs, which fits them for time only"
        )

    weight = prior_weight * math.sqrt(len(idx))
    log_t = ds.log_t[idx]

    def time_residuals(x: np.ndarray) -> np.ndarray:
        f = ds.subset(idx, _sigmoid(x[4]))
        fit = np.log(physics.epoch_seconds(np.append(x[:4], overlap), f)) - log_t
        return np.concatenate([fit, weight * (x - TIME_PRIOR) / TIME_PRIOR_SD])

    x = least_squares(time_residuals, TIME_PRIOR, bounds=(TIME_LOWER, TIME_UPPER)).x
    theta, trainable = np.append(x[:4], overlap), _sigmoid(x[4])
    f = ds.subset(measured, trainable)
    log_p = ds.log_p[measured]
    extra = ds.power_rows.subset(power_idx) if ds.power_rows is not None else None
    rows = len(measured) + (len(extra.log_p) if extra is not None else 0)
    p_weight = (prior_weight if power_weight is None else power_weight) * math.sqrt(rows)

    prior, prior_sd = power_prior(ds.power_form)
    time_parts = physics.time_parts(theta, f)

    def power_residuals(phi: np.ndarray) -> np.ndarray:
        fit = np.log(form_power_w(ds.power_form, phi, time_parts, f.tdp_w)) - log_p
        parts = [fit, p_weight * (phi - prior) / prior_sd]
        if extra is not None:
            parts.append(extra.weight * (np.log(extra.predict_w(phi, theta, ds.power_form)) - extra.log_p))
        return np.concatenate(parts)

    phi = least_squares(power_residuals, prior).x
    return Fitted(theta, phi, trainable)


def power_groups(
    ds: Dataset, idx: np.ndarray, power_idx: np.ndarray
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(GPU, its runs in ``idx``, its power-only rows in ``power_idx``) for every GPU with measured power
    (``Dataset.power_runs``)."""
    idx = ds.power_runs(idx)
    names = set(ds.gpu[idx].tolist())
    if ds.power_rows is not None:
        names |= set(ds.power_rows.gpu[power_idx].tolist())
    out = []
    for name in sorted(names):
        rows = power_idx[ds.power_rows.gpu[power_idx] == name] if ds.power_rows is not None else power_idx
        out.append((name, idx[ds.gpu[idx] == name], rows))
    return out


def select_power_weight(
    ds: Dataset,
    idx: np.ndarray,
    prior_weight: float,
    overlap: float,
    power_idx: np.ndarray | None = None,
    grid: Sequence[float] = PRIOR_WEIGHTS,
) -> tuple[float, dict[float, float]]:
    """The power curve's own prior weight, chosen by leave-one-GPU-out over the GPUs with measured power in
    ``idx`` and ``power_idx`` (mean absolute log power error of the held-out GPU, each GPU weighing 1); the
    time model keeps ``prior_weight``. With fewer than two GPUs: ``prior_weight``."""
    if power_idx is None:
        power_idx = np.arange(len(ds.power_rows.log_p)) if ds.power_rows is not None else np.arange(0)
    groups = power_groups(ds, idx, power_idx)
    if len(groups) < 2:
        return prior_weight, {}
    scores = {}
    for weight in grid:
        errors = []
        for _, runs, rows in groups:
            train = np.setdiff1d(idx, runs)
            if len(train) < MIN_TRAIN_RUNS:
                continue
            fitted = fit_params(ds, train, prior_weight, overlap, weight, np.setdiff1d(power_idx, rows))
            errors.append(np.abs(fitted.power_errors(ds, runs, rows)).mean())
        scores[weight] = float(np.mean(errors))
    return min(scores, key=lambda w: scores[w]), scores


#: (kind, group, train, test)
Fold = tuple[str, str, np.ndarray, np.ndarray]


def group_folds(ds: Dataset, idx: np.ndarray) -> list[Fold]:
    """(kind, group, train, test) for leave-one-GPU-out and leave-one-architecture-out within ``idx``."""
    folds = []
    for kind, labels in (("GPU", ds.gpu), ("architecture", ds.architecture)):
        groups = sorted(set(labels[idx].tolist()))
        if len(groups) < 2:
            continue
        for group in groups:
            test = idx[labels[idx] == group]
            train = idx[labels[idx] != group]
            if len(train) >= MIN_TRAIN_RUNS:
                folds.append((kind, group, train, test))
    return folds


@dataclass(frozen=True)
class IntervalChoice:
    """The interval rule chosen by nested selection (``choose_interval_rule``) and what it was chosen on."""

    rule: str
    #: the chosen rule's constant on all group folds: ``model_log_q90``
    log_q90: float
    #: every rule's constant on all group folds
    values: dict[str, float]
    #: every rule's coverage of the groups held out once more (group-averaged), and its median constant there
    inner_coverage: dict[str, float]
    inner_log_q90: dict[str, float]
    #: held-out groups the choice was made on, and the inflation of ``INFLATED`` on all of them
    groups: int
    inflation: float
    #: the chosen host factor H (1: no host term; ``host_log_term``)
    host_factor: float = 1.0
    #: every (rule, H) pair's group-averaged coverage and median half-width on the groups held out once more
    pair_scores: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    #: machines (GPUs) with host/launch-bound runs the choice saw (``host_bound_machines``); with fewer than
    #: two the spread of hosts between machines cannot be judged and H is the widest candidate
    host_machines: int = 0
    #: the best regime-conditional (Mondrian) candidate, with its constants on all group folds (None: too
    #: few groups to judge), and whether it was chosen over the pooled (``rule``, ``host_factor``) above
    regime: RegimeRule | None = None
    by_regime: bool = False
    #: every regime candidate's score and median half-width, as ``pair_scores``
    regime_scores: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """The chosen interval, e.g. ``random effects, H=3`` or ``group quantile by regime, H=1.5/3``."""
        if self.by_regime and self.regime is not None:
            return self.regime.label
        return f"{self.rule}, H={self.host_factor:g}"


@dataclass(frozen=True)
class Selection:
    prior_weight: float
    overlap: float
    model_log_q90: float
    scores: dict[tuple[float, float], float]
    interval: IntervalChoice
    #: the power curve's own prior weight (``select_power_weight``); None: ``prior_weight``
    power_weight: float | None = None
    power_scores: dict[float, float] = dataclasses.field(default_factory=dict)
    #: the rule that picked the prior weight and overlap from ``scores`` (``choose_selection_rule``), and
    #: each rule's held-out score on the group folds
    rule: str = "best score"
    rule_scores: dict[str, float] = dataclasses.field(default_factory=dict)
    #: the ridge of the per-machine host effect (``choose_machine_ridge``; inf: none) and every ridge's score
    machine_ridge: float = math.inf
    machine_scores: dict[float, float] = dataclasses.field(default_factory=dict)
    #: the host factor for a new model on a machine whose host effect a history measured
    #: (``choose_known_host_factor``; None: the unseen machine's) and every candidate's score
    known_host_factor: float | None = None
    known_host_scores: dict[float, float] = dataclasses.field(default_factory=dict)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cumulative, q)), len(values) - 1)])


#: A fold's held-out runs: signed log errors (predicted - measured) and which are on a GPU with measured speed
FoldErrors = tuple[np.ndarray, np.ndarray]


def split_conformal_q90(errors: Sequence[FoldErrors]) -> float:
    """Run-level split-conformal 90 % quantile (v4's rule): the 90 % quantile of all held-out runs'
    absolute errors, each fold's runs sharing the weight 1; nan if no fold has runs."""
    values = [np.abs(e[keep]) for e, keep in errors if keep.any()]
    if not values:
        return math.nan
    weights = [np.full(len(v), 1.0 / len(v)) for v in values]
    return weighted_quantile(np.concatenate(values), np.concatenate(weights), 0.9)


def interval_q90(errors: Sequence[FoldErrors]) -> float:
    """The group-quantile rule: the larger of the run-level split-conformal quantile
    (``split_conformal_q90``) and the group-conformal one (``conformal_q90``). With fewer than 9 groups the
    largest group quantile already bounds the run-level one (up to interpolation)."""
    values = [q for q in (split_conformal_q90(errors), conformal_q90(errors)) if not math.isnan(q)]
    return max(values) if values else math.nan


def conformal_q90(errors: Sequence[FoldErrors]) -> float:
    """Group-conformal 90 % quantile: each held-out group (fold) is one exchangeable unit scored by the 90 %
    quantile of its absolute errors, and the constant is the ceil((n + 1) x 0.9)-th smallest of the n group
    scores (the largest when n < 9). A new GPU or architecture shifts all of its runs together, so the
    runs of one group are not exchangeable with each other's groups; nan if no fold has runs."""
    scores = sorted(float(np.quantile(np.abs(e[keep]), 0.9)) for e, keep in errors if keep.any())
    if not scores:
        return math.nan
    n = len(scores)
    return scores[min(n - 1, math.ceil((n + 1) * 0.9) - 1)]


def random_effects_q90(errors: Sequence[FoldErrors]) -> float:
    """Predictive 90 % half-width for a new group under a random-effects model of the held-out errors.

    A group's runs err by the group's shift ``m_g`` (its mean signed error) plus a within-group residual. The
    shift of a new group is a new draw: with the n observed shifts centred on 0 (a bias the model has is not
    assumed to persist), its scale ``tau = sqrt(mean(m_g**2))`` has n degrees of freedom, so the shift's
    95 % point is Student's ``t(0.95, n) x tau`` (the finite-sample correction; ``t`` -> 1.645 as n grows).
    The within-group spread ``sigma`` (each group weighing 1) is estimated from many runs: normal. The
    half-width is ``sqrt((t x tau)**2 + (1.645 x sigma)**2)``; nan if no fold has runs."""
    from scipy.stats import t as student_t

    groups = [e[keep] for e, keep in errors if keep.any()]
    if not groups:
        return math.nan
    shifts = np.array([g.mean() for g in groups])
    within = float(np.mean([g.var() for g in groups]))
    n = len(groups)
    tau = float(np.sqrt(np.mean(shifts**2)))
    return float(math.hypot(float(student_t.ppf(0.95, n)) * tau, 1.6449 * math.sqrt(within)))


GROUP_QUANTILE, RANDOM_EFFECTS, INFLATED = "group quantile", "random effects", "inflated group quantile"
#: The candidate interval rules (``choose_interval_rule``).
INTERVAL_RULES = (GROUP_QUANTILE, RANDOM_EFFECTS, INFLATED)
#: The group-averaged coverage the interval is calibrated to.
TARGET_COVERAGE = 0.9


def coverage_inflation(ratios: Sequence[np.ndarray], coverage: float = TARGET_COVERAGE) -> float:
    """Smallest ``k`` with mean over groups of (share of the group's ``ratios`` <= ``k``) >= ``coverage``;
    ``ratios`` per group: held-out absolute error / the rule's constant computed without that group."""
    if not ratios or any(len(r) == 0 for r in ratios):
        raise EstimationError("coverage_inflation needs at least one group, each with one ratio or more")
    candidates = np.unique(np.concatenate(ratios))
    covered = np.mean(
        [np.searchsorted(np.sort(r), candidates, side="right") / len(r) for r in ratios], axis=0
    )
    return float(candidates[min(int(np.searchsorted(covered, coverage - 1e-12)), len(candidates) - 1)])


def fold_fits(
    ds: Dataset, folds: Sequence[Fold], weight: float, overlap: float, power_weight: float | None = None
) -> list[tuple[FoldErrors, Fitted]]:
    """Per fold: its held-out errors (``fold_errors``) and the fit on its training part."""
    out = []
    for _, _, train, test in folds:
        fitted = fit_params(ds, train, weight, overlap, power_weight)
        t, p, _ = fitted.predict_log(ds, test)
        out.append(((t + p - ds.log_e[test], ds.features.speed_measured[test]), fitted))
    return out


def fold_errors(
    ds: Dataset, folds: Sequence[Fold], weight: float, overlap: float, power_weight: float | None = None
) -> list[FoldErrors]:
    """Per fold: signed held-out log energy errors and which are on a GPU with measured speed."""
    return [errors for errors, _ in fold_fits(ds, folds, weight, overlap, power_weight)]


#: Candidate ridges of the per-machine host effect (``lightning_energy.pre.machine.host_effect``), in units
#: of runs whose epoch time moves fully with it: inf is no effect (the pooled host parts for every machine).
MACHINE_RIDGES = (math.inf, 100.0, 30.0, 10.0, 3.0, 1.0)


def machine_shifts(
    ds: Dataset, fitted: Fitted, train: np.ndarray, test: np.ndarray, ridge: float
) -> np.ndarray:
    """Per run of ``test``: the host effect of its machine (GPU: GAISSA's GPUs each sit in their own host)
    estimated from the runs of ``train`` on that machine (``machine.host_effect``); 0 for a machine with no
    run in ``train``, or for an infinite ridge."""
    out = np.zeros(len(test))
    if math.isinf(ridge):
        return out
    for name in sorted(set(ds.gpu[test].tolist())):
        seen = train[ds.gpu[train] == name]
        if len(seen):
            f = ds.subset(seen, fitted.trainable)
            out[ds.gpu[test] == name] = machine.host_effect(fitted.theta, f, ds.log_t[seen], ridge)
    return out


def choose_machine_ridge(
    ds: Dataset, folds: Sequence[Fold], fits: Sequence[Fitted], ridges: Sequence[float] = MACHINE_RIDGES
) -> tuple[float, dict[float, float]]:
    """The ridge of the per-machine host effect, chosen on ``folds`` (each with its fit ``fits``): for each
    ridge the held-out runs get their machine's effect from the fold's training runs (``machine_shifts``),
    and the score is the mean over folds of the mean absolute log energy error (each fold weighing 1, as
    ``score_grid``). A fold whose group is a machine sees no run of it: its score is the same for every
    ridge. The lowest score wins; ties go to the larger ridge (no effect first)."""
    if not ridges or any(not r >= 0 for r in ridges):
        raise EstimationError(f"ridges must be >= 0 (inf: no effect), got {ridges!r}")
    order = sorted(set(ridges), reverse=True)
    scores = {}
    for ridge in order:
        per_fold = []
        for (_, _, train, test), fitted in zip(folds, fits, strict=True):
            t, p, _ = fitted.predict_log(ds, test, machine_shifts(ds, fitted, train, test, ridge))
            per_fold.append(float(np.abs(t + p - ds.log_e[test]).mean()))
        scores[ridge] = float(np.mean(per_fold))
    best = min(order, key=lambda r: (round(scores[r], 12), order.index(r)))
    return best, scores


#: Candidate factors H for the host term (``host_log_term``): 1 is no term.
HOST_FACTORS = (1.0, 1.5, 2.0, 3.0)


def choose_known_host_factor(
    ds: Dataset,
    folds: Sequence[Fold],
    fits: Sequence[Fitted],
    choice: IntervalChoice,
    ridge: float,
    host_factors: Sequence[float] = HOST_FACTORS,
) -> tuple[float | None, dict[float, float]]:
    """The host factor H for a new model on a machine whose host effect a history measured.

    Judged on the leave-one-architecture-out folds of ``folds`` only (a held-out architecture's machines
    are in the fold's training part): each fold's fit (``fits``), with the chosen interval constants
    (``chosen_constants``) and the ridge ``ridge``, is calibrated on the fold's training runs as a history
    (``PreEstimator.calibrated_on``: the machine's host effect, then per-GPU offsets) and predicts the
    held-out runs. For each candidate factor below the unseen machine's H (the host/launch-bound one for a
    regime interval) the score is the lowest of the coverage averaged over the folds (each weighing 1) of
    all, of the GPU-bound and of the other runs on GPUs with measured speed; the smallest factor whose score
    reaches ``TARGET_COVERAGE`` is used (it applies only where it narrows, ``PreEstimator.log_q90``). None
    (the unseen machine's H) with no ridge (no effect is measured), fewer than two such folds, or no
    candidate reaching the target. Returns it and every candidate's score (the unseen H's under its own
    key)."""
    if math.isinf(ridge):
        return None, {}
    judged = [(fold, fitted) for fold, fitted in zip(folds, fits, strict=True) if fold[0] == "architecture"]
    if len(judged) < 2:
        return None, {}
    unseen = (
        choice.regime.host_bound_host_factor if choice.by_regime and choice.regime else choice.host_factor
    )
    candidates = sorted(h for h in set(host_factors) if 1.0 <= h < unseen)
    if not candidates:
        return None, {}
    constants = chosen_constants(choice, repeat_log_sigma(ds))
    covered: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {h: [] for h in [*candidates, unseen]}
    for (_, _, train, test), fitted in judged:
        estimator = PreEstimator(
            fitted.theta, fitted.phi, constants, selected={"machine_host_ridge": ridge}
        ).calibrated_on(
            [
                dataclasses.replace(
                    ds.runs[i], descriptor=with_trainable(ds.runs[i].descriptor, fitted.trainable)
                )
                for i in train
            ]
        )
        descriptors = [with_trainable(ds.runs[i].descriptor, fitted.trainable) for i in test]
        truth = np.exp(ds.log_e[test])
        keep = ds.features.speed_measured[test]
        for h in covered:
            interval = dataclasses.replace(constants, known_host_log_factor=math.log(h))
            est = dataclasses.replace(estimator, interval=interval).predict_many(descriptors)
            inside = np.array([x.low_j <= t <= x.high_j for x, t in zip(est, truth, strict=True)])
            bound = np.array([(x.gpu_busy_share or 0.0) >= physics.GPU_BOUND_SHARE for x in est])
            covered[h].append((inside[keep], bound[keep]))
    scores = {}
    for h, per_fold in covered.items():
        parts = [[float(np.mean(inside)) for inside, _ in per_fold if len(inside)]]
        for regime in (True, False):
            parts.append(
                [float(np.mean(inside[b == regime])) for inside, b in per_fold if (b == regime).any()]
            )
        scores[h] = min(float(np.mean(p)) for p in parts if p)
    reaching = [h for h in candidates if scores[h] >= TARGET_COVERAGE - 1e-12]
    return (min(reaching) if reaching else None), scores


def fold_host_terms(
    ds: Dataset, folds: Sequence[Fold], fits: Sequence[Fitted], factor: float
) -> list[np.ndarray]:
    """Per fold: the host term of its held-out runs at factor ``factor``, from the fold's own fit."""
    return [
        host_log_term(fitted.theta, ds.subset(test, fitted.trainable), math.log(factor))
        for (_, _, _, test), fitted in zip(folds, fits, strict=True)
    ]


def without_host(errors: Sequence[FoldErrors], hosts: Sequence[np.ndarray]) -> list[FoldErrors]:
    """Errors with the host term taken out in quadrature: ``sign(e) sqrt(max(e**2 - host**2, 0))``; a run is
    inside ``sqrt(q**2 + host**2)`` exactly when this is inside ``q``."""
    return [
        (np.sign(e) * np.sqrt(np.maximum(e**2 - h**2, 0.0)), keep)
        for (e, keep), h in zip(errors, hosts, strict=True)
    ]


def host_bound_machines(
    folds: Sequence[Fold], errors: Sequence[FoldErrors], gpu_bound: Sequence[np.ndarray]
) -> int:
    """How many machines (GPUs: GAISSA's GPUs each sit in their own host) of the leave-one-GPU-out folds
    hold at least ``MIN_TRAIN_RUNS`` runs on a GPU with measured speed (``errors``' mask) predicted
    host/launch-bound (``gpu_bound`` False: busy share below ``physics.GPU_BOUND_SHARE``, from the fold's
    own fit). The host factor H is about how far an unseen
    machine's host differs from the hosts in the data; only two or more such machines show it."""
    return sum(
        1
        for (kind, _, _, _), (_, keep), bound in zip(folds, errors, gpu_bound, strict=True)
        if kind == "GPU" and int(np.sum(~bound & keep)) >= MIN_TRAIN_RUNS
    )


#: A regime's own (Mondrian) interval cell needs this many group folds, each with at least
#: ``MIN_TRAIN_RUNS`` measured-speed runs predicted in that regime; below it the regime gets the pooled
#: rule's constant. Declared with the candidate (v5.5), not tuned: a group-conformal quantile or a
#: random-effects spread from one group is no estimate of how a new group differs.
MIN_REGIME_GROUPS = 2


def regime_errors(
    errors: Sequence[FoldErrors], gpu_bound: Sequence[np.ndarray], regime: bool
) -> list[FoldErrors] | None:
    """The folds' errors restricted to the runs predicted in ``regime`` (True: GPU-bound; ``gpu_bound``: per
    fold, per run), keeping only folds with at least ``MIN_TRAIN_RUNS`` such runs on a GPU with measured
    speed; None when fewer than ``MIN_REGIME_GROUPS`` folds are left (the cell falls back to the pool)."""
    out = []
    for (e, keep), bound in zip(errors, gpu_bound, strict=True):
        inside = keep & (bound == regime)
        if int(inside.sum()) >= MIN_TRAIN_RUNS:
            out.append((e, inside))
    return out if len(out) >= MIN_REGIME_GROUPS else None


@dataclass(frozen=True)
class _Judged:
    """One group held out once more, at one host factor: its measured runs' absolute errors without the host
    term, their host terms and predicted regimes (True: GPU-bound), and the constants computed from the group
    folds of the rest: pooled, and per regime (None: the regime's cell is below ``MIN_REGIME_GROUPS``)."""

    errors: np.ndarray
    host: np.ndarray
    gpu_bound: np.ndarray
    base: float
    effects: float
    regime_base: dict[bool, float | None]
    regime_effects: dict[bool, float | None]


def _judged_constants(held: Sequence[_Judged], i: int) -> dict[tuple[str, bool | None], float]:
    """Every rule's constant for group ``i`` of ``held`` (computed without it): pooled (key None) and per
    regime (True: GPU-bound), a regime below its cell's minimum taking the pooled constant. ``INFLATED``'s
    factor comes from the other groups only (per regime: their runs in that regime)."""
    item = held[i]
    others = [x for j, x in enumerate(held) if j != i]
    pooled_k = coverage_inflation([x.errors / x.base for x in others])
    out: dict[tuple[str, bool | None], float] = {
        (GROUP_QUANTILE, None): item.base,
        (RANDOM_EFFECTS, None): item.effects,
        (INFLATED, None): pooled_k * item.base,
    }
    for regime in (True, False):
        base, effects = item.regime_base[regime], item.regime_effects[regime]
        if base is None or effects is None:
            for rule in INTERVAL_RULES:
                out[rule, regime] = out[rule, None]
            continue
        ratios = []
        for x in others:
            inside = x.gpu_bound == regime
            if inside.any():
                constant = x.regime_base[regime]
                ratios.append(x.errors[inside] / (x.base if constant is None else constant))
        k = coverage_inflation(ratios) if ratios else pooled_k
        out[GROUP_QUANTILE, regime] = base
        out[RANDOM_EFFECTS, regime] = effects
        out[INFLATED, regime] = k * base
    return out


@dataclass(frozen=True)
class RegimeRule:
    """A regime-conditional (Mondrian) interval: GPU-bound runs (predicted busy share >=
    ``physics.GPU_BOUND_SHARE``) and host/launch-bound runs each get their own ``q_model`` (the rule applied
    to that regime's held-out runs) and their own host factor H."""

    rule: str
    gpu_bound_log_q90: float
    host_bound_log_q90: float
    gpu_bound_host_factor: float
    host_bound_host_factor: float
    #: whether each regime had its own cell on all folds (False: the pooled rule's constant,
    #: ``MIN_REGIME_GROUPS``)
    gpu_bound_own: bool = True
    host_bound_own: bool = True

    @property
    def label(self) -> str:
        return f"{self.rule} by regime, H={self.gpu_bound_host_factor:g}/{self.host_bound_host_factor:g}"


def _regime_label(rule: str, gpu_factor: float, host_factor: float) -> str:
    return f"{rule} by regime, H={gpu_factor:g}/{host_factor:g}"


def choose_interval_rule(
    ds: Dataset,
    folds: Sequence[Fold],
    errors: Sequence[FoldErrors],
    weight: float,
    overlap: float,
    power_weight: float | None = None,
    host_factors: Sequence[float] = HOST_FACTORS,
) -> IntervalChoice:
    """The interval rule and the host factor, chosen by how well each covers groups it has not seen (nested).

    ``errors`` are the held-out errors of ``folds`` (one group each). For a host factor ``H``
    (``host_factors``; 1 is no host term) the errors are first taken out of the host term
    (``without_host``), then each rule turns them into a constant: ``GROUP_QUANTILE`` (``interval_q90``),
    ``RANDOM_EFFECTS`` (``random_effects_q90``) and ``INFLATED``: ``interval_q90`` x ``k``, with ``k``
    (``coverage_inflation``) the factor that made the rule cover ``TARGET_COVERAGE`` of groups it had not
    seen. Pooled candidates are the (rule, H) pairs; regime-conditional (Mondrian) candidates, (rule,
    H_gpu, H_host), give GPU-bound runs (predicted busy share >= ``physics.GPU_BOUND_SHARE``, from the
    fold's own fit) the rule's constant on the GPU-bound runs only at H_gpu, and the other runs theirs at
    H_host (``regime_errors``: a regime with fewer than ``MIN_REGIME_GROUPS`` folds of ``MIN_TRAIN_RUNS``
    runs takes the pooled constant). To judge the candidates, each group ``g`` of ``folds`` is held out
    once more: each is computed from the group folds of the rest (same prior weight and overlap; for
    ``INFLATED``, ``k`` from the other groups only) and scored on ``g``'s runs on GPUs with measured speed.
    A candidate's score is its coverage averaged over the ``g`` (each weighing 1, as a new group would)
    and, the same way, over the GPU-bound runs and over the other runs of the ``g``: the lowest of the
    three; its width the median over the ``g`` of the median half-width ``sqrt(q**2 + host**2)`` of
    ``g``'s runs. The pooled choice is v5.4's: the narrowest pooled pair whose score reaches
    ``TARGET_COVERAGE``; if none does, the one that scores highest (ties: the first rule, the smallest H).
    The best regime candidate is chosen the same way among the regime candidates (ties: the narrower mean
    over the ``g`` of the mean half-width). It replaces the pooled choice only if it reaches the target and
    is narrower (median, then mean), or if the pooled choice does not reach it and the regime candidate
    scores higher. H is only chosen when the folds hold host/launch-bound runs on two or more machines
    (``host_bound_machines``): from one machine's runs no held-out group shows how far another machine's
    host differs, so every H would look alike and the narrowest would win; with fewer than two the widest
    candidate is used for both regimes (an unseen machine is a new user's situation) and only the rule is
    chosen. With fewer than two groups to judge on: ``GROUP_QUANTILE`` at the smallest H left, pooled.
    Nothing here sees data outside ``folds``: in ``benchmarks/pre_accuracy.py`` the outer fold's group is
    not among them.
    """
    if not host_factors or any(not h >= 1.0 for h in host_factors):
        raise EstimationError(f"host_factors must be factors >= 1, got {host_factors!r}")
    factors = sorted(set(host_factors))
    fits = [fitted for _, fitted in fold_fits(ds, folds, weight, overlap, power_weight)]
    gpu_bound = [
        fitted.predict_log(ds, test)[2] >= physics.GPU_BOUND_SHARE
        for (_, _, _, test), fitted in zip(folds, fits, strict=True)
    ]
    host_machines = host_bound_machines(folds, errors, gpu_bound)
    if host_machines < 2:
        factors = factors[-1:]
    outer_hosts = {h: fold_host_terms(ds, folds, fits, h) for h in factors}
    outer = {h: without_host(errors, outer_hosts[h]) for h in factors}
    held: dict[float, list[_Judged]] = {h: [] for h in factors}
    for (_, _, train, _), (e, keep), g_hosts, bound in zip(
        folds, errors, zip(*(outer_hosts[h] for h in factors), strict=True), gpu_bound, strict=True
    ):
        inner = group_folds(ds, train)
        if not keep.any() or not inner:
            continue
        inner_fits = fold_fits(ds, inner, weight, overlap, power_weight)
        inner_errors = [x for x, _ in inner_fits]
        inner_bound = [
            fitted.predict_log(ds, test)[2] >= physics.GPU_BOUND_SHARE
            for (_, _, _, test), (_, fitted) in zip(inner, inner_fits, strict=True)
        ]
        judged = []
        for h, host in zip(factors, g_hosts, strict=True):
            hosts = fold_host_terms(ds, inner, [f for _, f in inner_fits], h)
            normalised = without_host(inner_errors, hosts)
            base, effects = interval_q90(normalised), random_effects_q90(normalised)
            if math.isnan(base) or base <= 0 or math.isnan(effects):
                break
            regime_base: dict[bool, float | None] = {}
            regime_effects: dict[bool, float | None] = {}
            for bound_cell in (True, False):
                cell = regime_errors(normalised, inner_bound, bound_cell)
                cell_q = interval_q90(cell) if cell is not None else math.nan
                cell_r = random_effects_q90(cell) if cell is not None else math.nan
                usable = not (math.isnan(cell_q) or cell_q <= 0 or math.isnan(cell_r))
                regime_base[bound_cell] = cell_q if usable else None
                regime_effects[bound_cell] = cell_r if usable else None
            ((a, _),) = without_host([(e, keep)], [host])
            judged.append(
                (
                    h,
                    _Judged(
                        np.abs(a[keep]), host[keep], bound[keep], base, effects, regime_base, regime_effects
                    ),
                )
            )
        else:
            for h, item in judged:
                held[h].append(item)
    n_held = len(held[factors[0]])
    inflations = {
        h: coverage_inflation([x.errors / x.base for x in held[h]]) if held[h] else 1.0 for h in factors
    }
    values_by = {
        h: {
            GROUP_QUANTILE: interval_q90(outer[h]),
            RANDOM_EFFECTS: random_effects_q90(outer[h]),
            INFLATED: inflations[h] * interval_q90(outer[h]),
        }
        for h in factors
    }
    coverage: dict[tuple[str, float], float] = {}
    median_q: dict[tuple[str, float], float] = {}
    median_width: dict[tuple[str, float], float] = {}
    pairs = [(rule, h) for h in factors for rule in INTERVAL_RULES]
    triples = [(rule, hg, hh) for hg in factors for hh in factors for rule in INTERVAL_RULES]
    # per candidate (rule, H for GPU-bound runs, H for the others, by regime): score, median and mean width
    scored: dict[tuple[str, float, float, bool], tuple[float, float, float]] = {}
    regime: RegimeRule | None = None
    by_regime = False
    if n_held >= 2:
        consts = {h: [_judged_constants(held[h], i) for i in range(n_held)] for h in factors}
        for h in factors:
            for rule in INTERVAL_RULES:
                median_q[rule, h] = float(np.median([c[rule, None] for c in consts[h]]))
        for rule, hg, hh in triples:
            for split in (False, True):
                if not split and hg != hh:
                    continue
                covered: list[float] = []
                widths: list[float] = []
                means: list[float] = []
                by: dict[bool, list[float]] = {True: [], False: []}
                for i in range(n_held):
                    inside = held[hg][i].gpu_bound
                    qs = np.where(
                        inside,
                        consts[hg][i][rule, True if split else None],
                        consts[hh][i][rule, False if split else None],
                    )
                    a = np.where(inside, held[hg][i].errors, held[hh][i].errors)
                    host = np.where(inside, held[hg][i].host, held[hh][i].host)
                    ok = a <= qs
                    covered.append(float(np.mean(ok)))
                    for r in (True, False):
                        if (inside == r).any():
                            by[r].append(float(np.mean(ok[inside == r])))
                    half = np.hypot(qs, host)
                    widths.append(float(np.median(half)))
                    means.append(float(np.mean(half)))
                score = min(float(np.mean(covered)), *(float(np.mean(v)) for v in by.values() if v))
                scored[rule, hg, hh, split] = (score, float(np.median(widths)), float(np.mean(means)))
        for rule, h in pairs:
            coverage[rule, h], median_width[rule, h], _ = scored[rule, h, h, False]
        reaching = [pair for pair in pairs if coverage[pair] >= TARGET_COVERAGE - 1e-12]
        if reaching:
            rule, factor = min(reaching, key=lambda pair: (median_width[pair], pairs.index(pair)))
        else:
            rule, factor = max(pairs, key=lambda pair: (coverage[pair], -pairs.index(pair)))
        pooled = scored[rule, factor, factor, False]
        splits = [(r, hg, hh, True) for r, hg, hh in triples]
        reach = [key for key in splits if scored[key][0] >= TARGET_COVERAGE - 1e-12]
        if reach:
            best = min(reach, key=lambda key: (scored[key][1], scored[key][2], splits.index(key)))
        else:
            best = max(splits, key=lambda key: (scored[key][0], -splits.index(key)))
        regime = _regime_rule(best[0], best[1], best[2], outer, gpu_bound, held, values_by)
        top = scored[best]
        if pooled[0] >= TARGET_COVERAGE - 1e-12:
            by_regime = top[0] >= TARGET_COVERAGE - 1e-12 and (top[1], top[2]) < (pooled[1], pooled[2])
        else:
            by_regime = top[0] > pooled[0]
    else:
        rule, factor = GROUP_QUANTILE, factors[0]
    return IntervalChoice(
        rule,
        values_by[factor][rule],
        values_by[factor],
        {r: coverage[r, factor] for r in INTERVAL_RULES if (r, factor) in coverage},
        {r: median_q[r, factor] for r in INTERVAL_RULES if (r, factor) in median_q},
        n_held,
        inflations[factor],
        factor,
        {f"{r}, H={h:g}": (coverage[r, h], median_width[r, h]) for r, h in pairs if (r, h) in coverage},
        host_machines,
        regime,
        by_regime,
        {_regime_label(r, hg, hh): scored[r, hg, hh, True][:2] for r, hg, hh, split in scored if split},
    )


def _regime_rule(
    rule: str,
    gpu_factor: float,
    host_factor: float,
    outer: dict[float, list[FoldErrors]],
    gpu_bound: Sequence[np.ndarray],
    held: dict[float, list[_Judged]],
    values_by: dict[float, dict[str, float]],
) -> RegimeRule:
    """The constants of the regime candidate (``rule``, H_gpu, H_host) on all of the folds' errors
    (``outer``, per H); ``INFLATED``'s factor from the regime's runs of the groups held out once more."""
    constants: dict[bool, tuple[float, bool]] = {}
    for regime, h in ((True, gpu_factor), (False, host_factor)):
        cell = regime_errors(outer[h], gpu_bound, regime)
        q = math.nan
        if cell is not None:
            if rule == RANDOM_EFFECTS:
                q = random_effects_q90(cell)
            else:
                q = interval_q90(cell)
                if rule == INFLATED:
                    ratios = []
                    for x in held[h]:
                        inside = x.gpu_bound == regime
                        if inside.any():
                            constant = x.regime_base[regime]
                            ratios.append(x.errors[inside] / (x.base if constant is None else constant))
                    q *= coverage_inflation(ratios) if ratios else 1.0
        own = not (math.isnan(q) or q <= 0)
        constants[regime] = (q, True) if own else (values_by[h][rule], False)
    return RegimeRule(
        rule,
        constants[True][0],
        constants[False][0],
        gpu_factor,
        host_factor,
        constants[True][1],
        constants[False][1],
    )


ScoreKey = tuple[float, float]


def score_grid(
    ds: Dataset, folds: Sequence[Fold], grid: Sequence[float], overlaps: Sequence[float]
) -> tuple[dict[ScoreKey, float], dict[ScoreKey, list[FoldErrors]]]:
    """Per (prior weight, overlap): the mean over ``folds`` of the held-out mean absolute log energy error
    (each fold weighing 1), and the folds' errors."""
    scores: dict[ScoreKey, float] = {}
    errors: dict[ScoreKey, list[FoldErrors]] = {}
    for weight in grid:
        for overlap in overlaps:
            per_fold = fold_errors(ds, folds, weight, overlap)
            errors[weight, overlap] = per_fold
            scores[weight, overlap] = float(np.mean([np.abs(e).mean() for e, _ in per_fold]))
    return scores, errors


def pick(scores: dict[ScoreKey, float], errors: dict[ScoreKey, list[FoldErrors]], rule: str) -> ScoreKey:
    """The (prior weight, overlap) that ``rule`` picks: ``BEST_SCORE``, the lowest score; ``ONE_SE``,
    the strongest prior whose score is within one standard error (over folds) of the lowest (the usual
    guard against a noisy cross-validation minimum, Hastie et al., ESL 7.10), the lowest score among its
    overlaps."""
    best = min(scores, key=lambda key: scores[key])
    if rule == BEST_SCORE:
        return best
    if rule != ONE_SE:
        raise EstimationError(f"rule must be one of {SELECTION_RULES}, got {rule!r}")
    per_fold = [float(np.abs(e).mean()) for e, _ in errors[best]]
    se = float(np.std(per_fold, ddof=1) / math.sqrt(len(per_fold))) if len(per_fold) > 1 else 0.0
    within = [key for key in scores if scores[key] <= scores[best] + se]
    strongest = max(key[0] for key in within)
    return min((key for key in within if key[0] == strongest), key=lambda key: scores[key])


def choose_selection_rule(
    ds: Dataset, folds: Sequence[Fold], grid: Sequence[float], overlaps: Sequence[float]
) -> tuple[str, dict[str, float]]:
    """The rule of ``pick``, chosen by nested selection: each group fold's training part is scored on its own
    group folds, each rule picks from those scores, the picked model is fitted on the training part and
    judged on the fold's held-out group (mean absolute log energy error, each fold weighing 1). The rule
    with the lower mean wins (``BEST_SCORE`` on a tie or with no fold to judge on). Nothing outside
    ``folds`` is seen."""
    judged: dict[str, list[float]] = {rule: [] for rule in SELECTION_RULES}
    for _, _, train, test in folds:
        inner = group_folds(ds, train)
        if len(inner) < 2:
            continue
        scores, errors = score_grid(ds, inner, grid, overlaps)
        fitted: dict[ScoreKey, float] = {}
        for rule in SELECTION_RULES:
            key = pick(scores, errors, rule)
            if key not in fitted:
                t, p, _ = fit_params(ds, train, key[0], key[1]).predict_log(ds, test)
                fitted[key] = float(np.abs(t + p - ds.log_e[test]).mean())
            judged[rule].append(fitted[key])
    if not judged[BEST_SCORE]:
        return BEST_SCORE, {}
    means = {rule: float(np.mean(values)) for rule, values in judged.items()}
    return min(SELECTION_RULES, key=lambda rule: (means[rule], SELECTION_RULES.index(rule))), means


def select(
    ds: Dataset,
    idx: np.ndarray,
    grid: Sequence[float] = PRIOR_WEIGHTS,
    overlaps: Sequence[float] = OVERLAP_EXPONENTS,
    power: bool | None = None,
    machine_effect: bool = True,
) -> Selection:
    """Prior weight, overlap and the interval constant from the group folds of ``idx`` only (module doc);
    with ``power`` (default ``SEPARATE_POWER_WEIGHT``) the power curve's own prior weight too
    (``select_power_weight``), before the interval constant; with ``machine_effect`` the ridge of the
    per-machine host effect (``choose_machine_ridge``) on the same folds, after it."""
    folds = group_folds(ds, idx)
    if not folds:
        raise EstimationError("select needs at least two GPUs or two architectures")
    scores, errors = score_grid(ds, folds, grid, overlaps)
    rule, rule_scores = choose_selection_rule(ds, folds, grid, overlaps)
    best = pick(scores, errors, rule)
    if math.isnan(interval_q90(errors[best])):
        raise EstimationError("select needs runs on a GPU with measured speed in its folds")
    power_weight: float | None = None
    power_scores: dict[float, float] = {}
    if SEPARATE_POWER_WEIGHT if power is None else power:
        power_weight, power_scores = select_power_weight(ds, idx, best[0], best[1])
        if power_weight != best[0]:
            errors[best] = fold_errors(ds, folds, best[0], best[1], power_weight)
    choice = choose_interval_rule(ds, folds, errors[best], best[0], best[1], power_weight)
    ridge, ridge_scores = math.inf, {}
    known: float | None = None
    known_scores: dict[float, float] = {}
    if machine_effect:
        fits = [fitted for _, fitted in fold_fits(ds, folds, best[0], best[1], power_weight)]
        ridge, ridge_scores = choose_machine_ridge(ds, folds, fits)
        known, known_scores = choose_known_host_factor(ds, folds, fits, choice, ridge)
    return Selection(
        best[0],
        best[1],
        choice.log_q90,
        scores,
        choice,
        power_weight,
        power_scores,
        rule,
        rule_scores,
        ridge,
        ridge_scores,
        known,
        known_scores,
    )


def _log_factor(factor: float) -> float | None:
    return math.log(factor) if factor > 1.0 else None


def pooled_constants(
    choice: IntervalChoice, repeat_sigma: float, rule: str | None = None
) -> IntervalConstants:
    """The pooled interval: ``rule``'s constant (default the pooled choice's) at the pooled choice's H."""
    return IntervalConstants(
        model_log_q90=choice.values[choice.rule if rule is None else rule],
        repeat_log_sigma=repeat_sigma,
        host_log_factor=_log_factor(choice.host_factor),
    )


def regime_constants(choice: IntervalChoice, repeat_sigma: float) -> IntervalConstants:
    """The best regime-conditional candidate's interval (``choice.regime``); ``model_log_q90`` keeps the
    pooled choice's constant (unused while both regime constants are set)."""
    regime = choice.regime
    if regime is None:
        raise EstimationError("the choice holds no regime candidate (too few groups to judge on)")
    same = regime.gpu_bound_host_factor == regime.host_bound_host_factor
    return IntervalConstants(
        model_log_q90=choice.log_q90,
        repeat_log_sigma=repeat_sigma,
        gpu_bound_log_q90=regime.gpu_bound_log_q90,
        host_bound_log_q90=regime.host_bound_log_q90,
        host_log_factor=_log_factor(regime.host_bound_host_factor),
        gpu_bound_host_log_factor=None if same else math.log(regime.gpu_bound_host_factor),
    )


def chosen_constants(choice: IntervalChoice, repeat_sigma: float) -> IntervalConstants:
    """The interval constants the selection chose: the regime candidate's when ``choice.by_regime``, else the
    pooled choice's."""
    if choice.by_regime:
        return regime_constants(choice, repeat_sigma)
    return pooled_constants(choice, repeat_sigma)


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


def build_estimator(ds: Dataset, idx: np.ndarray, selection: Selection) -> tuple[PreEstimator, Fitted]:
    """The estimator fitted on ``idx`` with the selected constants (the GAISSA nuisance kept aside)."""
    if ds.power_form != CURVE:
        raise EstimationError(f"only the {CURVE!r} power form ships, got {ds.power_form!r}")
    fitted = fit_params(ds, idx, selection.prior_weight, selection.overlap, selection.power_weight)
    interval = dataclasses.replace(
        chosen_constants(selection.interval, repeat_log_sigma(ds)),
        known_host_log_factor=(
            None if selection.known_host_factor is None else math.log(selection.known_host_factor)
        ),
    )
    nuisance = bool(ds.unknown_trainable[idx].any())
    estimator = PreEstimator(
        fitted.theta,
        fitted.phi,
        interval,
        fitted_runs=len(idx),
        selected={
            "prior_weight": selection.prior_weight,
            "overlap_exponent": selection.overlap,
            **({"gaissa_trainable_fraction": fitted.trainable} if nuisance else {}),
            **({} if selection.power_weight is None else {"power_prior_weight": selection.power_weight}),
            **(
                {} if math.isinf(selection.machine_ridge) else {"machine_host_ridge": selection.machine_ridge}
            ),
        },
    )
    return estimator, fitted


def regime_note(choice: IntervalChoice) -> str:
    """The best regime-conditional candidate, its constants and nested score, for printouts."""
    regime = choice.regime
    if regime is None:
        return "no regime candidate (too few groups)"
    score, width = choice.regime_scores[regime.label]
    own = {True: regime.gpu_bound_own, False: regime.host_bound_own}
    cells = "/".join("own" if own[r] else "pooled" for r in (True, False))
    return (
        f"best regime candidate {regime.label!r}{' (chosen)' if choice.by_regime else ''}: q90 "
        f"{regime.gpu_bound_log_q90:.3f}/{regime.host_bound_log_q90:.3f} ({cells}), nested coverage "
        f"{100 * score:.0f} %, median half-width {width:.3f}"
    )


def trained_share_note(ds: Dataset, fitted: Fitted) -> str:
    """How the runs' trained shares were set, for printouts."""
    unknown = int(ds.unknown_trainable.sum())
    if not unknown:
        return "trained shares from the runs' descriptors"
    return f"trained share {fitted.trainable:.2f} fitted for the {unknown} runs without one"


def with_trainable(descriptor: RunDescriptor, trainable: float) -> RunDescriptor:
    """``descriptor`` with an unknown trained share set to ``trainable`` (the GAISSA nuisance)."""
    if descriptor.model.trainable_fraction is not None:
        return descriptor
    return dataclasses.replace(
        descriptor, model=dataclasses.replace(descriptor.model, trainable_fraction=trainable)
    )


def fit_shipped(
    runs: Sequence[LabelledRun], power_runs: Sequence[PowerRun] = ()
) -> tuple[PreEstimator, Selection, Fitted]:
    """Selection and fit on all runs: the shipped model. With ``power_runs`` (Perseus, MLPerf), the
    data-centre class shift is selected and fitted on their data-centre rows (``class_shift_for``), the time
    model and the consumer curve held as fitted on ``runs``; without, it is 0."""
    ds = Dataset.from_runs(runs)
    idx = np.arange(len(ds.runs))
    selection = select(ds, idx)
    estimator, fitted = build_estimator(ds, idx, selection)
    if data_centre_rows(power_runs):
        shift = class_shift_for(power_runs, fitted, SHIPPED_CLASS_ROWS)
        fitted = dataclasses.replace(fitted, data_centre_shift=shift.shift)
        estimator = dataclasses.replace(
            estimator,
            data_centre_shift=shift.shift,
            selected={**estimator.selected, "data_centre_prior_weight": shift.weight},
        )
    return estimator, selection, fitted


def main(argv: Sequence[str] | None = None) -> int:
    from tools.gaissa import default_gaissa_dir, load_gaissa_runs
    from tools.mlperf_power import default_mlperf_dir, load_mlperf_power
    from tools.perseus import default_perseus_dir, load_perseus_power

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_gaissa_dir(REPO), help="GAISSA folder")
    parser.add_argument(
        "--perseus", type=Path, default=default_perseus_dir(REPO), help="Perseus folder (data-centre power)"
    )
    parser.add_argument(
        "--mlperf", type=Path, default=default_mlperf_dir(REPO), help="MLPerf folder (H100 server power)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output JSON (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        runs = load_gaissa_runs(args.data)
        power_runs = [*load_perseus_power(args.perseus), *load_mlperf_power(args.mlperf)]
        estimator, selection, fitted = fit_shipped(runs, power_runs)
        ds = Dataset.from_runs(runs)
        centre = data_centre_rows(power_runs)
    except EstimationError as exc:
        print(f"pre_fit: error: {exc}", file=sys.stderr)
        return 2
    estimator.save(args.out)
    print(
        f"fitted on {len(runs)} runs: prior weight {selection.prior_weight:g}, overlap "
        f"{selection.overlap:g} (rule {selection.rule!r}; best fold score "
        f"{min(selection.scores.values()):.4f}), interval rule "
        f"{selection.interval.label!r} (pooled choice {selection.interval.rule!r} with host factor "
        f"H={selection.interval.host_factor:g}: nested coverage "
        + ", ".join(f"{r} {100 * c:.0f} %" for r, c in selection.interval.inner_coverage.items())
        + f"; {regime_note(selection.interval)}), model log q90 {selection.model_log_q90:.3f}, "
        f"known-machine host factor {selection.known_host_factor}, "
        f"{trained_share_note(ds, fitted)}; "
        f"data-centre shift {estimator.data_centre_shift:+.3f} (prior weight "
        f"{estimator.selected.get('data_centre_prior_weight', math.nan):g}, "
        f"{len(data_centre_rows(power_runs))} data-centre power rows, row rule {SHIPPED_CLASS_ROWS!r}"
        + (
            ", left out as predicted host-bound: "
            + ", ".join(f"{r.gpu_name} {r.model_name}" for r in gpu_bound_rows(centre, fitted.theta)[1])
            if SHIPPED_CLASS_ROWS == GPU_BOUND_ROWS
            else ""
        )
        + f"); wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
