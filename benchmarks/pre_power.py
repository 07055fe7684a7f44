"""PRE power, leave-one-GPU-out (nested): the v5 fit, the power curve with its own prior weight, and with
Perseus's data-centre rows in the power fit.

Five GPUs with measured board power: GAISSA's three (nvidia-smi, 857 runs) and Perseus's two (NVML, A100 80GB
PCIe and A40 at several power limits, ``tools/perseus.py``). Each is held out in turn: the prior weight,
overlap (and, from the second variant on, the power curve's own prior weight, by leave-one-GPU-out power
error over the training GPUs: ``tools/pre_params.select_power_weight``) and the interval rule are selected on
the training part, the model is fitted on it, and the held-out GPU's power is predicted. A held-out Perseus
GPU is predicted by a model selected and fitted on all GAISSA runs (and, in the third variant, the other
Perseus GPU's rows); its own rows are never seen. Variants:

* ``v5``: one prior weight for time and power, GAISSA only (what shipped before);
* ``own power weight``: the power curve's prior weight selected on its own, GAISSA only;
* ``own power weight + Perseus``: the same with the Perseus rows of the training GPUs in the power fit;
* ``own power weight + Perseus + MLPerf``: the same with the MLPerf single-node 8 x H100 SXM rows as well
  (``tools/mlperf_power.py``: the GPU power is the server's DC power less a **stated** 1.6 kW +- 0.5 kW for
  the rest of the server, / 8; never held out, since no GPU measurement of the H100 exists to check it on);
* ``roofline shares, ...``: the same rows with the candidate power form ``tools/pre_dataset.ROOFLINE`` (mean
  power from the roofline's compute-bound, bandwidth-bound and launch/overhead shares of the epoch, rest idle;
  ``form_power_w``) instead of the shipped utilisation curve.
* ``board class``: v5 for consumer/workstation boards (GAISSA's curve, unchanged) and, for data-centre boards
  (``GpuDescriptor.power_class``), the same curve with a class shift of its utilisation logit (times the
  busy share) selected and fitted on the data-centre rows of the training part only (the other Perseus
  GPU, MLPerf's H100 at its stated share; ``tools/pre_class_shift.class_shift_for``). A held-out consumer GPU
  is predicted exactly as by v5.

Perseus rows carry their pipeline bubble (``tools/perseus.pipeline_bubble``: 3-18 % of an iteration a stage
idles), predicted at the curve's idle power; held out, a Perseus GPU's power is predicted the same way.
A second table splits the held-out power error by the regime the v5 time model predicts for each run
(compute-, bandwidth- or host-bound).

GPUs whose power reading does not track the board's draw (``tools.pre_dataset.UNTRACKED_POWER_GPUS``: GAISSA's
GTX 750 Ti, a constant 28.1 W +- 0.13 W at 95 % utilisation) are fitted for time only in every variant, and
their held-out power error is printed but not counted in the mean below. That was decided from the reading
and the data's README before the comparison was rerun (v5.2; until then the mean counted it, and a curve
that lets a busy board approach its limit lost on that GPU alone).

Decision rule (fixed before the second and third variants' figures were first printed; the first print
compared v5 with Perseus rows under v5's shared weight, where the prior of weight 100 left the power curve
unchanged): the variant with the lowest mean power MAPE over the held-out GPUs (those with a tracking
reading) ships, provided its pooled held-out-GPU energy MAPE on GAISSA is not above v5's; otherwise v5 stays.
The MLPerf variant was added as a fourth candidate under this same rule before its figures were first
printed; the roofline-shares variant as a fifth **after** a scratch run of that form (with Perseus and
MLPerf) had been seen: it did not win there either (v5.1, with the GTX 750 Ti counted). v5.3 reran the
comparison, rule unchanged, after a fault of the time model was fixed (a frozen backbone's training step
was charged the kernel launches of a backward pass through it: ``lightning_energy.pre.physics``).

The board-class variant (v5.5) has its own rule, declared in docs/pre.md before its first run and written
after the v5.3 comparison had been seen (so its held-out A100/A40 figures are not blind): it ships if its
mean held-out power MAPE over the data-centre GPUs is lower than v5's, GAISSA's pooled held-out-GPU energy
MAPE is not above v5's and no consumer GPU's held-out power MAPE is above v5's (``class_passes``); if it and
a variant of the older rule both pass, the lower mean power MAPE over all tracked GPUs ships (``decide``).
Its first form, a shift the same at every busy share, passed at its first run (data-centre mean 19.2 % ->
6.6 %); before the second run the shift was weighted by the busy share (a board waiting on its host keeps
the consumer curve; docs/pre.md says why), with the decision fixed beforehand: that form ships if it passes
the same rule.

``board class, GPU-bound rows only`` (v5.6 candidate): the same, its shift selected and fitted only on the
data-centre rows the fold's time model predicts GPU-bound (not host-bound;
``tools/pre_class_shift.gpu_bound_rows``): MLPerf's DLRM, U-Net3D and Llama-2 LoRA proxies are predicted
busy 0.14-0.34 on GPUs drawing 0.94-0.97 of their limit, which pulled v5.5's shift to +12.1. Its rule
(``amended_passes``), declared in docs/pre.md before its run: it replaces v5.5's board class if its mean
held-out data-centre power MAPE is not above v5.5's by more than ``AMENDED_MARGIN_POINTS`` and GAISSA's
energy and the consumer GPUs' power are not worse than v5's. The last table (IN-SAMPLE) gives the curve's
share of the limit by busy share for v5, v5.5 and the candidate. Its one run failed that rule (data-centre
mean 10.0 % against v5.5's 7.0 %): v5.5 stays; the column is kept as a record.

The folds and the variants' fits are ``benchmarks/pre_power_folds.py``'s; this module holds the decision
rules and the tables.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/pre_power.py`` (about a minute); ``pre_accuracy.py`` prints
it too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from benchmarks.pre_power_folds import (  # noqa: E402
    CLASS,
    CLASS_GB,
    POWER_VARIANTS,
    V5,
    VARIANTS,
    HeldOut,
    evaluate,
    fit_variant,
    mape,
)
from lightning_energy.pre import physics  # noqa: E402
from lightning_energy.pre.descriptors import LabelledRun  # noqa: E402
from tools.gaissa import default_gaissa_dir, load_gaissa_runs  # noqa: E402
from tools.mlperf_power import default_mlperf_dir, load_mlperf_power  # noqa: E402
from tools.perseus import PowerRun, default_perseus_dir, load_perseus_power  # noqa: E402
from tools.pre_class_shift import ALL_ROWS, GPU_BOUND_ROWS, class_shift_for  # noqa: E402
from tools.pre_dataset import UNTRACKED_POWER_GPUS  # noqa: E402

#: The v5.6 amendment's rule (docs/pre.md, declared before its run): its mean held-out data-centre power
#: MAPE may be at most this many points above v5.5's (``amended_passes``).
AMENDED_MARGIN_POINTS = 1.0


def pooled_energy(results: Sequence[HeldOut]) -> dict[str, float]:
    """GAISSA held-out-GPU energy MAPE, every run weighing 1."""
    gaissa = [r for r in results if r.energy_mape]
    weights = np.array([r.rows for r in gaissa], dtype=float)
    return {v: float(np.average([r.energy_mape[v] for r in gaissa], weights=weights)) for v in VARIANTS}


def mean_power(results: Sequence[HeldOut]) -> dict[str, float]:
    """Power MAPE averaged over the held-out GPUs whose power reading tracks the board (each weighing 1;
    ``tools.pre_dataset.UNTRACKED_POWER_GPUS`` are printed, not counted)."""
    tracked = [r for r in results if r.gpu not in UNTRACKED_POWER_GPUS]
    return {v: float(np.mean([r.power_mape[v] for r in tracked])) for v in VARIANTS}


def mean_data_centre_power(results: Sequence[HeldOut]) -> dict[str, float]:
    """Power MAPE averaged over the held-out data-centre GPUs (each weighing 1)."""
    centre = [r for r in results if r.data_centre and r.gpu not in UNTRACKED_POWER_GPUS]
    return {v: float(np.mean([r.power_mape[v] for r in centre])) for v in VARIANTS}


def decide_by_power(results: Sequence[HeldOut]) -> str:
    """The rule of v5.1-v5.3 over ``POWER_VARIANTS`` (module docstring): the lowest mean power MAPE ships if
    its GAISSA energy MAPE is not above v5's; else v5."""
    power, energy = mean_power(results), pooled_energy(results)
    best = min(POWER_VARIANTS, key=power.__getitem__)
    return best if energy[best] <= energy[V5] else V5


