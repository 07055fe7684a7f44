"""PRE epoch-time residuals on GAISSA by host and configuration (IN-SAMPLE: the shipped coefficients).

A diagnosis, not a score: the shipped model (``PreEstimator.default()``, fitted on all GAISSA runs) predicts
each run's epoch time, and the runs are grouped by (architecture, GPU, batch size, input side). For each group
the table shows the measured and predicted epoch time, the log error (predicted - measured; < 0 means
predicted too fast), the model's parts (GPU kernels, per-step overhead with launches, host input pipeline)
and the unexplained time per step ((measured - predicted) / steps, ms).

The second table summarises per GPU (each GAISSA GPU sits in its own host machine) the runs the model calls
step-bound (GPU busy share < 0.5) and GPU-bound. A per-step cost that differs by machine and not by model
shows up as a step-bound log error of one sign per GPU with a similar ms/step across architectures. The
per-step overhead in ``lightning_energy.pre.physics`` is the same on every machine, and no descriptor says
how fast the host's CPU and framework are, so this part is left to the interval and, for a machine with a
run history, to its host effect (``lightning_energy/pre/machine.py``: a shrunk log factor on the host parts
learned from the machine's other runs). A slowness of one model on one machine that the machine's other
models do not share (MobileNetV2 on GAISSA's RTX 3090 host) is neither.

The third table is nested: each GAISSA GPU held out in turn, the time and power parameters fitted on the
other GPUs' runs (``tools/pre_params.fit_params``, at the shipped prior weight) for every candidate overlap
exponent ``k`` of the selection, and the held-out GPU's median log errors of time and power and its energy
MAPE printed by predicted busy share. It shows what a held-out machine's time error is made of: the
overlap exponent the other machines favour, and a per-step cost that differs between machines; and how a
power error of the opposite sign hides it in the energy (docs/pre.md, Limits). It chooses nothing: the
selection of ``k`` in each outer fold is ``benchmarks/pre_accuracy.py``'s.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/pre_host.py`` (a few seconds).
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from lightning_energy.pre import physics  # noqa: E402
from lightning_energy.pre.descriptors import LabelledRun  # noqa: E402
from lightning_energy.pre.model import PreEstimator  # noqa: E402
from tools.gaissa import default_gaissa_dir, load_gaissa_runs  # noqa: E402
from tools.pre_dataset import Dataset  # noqa: E402
from tools.pre_params import OVERLAP_EXPONENTS, fit_params  # noqa: E402

#: Predicted GPU busy share below which a run is called step-bound in the summary (a round split).
STEP_BOUND_SHARE = 0.5


@dataclass(frozen=True)
class GroupResidual:
    """Mean epoch times (s) of the runs of one (architecture, GPU, batch, input side)."""

    architecture: str
    gpu: str
    batch_size: int
    image: int
    runs: int
    measured_s: float
    predicted_s: float
    log_error: float
    compute_s: float
    overhead_s: float
    host_s: float
    busy_share: float
    unexplained_ms_per_step: float


@dataclass(frozen=True)
class GpuSummary:
    """Step-bound and GPU-bound runs of one GPU: run counts and median log error (NaN where none)."""

    gpu: str
    step_bound_runs: int
    step_bound_log_error: float
    step_bound_ms_per_step: float
    gpu_bound_runs: int
    gpu_bound_log_error: float


def group_residuals(runs: Sequence[LabelledRun], estimator: PreEstimator) -> list[GroupResidual]:
    """Per-group means of the measured and predicted epoch time and of the model's parts."""
    f = physics.Features.from_descriptors([r.descriptor for r in runs])
    parts = physics.time_parts(estimator.theta, f)
    measured = np.array([r.epoch_seconds for r in runs])
    groups: dict[tuple[str, str, int, int], list[int]] = defaultdict(list)
    for i, r in enumerate(runs):
        d = r.descriptor
        groups[(r.architecture, r.gpu_name, d.data.batch_size, d.model.input_shape[-1])].append(i)
    out = []
    for (arch, gpu, batch, image), members in sorted(groups.items()):
        ii = np.array(members)
        per_step = (measured[ii] - parts.epoch_s[ii]) / parts.steps[ii]
        out.append(
            GroupResidual(
                architecture=arch,
                gpu=gpu,
                batch_size=batch,
                image=image,
                runs=len(ii),
                measured_s=float(measured[ii].mean()),
                predicted_s=float(parts.epoch_s[ii].mean()),
                log_error=float(np.mean(np.log(parts.epoch_s[ii] / measured[ii]))),
                compute_s=float(parts.compute_s[ii].mean()),
                overhead_s=float(parts.overhead_s[ii].mean()),
                host_s=float(parts.host_s[ii].mean()),
                busy_share=float(parts.busy_share[ii].mean()),
                unexplained_ms_per_step=float(1e3 * np.median(per_step)),
            )
        )
    return out


def gpu_summaries(groups: Sequence[GroupResidual]) -> list[GpuSummary]:
    """Run-weighted median log error per GPU, split by the predicted busy share."""

    def median(values: list[float], weights: list[int]) -> float:
        if not values:
            return float("nan")
        return float(np.median(np.repeat(values, weights)))

    out = []
    for gpu in sorted({g.gpu for g in groups}):
        step = [g for g in groups if g.gpu == gpu and g.busy_share < STEP_BOUND_SHARE]
        busy = [g for g in groups if g.gpu == gpu and g.busy_share >= STEP_BOUND_SHARE]
        out.append(
            GpuSummary(
                gpu=gpu,
                step_bound_runs=sum(g.runs for g in step),
                step_bound_log_error=median([g.log_error for g in step], [g.runs for g in step]),
                step_bound_ms_per_step=median(
                    [g.unexplained_ms_per_step for g in step], [g.runs for g in step]
                ),
                gpu_bound_runs=sum(g.runs for g in busy),
                gpu_bound_log_error=median([g.log_error for g in busy], [g.runs for g in busy]),
            )
        )
    return out


