"""PRE accuracy on the GAISSA data with nested selection, and the GPU-ratio consistency check.

Outer folds: leave-one-GPU-out and leave-one-architecture-out on ``pre_runs.csv``. In every outer fold the
prior weight and the interval constant are chosen on the training part only (its own GPU/architecture folds,
``tools/pre_select.select``), the model is fitted on the training part, and the held-out group is reported:
per-epoch energy and power MAPE, 90 % interval coverage and median width (high / low). The paper's kernel
ridge is fitted on the same outer folds for comparison. In-sample figures (fit and report on all runs) are
labelled as such. Then: predicted vs NVML-measured power per GPU, and the model's speed ratios between GPUs
against the throughput table's for the reference workloads.

Data: ``../shared/data/gaissa/`` (or ``$LIGHTNING_ENERGY_GAISSA``). ``--plots DIR`` writes
``pre_predicted_vs_measured.png``; ``--docs docs/pre.md`` writes the tables and the
``lightning-energy estimate`` examples into that page.
Run: ``PYTHONPATH=. .venv/bin/python benchmarks/pre_accuracy.py --plots docs/img --docs docs/pre.md`` (about
two to four minutes on two cores; ``--quick`` skips the Lambda leave-one-GPU-out refits and the power variants
of ``benchmarks/pre_power.py``, and cannot write the docs).

The tables come from ``benchmarks/pre_interval_tables.py`` (outer folds, interval rules, regimes),
``benchmarks/pre_history_tables.py`` (machine effect, run history, cheapest GPU) and
``benchmarks/pre_shipped.py`` (the shipped model), on the folds of ``benchmarks/pre_folds.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from benchmarks import pre_lambda, pre_power  # noqa: E402
from benchmarks.docs_section import replace_between  # noqa: E402
from benchmarks.pre_folds import FoldResult, outer_folds, paper_matrix  # noqa: E402
from benchmarks.pre_history_tables import (  # noqa: E402
    print_calibrated,
    print_cheapest_gpu,
    print_machine_effect,
)
from benchmarks.pre_interval_tables import (  # noqa: E402
    print_interval_groups,
    print_interval_rules,
    print_outer_table,
    print_regimes,
)
from benchmarks.pre_shipped import (  # noqa: E402
    print_bert_large_transfer,
    print_in_sample,
    print_power_per_gpu,
    print_ratio_check,
)
from lightning_energy.pre import LabelledRun, PreEstimator  # noqa: E402
from tools.gaissa import default_gaissa_dir, load_gaissa_runs  # noqa: E402
from tools.perseus import default_perseus_dir  # noqa: E402
from tools.pre_dataset import Dataset  # noqa: E402


def write_plot(out: Path, ds: Dataset, folds: list[FoldResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    energy = np.exp(ds.log_e) / 1e3
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, kind in zip(axes, ("leave-one-GPU-out", "leave-one-architecture-out"), strict=True):
        for f in (f for f in folds if f.kind == kind):
            pred = np.array([x.epoch_energy_j for x in f.estimates]) / 1e3
            low = np.array([x.low_j for x in f.estimates]) / 1e3
            high = np.array([x.high_j for x in f.estimates]) / 1e3
            ax.errorbar(
                energy[f.test],
                pred,
                yerr=[pred - low, high - pred],
                fmt="o",
                ms=3,
                alpha=0.5,
                elinewidth=0.5,
                label=f.group,
            )
        lim = [energy.min() / 3, energy.max() * 3]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            xlim=lim,
            ylim=lim,
            title=f"{kind} (nested; bars: 90% interval)",
            xlabel="measured per-epoch energy (kJ)",
            ylabel="predicted (kJ)",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "pre_predicted_vs_measured.png", dpi=100)
    plt.close(fig)


#: ``lightning-energy estimate`` examples of docs/pre.md: ImageNet-1k for 90 epochs, SQuAD v1.1 for 2.
DOC_GPUS = (
    "A100 40GB PCIe",
    "A100 80GB SXM4",
    "H100 PCIe",
    "H100 SXM",
    "L4",
    "L40S",
    "A10",
    "T4",
    "RTX A6000",
    "RTX 4090",
    "A40",
    "V100 PCIe",
    "V100 SXM2",
    "Quadro RTX 6000",
)
DOC_ESTIMATES = (
    (
        "ResNet-50, ImageNet-1k",
        "--gflops 8.18 --input-shape 3,224,224 --batch-size 256 --train-samples 1281167 "
        "--val-samples 50000 --epochs 90",
    ),
    (
        "BERT-base fine-tuning, SQuAD v1.1 (384 tokens)",
        "--gflops 70.7 --input-shape 384 --batch-size 32 --train-samples 88641 --epochs 2",
    ),
)
BEGIN, END = "<!-- BEGIN pre_accuracy -->", "<!-- END pre_accuracy -->"
BEGIN_ESTIMATES, END_ESTIMATES = "<!-- BEGIN pre_estimates -->", "<!-- END pre_estimates -->"


def estimate_examples() -> str:
    """The docs' ``lightning-energy estimate`` outputs, run in this process with the shipped model."""
    from lightning_energy.cli import main as cli_main

    out = []
    for precision, flags in (("32-true", ""), ("32-true", " --tf32"), ("16-mixed", "")):
        for title, args in DOC_ESTIMATES:
            if flags and "384" not in args:
                continue  # TF32 changes matmuls only: ResNet-50's convolutions use it by default
            argv = ["estimate", *args.split(), "--precision", precision, *flags.split()]
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                cli_main([*argv, *(x for gpu in DOC_GPUS for x in ("--gpu", gpu))])
            shown = f"$ lightning-energy {' '.join(argv)} --gpu ..."
            out.append(
                f"#### {title}, {precision}{flags}\n\n```text\n{shown}\n{buffer.getvalue().rstrip()}\n```\n"
            )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_gaissa_dir(REPO))
    parser.add_argument("--lambda-data", type=Path, default=REPO.parent / "shared" / "data" / "lambda")
    parser.add_argument("--perseus-data", type=Path, default=default_perseus_dir(REPO))
    parser.add_argument("--plots", type=Path, help="write the docs figure into this folder (e.g. docs/img)")
    parser.add_argument(
        "--docs", type=Path, help="write the tables and examples into this page (docs/pre.md)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the Lambda leave-one-GPU-out refits and the power variants (faster); not with --docs",
    )
    args = parser.parse_args(argv)
    if args.quick and args.docs is not None:
        parser.error("--docs needs the full run: drop --quick")
    if not (args.data / "pre_runs.csv").is_file():
        print(f"skipped: GAISSA data not found at {args.data} (set LIGHTNING_ENERGY_GAISSA)")
        return 0
    runs: list[LabelledRun] = load_gaissa_runs(args.data)
    ds = Dataset.from_runs(runs)
    folds = outer_folds(ds, paper_matrix(args.data))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_outer_table(ds, folds)
        print_interval_rules(ds, folds)
        print_interval_groups(ds, folds)
        print_regimes(ds, folds)
        print_machine_effect(ds, folds)
        print_calibrated(ds, folds)
        print_cheapest_gpu(ds, folds)
        shipped = print_in_sample(ds)
        print_power_per_gpu(ds, folds, PreEstimator.default())
        if not args.quick:
            pre_power.run(args.data, args.perseus_data)
        print_ratio_check(shipped)
        print_bert_large_transfer(args.lambda_data)
        pre_lambda.run(args.lambda_data, args.plots, quick=args.quick)
    print(buffer.getvalue(), end="")
    if args.plots is not None:
        write_plot(args.plots, ds, folds)
    if args.docs is not None:
        replace_between(args.docs, BEGIN, END, buffer.getvalue().rstrip())
        replace_between(args.docs, BEGIN_ESTIMATES, END_ESTIMATES, estimate_examples().rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