def class_passes(results: Sequence[HeldOut]) -> bool:
    """The board-class rule, declared in docs/pre.md before its first run: (1) mean held-out power MAPE over
    the data-centre GPUs lower than v5's, (2) GAISSA pooled held-out-GPU energy MAPE not above v5's, (3) no
    consumer GPU with a tracking reading has a held-out power MAPE above v5's."""
    centre, energy = mean_data_centre_power(results), pooled_energy(results)
    consumer = [r for r in results if not r.data_centre and r.gpu not in UNTRACKED_POWER_GPUS]
    return (
        centre[CLASS] < centre[V5]
        and energy[CLASS] <= energy[V5]
        and all(r.power_mape[CLASS] <= r.power_mape[V5] for r in consumer)
    )


def amended_passes(results: Sequence[HeldOut]) -> bool:
    """The v5.6 amendment's rule, declared in docs/pre.md before its run: the GPU-bound board class replaces
    v5.5's if (1) its mean held-out power MAPE over the data-centre GPUs is not above v5.5's (same run) by
    more than ``AMENDED_MARGIN_POINTS``, (2) GAISSA's pooled held-out-GPU energy MAPE is not above v5's and
    (3) no consumer GPU with a tracking reading has a held-out power MAPE above v5's."""
    centre, energy = mean_data_centre_power(results), pooled_energy(results)
    consumer = [r for r in results if not r.data_centre and r.gpu not in UNTRACKED_POWER_GPUS]
    return (
        centre[CLASS_GB] <= centre[CLASS] + AMENDED_MARGIN_POINTS
        and energy[CLASS_GB] <= energy[V5]
        and all(r.power_mape[CLASS_GB] <= r.power_mape[V5] for r in consumer)
    )


