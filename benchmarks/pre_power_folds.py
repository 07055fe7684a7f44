"""The leave-one-GPU-out folds of ``benchmarks/pre_power.py``: every power variant selected and fitted on the
training part of each fold and the held-out GPU's power predicted (``evaluate``; the variants are described
in that module's doc).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_energy.pre import physics
from lightning_energy.pre.descriptors import LabelledRun
from tools.perseus import PowerRun
from tools.pre_class_shift import ALL_ROWS, GPU_BOUND_ROWS, class_shift_for
from tools.pre_dataset import CURVE, ROOFLINE, Dataset, PowerRows
from tools.pre_params import Fitted, fit_params
from tools.pre_select import select


@dataclass(frozen=True)
class HeldOut:
    gpu: str
    source: str
    rows: int
    measured_w: float
    #: per variant: predicted median W, power MAPE %, energy MAPE % (GAISSA only), selected power weight
    predicted_w: dict[str, float]
    power_mape: dict[str, float]
    energy_mape: dict[str, float]
    power_weight: dict[str, float]
    #: max / min over architectures of the median power on the held-out GPU: measured, then per variant
    measured_spread: float
    spread: dict[str, float]
    #: per variant and predicted regime (compute, bandwidth, host: the v5 time model's): runs, power MAPE %
    regimes: dict[str, dict[str, tuple[int, float]]]
    #: the board-class variant's data-centre shift in this fold (``tools.pre_class_shift.class_shift_for``)
    class_shift: float = 0.0
    #: whether the held-out GPU is a data-centre board (``GpuDescriptor.power_class``)
    data_centre: bool = False
    #: Perseus only, per row: model, power limit W, measured W, v5's, the board class's and the GPU-bound
    #: board class's predicted W
    per_row: tuple[tuple[str, float, float, float, float, float], ...] = ()
    #: the GPU-bound board class's shift in this fold and the data-centre rows it left out
    gpu_bound_shift: float = 0.0
    dropped: tuple[tuple[str, str], ...] = ()


V5, OWN, PERSEUS = "v5", "own power weight", "own power weight + Perseus"
MLPERF = "own power weight + Perseus + MLPerf"
ROOF = "roofline shares, own power weight + Perseus + MLPerf"
CLASS = "board class (v5 + busy-weighted data-centre shift from Perseus + MLPerf)"
CLASS_GB = "board class, GPU-bound rows only (v5.6 candidate)"
#: The variants judged by the rule of v5.1-v5.3 (``decide_by_power``) and all variants printed.
POWER_VARIANTS = (V5, OWN, PERSEUS, MLPERF, ROOF)
VARIANTS = (*POWER_VARIANTS, CLASS, CLASS_GB)


def mape(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred / truth - 1.0)) * 100.0)


def _spread(labels: np.ndarray, watts: np.ndarray) -> float:
    medians = [float(np.median(watts[labels == a])) for a in sorted(set(labels.tolist()))]
    return max(medians) / min(medians) if medians else float("nan")


def _by_regime(regimes: Sequence[str], pred: np.ndarray, truth: np.ndarray) -> dict[str, tuple[int, float]]:
    labels = np.array(regimes)
    return {
        regime: (int((labels == regime).sum()), mape(pred[labels == regime], truth[labels == regime]))
        for regime in sorted(set(regimes))
    }


def fit_variant(
    gaissa: Sequence[LabelledRun],
    perseus: Sequence[PowerRun],
    train: np.ndarray,
    variant: str,
    mlperf: Sequence[PowerRun] = (),
    v5: tuple[Dataset, Fitted, float] | None = None,
) -> tuple[Dataset, Fitted, float, tuple[tuple[str, str], ...]]:
    """Selection and fit of ``variant`` on the GAISSA runs ``train`` and the power-only rows it uses.
    ``CLASS`` is v5's fit (``v5``, else refitted) with the data-centre shift selected and fitted on the
    data-centre rows of ``perseus`` and ``mlperf`` (``tools.pre_class_shift.class_shift_for``); its weight is
    the shift's prior weight. ``CLASS_GB`` the same on the rows v5's time model predicts GPU-bound.
    Returns the dataset, the fit, the selected weight and, for the board classes, the data-centre rows the
    shift left out."""
    if variant in (CLASS, CLASS_GB):
        ds, fitted, _ = v5 if v5 is not None else fit_variant(gaissa, perseus, train, V5)[:3]
        rule = GPU_BOUND_ROWS if variant == CLASS_GB else ALL_ROWS
        shift = class_shift_for([*perseus, *mlperf], fitted, rule)
        return ds, dataclasses.replace(fitted, data_centre_shift=shift.shift), shift.weight, shift.dropped
    rows = {PERSEUS: list(perseus), MLPERF: [*perseus, *mlperf], ROOF: [*perseus, *mlperf]}.get(variant, [])
    ds = Dataset.from_runs(gaissa, rows, ROOFLINE if variant == ROOF else CURVE)
    chosen = select(ds, train, power=variant != V5, machine_effect=False)
    fitted = fit_params(ds, train, chosen.prior_weight, chosen.overlap, chosen.power_weight)
    weight = chosen.prior_weight if chosen.power_weight is None else chosen.power_weight
    return ds, fitted, weight, ()


def evaluate(
    gaissa: Sequence[LabelledRun], perseus: Sequence[PowerRun], mlperf: Sequence[PowerRun] = ()
) -> list[HeldOut]:
    """Leave-one-GPU-out over GAISSA's and Perseus's GPUs, every variant (``benchmarks/pre_power.py``'s
    module docstring). The MLPerf rows (H100 SXM, a GPU neither data set holds) are training rows of the
    last variant in every fold."""
    plain = Dataset.from_runs(gaissa)
    every = np.arange(len(plain.runs))
    out = []
    for gpu in sorted(set(plain.gpu.tolist())):
        test, train = every[plain.gpu == gpu], every[plain.gpu != gpu]
        pred_w, power, energy, weights, regimes, spread = {}, {}, {}, {}, {}, {}
        truth = np.exp(plain.log_p[test])
        architectures = plain.architecture[test]
        labels: tuple[str, ...] = ()
        v5: tuple[Dataset, Fitted, float] | None = None
        shifts: dict[str, float] = {}
        dropped: tuple[tuple[str, str], ...] = ()
        for variant in VARIANTS:
            ds, fitted, weights[variant], left = fit_variant(gaissa, perseus, train, variant, mlperf, v5)
            if variant == V5:
                v5 = (ds, fitted, weights[variant])
            shifts[variant] = fitted.data_centre_shift
            dropped = left or dropped
            t, p, _ = fitted.predict_log(ds, test)
            if variant == V5:
                labels = physics.time_parts(fitted.theta, ds.subset(test, fitted.trainable)).regimes()
            pred_w[variant] = float(np.median(np.exp(p)))
            power[variant] = mape(np.exp(p), truth)
            energy[variant] = mape(np.exp(t + p), np.exp(ds.log_e[test]))
            regimes[variant] = _by_regime(labels, np.exp(p), truth)
            spread[variant] = _spread(architectures, np.exp(p))
        measured = float(np.median(truth))
        out.append(
            HeldOut(
                gpu,
                "GAISSA",
                len(test),
                measured,
                pred_w,
                power,
                energy,
                weights,
                _spread(architectures, truth),
                spread,
                regimes,
                shifts[CLASS],
                bool(np.any(ds.features.data_centre[test] == 1.0)),
                gpu_bound_shift=shifts[CLASS_GB],
                dropped=dropped,
            )
        )
    for gpu in sorted({r.gpu_name for r in perseus}):
        held = [r for r in perseus if r.gpu_name == gpu]
        rows = PowerRows.from_runs(held)
        truth = np.exp(rows.log_p)
        others = [r for r in perseus if r.gpu_name != gpu]
        pred_w, power, weights, regimes, spread = {}, {}, {}, {}, {}
        models = np.array([r.model_name for r in held])
        v5 = None
        shifts = {}
        dropped = ()
        by_variant: dict[str, np.ndarray] = {}
        for variant in VARIANTS:
            ds, fitted, weights[variant], left = fit_variant(gaissa, others, every, variant, mlperf, v5)
            if variant == V5:
                v5 = (ds, fitted, weights[variant])
            shifts[variant] = fitted.data_centre_shift
            dropped = left or dropped
            form = ROOFLINE if variant == ROOF else CURVE
            predicted = rows.predict_w(fitted.phi, fitted.theta, form, fitted.data_centre_shift)
            by_variant[variant] = predicted
            if variant == V5:
                labels = physics.time_parts(fitted.theta, rows.features).regimes()
            pred_w[variant] = float(np.median(predicted))
            power[variant] = mape(predicted, truth)
            regimes[variant] = _by_regime(labels, predicted, truth)
            spread[variant] = _spread(models, predicted)
        out.append(
            HeldOut(
                gpu,
                "Perseus",
                len(held),
                float(np.median(truth)),
                pred_w,
                power,
                {},
                weights,
                _spread(models, truth),
                spread,
                regimes,
                shifts[CLASS],
                bool(np.all(rows.features.data_centre == 1.0)),
                tuple(
                    (r.model_name, r.power_limit_w, r.power_w, float(a), float(b), float(c))
                    for r, a, b, c in zip(
                        held, by_variant[V5], by_variant[CLASS], by_variant[CLASS_GB], strict=True
                    )
                ),
                shifts[CLASS_GB],
                dropped,
            )
        )
    return out