@dataclass(frozen=True)
class HeldOutTime:
    """One GAISSA GPU held out, the model fitted on the others at overlap exponent ``overlap``: median log
    errors (predicted - measured) of its runs' epoch time, overall and split by the predicted busy share
    (NaN where a split has no run), its median log power error and its energy MAPE (%)."""

    gpu: str
    overlap: float
    runs: int
    log_time_error: float
    step_bound_runs: int
    step_bound_log_time_error: float
    gpu_bound_log_time_error: float
    log_power_error: float
    energy_mape: float


def held_out_gpu_time(
    runs: Sequence[LabelledRun], prior_weight: float, overlaps: Sequence[float] = OVERLAP_EXPONENTS
) -> list[HeldOutTime]:
    """For every GPU and overlap exponent: fit on the other GPUs' runs, predict the held-out GPU's."""
    ds = Dataset.from_runs(runs)
    every = np.arange(len(ds.runs))
    out = []
    for gpu in sorted(set(ds.gpu.tolist())):
        test, train = every[ds.gpu == gpu], every[ds.gpu != gpu]
        for overlap in overlaps:
            fitted = fit_params(ds, train, prior_weight, overlap)
            log_t, log_p, busy = fitted.predict_log(ds, test)
            time_error = log_t - ds.log_t[test]
            step = busy < STEP_BOUND_SHARE

            def median(mask: np.ndarray, errors: np.ndarray = time_error) -> float:
                return float(np.median(errors[mask])) if mask.any() else math.nan

            out.append(
                HeldOutTime(
                    gpu=gpu,
                    overlap=overlap,
                    runs=len(test),
                    log_time_error=float(np.median(time_error)),
                    step_bound_runs=int(step.sum()),
                    step_bound_log_time_error=median(step),
                    gpu_bound_log_time_error=median(~step),
                    log_power_error=float(np.median(log_p - ds.log_p[test])),
                    energy_mape=float(100.0 * np.mean(np.abs(np.exp(log_t + log_p - ds.log_e[test]) - 1.0))),
                )
            )
    return out


def _signed(value: float, digits: int) -> str:
    """``value`` with its sign, or "-" where there are no runs (NaN)."""
    return "-" if np.isnan(value) else f"{value:+.{digits}f}"


def markdown(groups: Sequence[GroupResidual], summaries: Sequence[GpuSummary]) -> str:
    lines = [
        "#### Epoch-time residuals by configuration (IN-SAMPLE, shipped coefficients)",
        "",
        "| architecture | GPU | batch | input | runs | measured s | predicted s | log error | GPU kernels s "
        "| per-step overhead s | host s | busy share | unexplained ms/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in groups:
        lines.append(
            f"| {g.architecture} | {g.gpu} | {g.batch_size} | {g.image} | {g.runs} | {g.measured_s:.3g} "
            f"| {g.predicted_s:.3g} | {g.log_error:+.2f} | {g.compute_s:.3g} | {g.overhead_s:.3g} "
            f"| {g.host_s:.3g} | {g.busy_share:.2f} | {g.unexplained_ms_per_step:+.1f} |"
        )
    lines += [
        "",
        f"#### Per GPU (host machine): step-bound (busy share < {STEP_BOUND_SHARE}) vs GPU-bound runs "
        "(IN-SAMPLE)",
        "",
        "| GPU | step-bound runs | median log error | median unexplained ms/step | GPU-bound runs "
        "| median log error |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.gpu} | {s.step_bound_runs} | {_signed(s.step_bound_log_error, 2)} "
            f"| {_signed(s.step_bound_ms_per_step, 1)} "
            f"| {s.gpu_bound_runs} | {_signed(s.gpu_bound_log_error, 2)} |"
        )
    return "\n".join(lines)


def held_out_markdown(rows: Sequence[HeldOutTime], prior_weight: float) -> str:
    lines = [
        "#### Held-out GPU: time and power errors by overlap exponent "
        f"(nested; prior weight {prior_weight:g})",
        "",
        "| held out | overlap k | runs | median log time error | step-bound runs | their median log time "
        "error | GPU-bound median log time error | median log power error | energy MAPE % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.gpu} | {r.overlap:g} | {r.runs} | {r.log_time_error:+.2f} | {r.step_bound_runs} "
            f"| {_signed(r.step_bound_log_time_error, 2)} | {_signed(r.gpu_bound_log_time_error, 2)} "
            f"| {r.log_power_error:+.2f} | {r.energy_mape:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    folder = default_gaissa_dir(REPO)
    csv = folder / "pre_runs.csv"
    if not csv.exists():
        print(f"skipped: GAISSA data not found at {csv}")
        return 0
    runs = load_gaissa_runs(csv)
    shipped = PreEstimator.default()
    groups = group_residuals(runs, shipped)
    print(markdown(groups, gpu_summaries(groups)))
    weight = float(shipped.selected.get("prior_weight", 100.0))
    print()
    print(held_out_markdown(held_out_gpu_time(runs, weight), weight))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