def decide(results: Sequence[HeldOut]) -> str:
    """What ships: the board class by its rule (``class_passes``; in its GPU-bound form where that passes
    ``amended_passes``), the others by theirs (``decide_by_power``); if both a board class and another
    variant pass, the lower mean power MAPE over the GPUs with a tracking reading; if neither, v5."""
    passing = [v for v in (decide_by_power(results),) if v != V5]
    if class_passes(results):
        passing.append(CLASS_GB if amended_passes(results) else CLASS)
    if not passing:
        return V5
    power = mean_power(results)
    return min(passing, key=lambda v: (power[v], VARIANTS.index(v)))


def print_table(results: Sequence[HeldOut]) -> None:
    print("### Mean GPU power, leave-one-GPU-out (GAISSA and Perseus GPUs, nested)\n")
    print(
        "Each GPU held out in turn (selection and fit on the rest; a Perseus GPU is predicted by a model "
        "fitted on all GAISSA runs and, with Perseus, the other Perseus GPU's rows). Variants: `v5` (one "
        "prior weight for time and power), `own power weight` (the power curve's prior weight chosen by "
        "leave-one-GPU-out power error on the training GPUs), `+ Perseus` (with the training GPUs' "
        "Perseus rows in the power fit), `+ MLPerf` (and single-node 8 x H100 SXM rows whose GPU power "
        "is a stated share of the server's: `tools/mlperf_power.py`), `roofline shares` (the candidate "
        "power form `tools/pre_dataset.ROOFLINE`, from the compute-bound, bandwidth-bound and launch shares "
        "of the epoch, with the same rows). Perseus models are described by a Lambda proxy (BERT-large "
        "for the transformers, ResNet-50 for Wide-ResNet), so the rows teach the curve how much of its "
        "limit a busy data-centre board draws, not the models' differences (`tools/perseus.py`); their "
        "pipeline bubble (3-18 % of an iteration) is predicted at idle power. Power MAPE % (predicted "
        "median W; selected power prior weight).\n"
    )
    print(f"| held out | source | rows | measured W (median) | {' | '.join(VARIANTS)} |")
    print("|---|---|---|---|" + "---|" * len(VARIANTS))
    for r in results:
        cells = " | ".join(
            f"{r.power_mape[v]:.1f} ({r.predicted_w[v]:.0f} W; {r.power_weight[v]:g})" for v in VARIANTS
        )
        untracked = " (reading does not track load; not counted)" if r.gpu in UNTRACKED_POWER_GPUS else ""
        print(f"| {r.gpu}{untracked} | {r.source} | {r.rows} | {r.measured_w:.0f} | {cells} |")
    power, energy = mean_power(results), pooled_energy(results)
    print(
        f"| **mean over held-out GPUs with a tracking power reading** | | | | "
        f"{' | '.join(f'{power[v]:.1f}' for v in VARIANTS)} |"
    )
    centre = mean_data_centre_power(results)
    print(
        "| **mean over held-out data-centre GPUs** | | | | "
        f"{' | '.join(f'{centre[v]:.1f}' for v in VARIANTS)} |"
    )
    print(
        "| *GAISSA held-out-GPU energy MAPE %, pooled* | | | | "
        f"{' | '.join(f'{energy[v]:.1f}' for v in VARIANTS)} |"
    )
    shifts = ", ".join(f"{r.gpu} held out {r.class_shift:+.2f}" for r in results)
    gb_shifts = ", ".join(f"{r.gpu} held out {r.gpu_bound_shift:+.2f}" for r in results)
    print(
        f"\nBoard class: data-centre shift of the utilisation logit per fold ({shifts}; the column's weight "
        "is the shift's prior weight, chosen by leave-one-data-centre-GPU-out on the fold's data-centre "
        f"rows); GPU-bound rows only: {gb_shifts}. Rule of v5.1-v5.3 over the other variants: "
        f"{decide_by_power(results)}; board-class rule (docs/pre.md): "
        f"{'passes' if class_passes(results) else 'fails'}; v5.6 amendment (GPU-bound rows only) rule: "
        f"{'passes' if amended_passes(results) else 'fails'}.\n"
    )
    left = {r.gpu: ", ".join(f"{g} {m}" for g, m in sorted(set(r.dropped))) for r in results}
    if len(set(left.values())) == 1:
        names = next(iter(left.values()))
        print(f"Rows predicted host-bound, left out of every fold's GPU-bound fit: {names}.\n")
    else:
        for gpu, names in left.items():
            print(f"- {gpu} held out: rows predicted host-bound, left out of the GPU-bound fit: {names}.")
        print()
    print(f"Decision (rules in `benchmarks/pre_power.py`): **{decide(results)}** ships.\n")
    print("#### Held-out power by predicted regime (the v5 time model's regime of each run)\n")
    print(f"| held out | regime | runs | {' | '.join(VARIANTS)} |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    for r in results:
        for regime, (n, _) in r.regimes[V5].items():
            cells = " | ".join(f"{r.regimes[v][regime][1]:.1f}" for v in VARIANTS)
            print(f"| {r.gpu} | {regime} | {n} | {cells} |")
    print()
    print("#### How much power varies between models on the held-out GPU\n")
    print(
        "Max / min over architectures (GAISSA) or models (Perseus, every power limit pooled) of the median "
        "power on the held-out GPU: measured, and as each variant predicts it (1.00: every model the same).\n"
    )
    print(f"| held out | measured | {' | '.join(VARIANTS)} |")
    print("|---|---|" + "---|" * len(VARIANTS))
    for r in results:
        cells = " | ".join(f"x{r.spread[v]:.2f}" for v in VARIANTS)
        print(f"| {r.gpu} | x{r.measured_spread:.2f} | {cells} |")
    print()


def print_perseus_models(results: Sequence[HeldOut]) -> None:
    """Held-out Perseus power per model: measured and predicted (v5, board class) as shares of the limit."""
    print("#### Held-out data-centre power per Perseus model (v5 vs board class)\n")
    print(
        "Each Perseus GPU held out (the board class's shift from the other Perseus GPU and MLPerf's H100). "
        "Medians over the model's rows (every batch size and power limit) of power / power limit; MAPE % "
        "over its rows. Every model has the same proxy descriptor (`tools/perseus.py`), so a model's own "
        "draw is not described.\n"
    )
    print(
        "| GPU | model | rows | measured / limit | v5 / limit | board class / limit | GPU-bound rows / limit "
        "| v5 MAPE % | board class MAPE % | GPU-bound rows MAPE % |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for model in sorted({row[0] for row in r.per_row}):
            rows = np.array([row[1:] for row in r.per_row if row[0] == model])
            limit, truth, v5, board, bound = rows.T
            print(
                f"| {r.gpu} | {model} | {len(rows)} | {np.median(truth / limit):.2f} "
                f"| {np.median(v5 / limit):.2f} | {np.median(board / limit):.2f} "
                f"| {np.median(bound / limit):.2f} | {mape(v5, truth):.1f} | {mape(board, truth):.1f} "
                f"| {mape(bound, truth):.1f} |"
            )
    print()


#: Busy shares and step times (s) at which ``print_curve`` tabulates the curve.
CURVE_BUSY = (0.05, 0.2, 0.5, 0.9)
CURVE_STEP_S = (0.01, 0.1, 1.0)


def curve_share(phi: np.ndarray, shift: float, busy: float, step_s: float) -> float:
    """The power curve's share of the board limit at ``busy`` and a GPU step of ``step_s`` with the
    data-centre ``shift`` (``physics.power_from_parts``)."""
    one = np.array([1.0])
    parts = physics.TimeParts(
        compute_s=one * busy,
        overhead_s=one * 0.0,
        host_s=one * 0.0,
        epoch_s=one,
        steps=one * busy / step_s,
        flop_s=one * busy,
        bytes_s=one * 0.0,
    )
    return float(physics.power_from_parts(phi, parts, one, shift)[0])


def print_curve(
    gaissa: Sequence[LabelledRun], perseus: Sequence[PowerRun], mlperf: Sequence[PowerRun]
) -> None:
    """IN-SAMPLE: the curve of v5's fit on all GAISSA runs on a consumer board and, with each row rule's
    shift fitted on all data-centre rows, on a data-centre board, as shares of the limit."""
    _, fitted, _, _ = fit_variant(gaissa, perseus, np.arange(len(gaissa)), V5)
    shifts = {rule: class_shift_for([*perseus, *mlperf], fitted, rule) for rule in (ALL_ROWS, GPU_BOUND_ROWS)}
    print("#### The power curve by busy share (IN-SAMPLE: the shifts are fitted on all data-centre rows)\n")
    print(
        "Share of the board limit at a predicted busy share and GPU step time (min-max over steps of "
        + ", ".join(f"{s:g}" for s in CURVE_STEP_S)
        + " s): v5's curve (all GAISSA runs; a consumer board), and a data-centre board with the shift "
        + "fitted on all data-centre rows ("
        + ", ".join(
            f"{rule} rows: {c.shift:+.2f} from {c.rows} rows, prior weight {c.weight:g}"
            for rule, c in shifts.items()
        )
        + ").\n"
    )
    print(f"| busy | v5 (consumer) | {ALL_ROWS} rows (v5.5) | {GPU_BOUND_ROWS} rows (v5.6 candidate) |")
    print("|---|---|---|---|")
    for busy in CURVE_BUSY:
        cells = []
        for shift in (0.0, shifts[ALL_ROWS].shift, shifts[GPU_BOUND_ROWS].shift):
            values = [curve_share(fitted.phi, shift, busy, step) for step in CURVE_STEP_S]
            cells.append(f"{min(values):.3f}-{max(values):.3f}")
        print(f"| {busy:g} | {' | '.join(cells)} |")
    print()


def print_mlperf_rows(mlperf: Sequence[PowerRun]) -> None:
    """The MLPerf rows and the GPU power attributed to them (a model of the server, not a measurement)."""
    from tools import mlperf_power

    print(
        "MLPerf rows (training rows of the MLPerf, roofline-shares and board-class variants; never held "
        "out): single-node 8 x H100 SXM, "
        f"GPU power = (server DC power - {mlperf_power.NON_GPU_DC_W / 1000:g} kW, a stated non-GPU share, "
        f"1 sd {mlperf_power.NON_GPU_DC_SD_W / 1000:g} kW) / 8, per benchmark: "
        + ", ".join(f"{r.model_name} {r.power_w:.0f} W (weight {r.weight:.2f})" for r in mlperf)
        + ".\n"
    )


def run(gaissa_dir: Path, perseus_dir: Path, mlperf_dir: Path | None = None) -> None:
    mlperf_dir = default_mlperf_dir(REPO) if mlperf_dir is None else mlperf_dir
    if not (gaissa_dir / "pre_runs.csv").is_file() or not perseus_dir.is_dir():
        print(f"skipped: GAISSA ({gaissa_dir}) or Perseus ({perseus_dir}) data not found\n")
        return
    if not mlperf_dir.is_dir():
        print(f"skipped: MLPerf data not found at {mlperf_dir}\n")
        return
    mlperf = load_mlperf_power(mlperf_dir)
    gaissa, perseus = load_gaissa_runs(gaissa_dir), load_perseus_power(perseus_dir)
    results = evaluate(gaissa, perseus, mlperf)
    print_table(results)
    print_perseus_models(results)
    print_mlperf_rows(mlperf)
    print_curve(gaissa, perseus, mlperf)


def main() -> int:
    run(default_gaissa_dir(REPO), default_perseus_dir(REPO), default_mlperf_dir(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
