"""PRE power, leave-one-GPU-out (nested): the v5 fit, the power curve with its own prior weight, and with
Perseus's data-centre rows in the power fit.

Five GPUs with measured board power: GAISSA's three (nvidia-smi, 857 runs) and Perseus's two (NVML, A100 80GB
PCIe and A40 at several power limits, ``tools/perseus.py``). Each is held out in turn: the prior weight,
overlap (and, from the second variant on, the power curve's own prior weight, by leave-one-GPU-out power
error over the training GPUs: ``tools/pre_fit.select_power_weight``) and the interval rule are selected on
the training part, the model is fitted on it, and the held-out GPU's power is predicted. A held-out Perseus
GPU is predicted by a model selected and fitted on all GAISSA runs (and, in the third variant, the other
Perseus GPU's rows); its own rows are never seen. Variants:

* ``v5``: one prior weight for time and power, GAISSA only (what shipped before);
* ``own power weight``: the power curve's prior weight selected on its own, GAISSA only;
* ``own power weight + Perseus``: the same with the Perseus rows of the training GPUs in the power fit.

Decision rule (fixed before the second and third variants' figures were first printed; the first print
compared v5 with Perseus rows under v5's shared weight, where the prior of weight 100 left the power curve
unchanged): the variant with the lowest mean power MAPE over the five held-out GPUs ships, provided its
pooled held-out-GPU energy MAPE on GAISSA is not above v5's; otherwise v5 stays.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/pre_power.py`` (about a minute); ``pre_accuracy.py`` prints
it too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.pre import physics  # noqa: E402
from lightning_energy.pre.descriptors import LabelledRun  # noqa: E402
from tools.gaissa import default_gaissa_dir, load_gaissa_runs  # noqa: E402
from tools.perseus import PowerRun, default_perseus_dir, load_perseus_power  # noqa: E402
from tools.pre_fit import Dataset, Fitted, fit_params, select  # noqa: E402


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


V5, OWN, PERSEUS = "v5", "own power weight", "own power weight + Perseus"
VARIANTS = (V5, OWN, PERSEUS)


def _mape(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred / truth - 1.0)) * 100.0)


def _fit(
    gaissa: Sequence[LabelledRun], perseus: Sequence[PowerRun], train: np.ndarray, variant: str
) -> tuple[Dataset, Fitted, float]:
    ds = Dataset.from_runs(gaissa, perseus if variant == PERSEUS else ())
    chosen = select(ds, train, power=variant != V5)
    fitted = fit_params(ds, train, chosen.prior_weight, chosen.overlap, chosen.power_weight)
    weight = chosen.prior_weight if chosen.power_weight is None else chosen.power_weight
    return ds, fitted, weight


def evaluate(gaissa: Sequence[LabelledRun], perseus: Sequence[PowerRun]) -> list[HeldOut]:
    """Leave-one-GPU-out over GAISSA's and Perseus's GPUs, every variant (module docstring)."""
    plain = Dataset.from_runs(gaissa)
    every = np.arange(len(plain.runs))
    out = []
    for gpu in sorted(set(plain.gpu.tolist())):
        test, train = every[plain.gpu == gpu], every[plain.gpu != gpu]
        pred_w, power, energy, weights = {}, {}, {}, {}
        for variant in VARIANTS:
            ds, fitted, weights[variant] = _fit(gaissa, perseus, train, variant)
            t, p, _ = fitted.predict_log(ds, test)
            pred_w[variant] = float(np.median(np.exp(p)))
            power[variant] = _mape(np.exp(p), np.exp(ds.log_p[test]))
            energy[variant] = _mape(np.exp(t + p), np.exp(ds.log_e[test]))
        measured = float(np.median(np.exp(plain.log_p[test])))
        out.append(HeldOut(gpu, "GAISSA", len(test), measured, pred_w, power, energy, weights))
    for gpu in sorted({r.gpu_name for r in perseus}):
        held = [r for r in perseus if r.gpu_name == gpu]
        features = physics.Features.from_descriptors([r.descriptor for r in held])
        truth = np.array([r.power_w for r in held])
        others = [r for r in perseus if r.gpu_name != gpu]
        pred_w, power, weights = {}, {}, {}
        for variant in VARIANTS:
            _, fitted, weights[variant] = _fit(gaissa, others, every, variant)
            predicted = physics.power_w(fitted.phi, fitted.theta, features)
            pred_w[variant] = float(np.median(predicted))
            power[variant] = _mape(predicted, truth)
        out.append(HeldOut(gpu, "Perseus", len(held), float(np.median(truth)), pred_w, power, {}, weights))
    return out


def pooled_energy(results: Sequence[HeldOut]) -> dict[str, float]:
    """GAISSA held-out-GPU energy MAPE, every run weighing 1."""
    gaissa = [r for r in results if r.energy_mape]
    weights = np.array([r.rows for r in gaissa], dtype=float)
    return {v: float(np.average([r.energy_mape[v] for r in gaissa], weights=weights)) for v in VARIANTS}


def mean_power(results: Sequence[HeldOut]) -> dict[str, float]:
    """Power MAPE averaged over the held-out GPUs (each weighing 1)."""
    return {v: float(np.mean([r.power_mape[v] for r in results])) for v in VARIANTS}


def decide(results: Sequence[HeldOut]) -> str:
    """The decision rule of the module docstring."""
    power, energy = mean_power(results), pooled_energy(results)
    best = min(VARIANTS, key=power.__getitem__)
    return best if energy[best] <= energy[V5] else V5


def print_table(results: Sequence[HeldOut]) -> None:
    print("### Mean GPU power, leave-one-GPU-out (GAISSA and Perseus GPUs, nested)\n")
    print(
        "Each GPU held out in turn (selection and fit on the rest; a Perseus GPU is predicted by a model "
        "fitted on all GAISSA runs and, with Perseus, the other Perseus GPU's rows). Variants: `v5` (one "
        "prior weight for time and power), `own power weight` (the power curve's prior weight chosen by "
        "leave-one-GPU-out power error on the training GPUs), `+ Perseus` (with the training GPUs' Perseus "
        "rows in the power fit). Perseus models are described by a Lambda proxy (BERT-large for the "
        "transformers, ResNet-50 for Wide-ResNet), so the rows teach the curve how much of its limit a busy "
        "data-centre board draws, not the models' differences (`tools/perseus.py`). Power MAPE % "
        "(predicted median W; selected power prior weight).\n"
    )
    print(f"| held out | source | rows | measured W (median) | {' | '.join(VARIANTS)} |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        cells = " | ".join(
            f"{r.power_mape[v]:.1f} ({r.predicted_w[v]:.0f} W; {r.power_weight[v]:g})" for v in VARIANTS
        )
        print(f"| {r.gpu} | {r.source} | {r.rows} | {r.measured_w:.0f} | {cells} |")
    power, energy = mean_power(results), pooled_energy(results)
    print(f"| **mean over held-out GPUs** | | | | {' | '.join(f'{power[v]:.1f}' for v in VARIANTS)} |")
    print(
        "| *GAISSA held-out-GPU energy MAPE %, pooled* | | | | "
        f"{' | '.join(f'{energy[v]:.1f}' for v in VARIANTS)} |"
    )
    print(f"\nDecision (rule in `benchmarks/pre_power.py`): **{decide(results)}** ships.\n")


def run(gaissa_dir: Path, perseus_dir: Path) -> None:
    if not (gaissa_dir / "pre_runs.csv").is_file() or not perseus_dir.is_dir():
        print(f"skipped: GAISSA ({gaissa_dir}) or Perseus ({perseus_dir}) data not found\n")
        return
    print_table(evaluate(load_gaissa_runs(gaissa_dir), load_perseus_power(perseus_dir)))


def main() -> int:
    run(default_gaissa_dir(REPO), default_perseus_dir(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
