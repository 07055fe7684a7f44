"""The least-squares fit of the PRE model's parameters (``fit_params``: time, then the consumer power curve,
with weak Gaussian priors), the power curve's own prior weight (``select_power_weight``) and the group folds
the selection scores them on (``group_folds``, ``fold_errors``).

Research/fitting code (not part of the runtime package); the module doc of ``tools/pre_fit.py`` says what is
fitted and how it is selected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.errors import EstimationError
from lightning_energy.pre import physics
from tools.pre_dataset import CURVE, MIN_TRAIN_RUNS, Dataset, form_power_w

#: The grids ``tools/pre_select.select`` chooses the prior weight and the overlap exponent from.
PRIOR_WEIGHTS = (0.01, 0.1, 1.0, 10.0, 100.0)
OVERLAP_EXPONENTS = (1.0, 2.0, 4.0)


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


#: ``ROOFLINE`` priors: idle ~27 % of the limit (logit -1); bandwidth-bound kernels draw ~62 % of what
#: compute-bound ones do (logit 0.5), launch-bound steps ~27 % (logit -1); exponent 1 (log 0).
ROOFLINE_PRIOR = np.array([-1.0, 0.5, -1.0, 0.0])
ROOFLINE_PRIOR_SD = np.array([1.5, 1.5, 1.5, 1.0])


def power_prior(form: str) -> tuple[np.ndarray, np.ndarray]:
    """Prior centres and sds of ``form``'s parameters."""
    return (POWER_PRIOR, POWER_PRIOR_SD) if form == CURVE else (ROOFLINE_PRIOR, ROOFLINE_PRIOR_SD)


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


#: A fold's held-out runs: signed log errors (predicted - measured) and which are on a GPU with measured speed
FoldErrors = tuple[np.ndarray, np.ndarray]


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
