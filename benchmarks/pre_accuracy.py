"""PRE accuracy on the GAISSA data: our PreEstimator vs the paper's kernel ridge.

MAPE of per-epoch energy and power under 5-fold CV, leave-one-GPU-out and leave-one-architecture-out on
``pre_runs.csv``; total energy of the ``seaa_runs.csv`` runs against GPU TDP x duration. Prints Markdown
tables; ``--plots DIR`` writes predicted-vs-measured figures. Data: ``../shared/data/gaissa/`` relative to
the repo root or ``$LIGHTNING_ENERGY_GAISSA``. Run: ``.venv/bin/python benchmarks/pre_accuracy.py``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lightning_energy.pre import DataDescriptor, LabelledRun, ModelDescriptor, PreEstimator, RunDescriptor
from lightning_energy.pre.gaissa import default_gaissa_dir, load_gaissa_runs
from lightning_energy.pre.gpus import lookup_gpu

PAPER_FEATURES = (
    "batch_size",
    "total_ram_GB",
    "training_size",
    "validation_size",
    "GFLOPs",
    "image_size",
    "gpu_cuda_cores",
    "gpu_total_memory_GB",
    "gpu_max_power_W_spec",
)
SEAA_RAM_GB = {"Cloud": 16.0, "Local ML Engineer/Gamer": 32.0, "Local Normal User": 32.0}
Predictor = Callable[[Sequence[int], Sequence[int]], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


def paper_matrix(path: Path) -> np.ndarray:
    with (path / "pre_runs.csv").open(newline="") as handle:
        return np.array([[float(row[c]) for c in PAPER_FEATURES] for row in csv.DictReader(handle)])


def make_predictors(runs: list[LabelledRun], x_paper: np.ndarray) -> dict[str, Predictor]:
    energy = np.array([r.epoch_energy_j for r in runs])
    power = np.array([r.power_w for r in runs])

    def ours(train: Sequence[int], test: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        model = PreEstimator.fit([runs[i] for i in train])
        est = model.predict_many([runs[i].descriptor for i in test])
        covered = np.array([e.low_j <= energy[i] <= e.high_j for e, i in zip(est, test, strict=True)])
        return np.array([e.epoch_energy_j for e in est]), np.array([e.power_w for e in est]), covered

    def paper(train: Sequence[int], test: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        from sklearn.kernel_ridge import KernelRidge
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x_paper[train])
        xtr, xte = scaler.transform(x_paper[train]), scaler.transform(x_paper[test])
        out = []
        for target in (energy, power):
            krr = KernelRidge(kernel="rbf", alpha=6.64e-4, gamma=0.0442).fit(xtr, target[train])
            out.append(krr.predict(xte))
        return out[0], out[1], None

    return {"PRE (ours)": ours, "kernel ridge (paper)": paper}


def splits(runs: list[LabelledRun]) -> dict[str, list[tuple[str, list[int], list[int]]]]:
    n = len(runs)
    every = np.arange(n)
    folds = np.array_split(np.random.default_rng(0).permutation(n), 5)
    result: dict[str, list[tuple[str, list[int], list[int]]]] = {
        "5-fold CV": [
            (f"fold {k}", np.setdiff1d(every, f).tolist(), sorted(f.tolist())) for k, f in enumerate(folds)
        ]
    }
    for label, key in (("leave-one-GPU-out", "gpu_name"), ("leave-one-architecture-out", "architecture")):
        groups = sorted({getattr(r, key) for r in runs})
        result[label] = [
            (
                g,
                [i for i in every if getattr(runs[i], key) != g],
                [i for i in every if getattr(runs[i], key) == g],
            )
            for g in groups
        ]
    return result


def mape(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred / truth - 1.0)) * 100.0)


def run_benchmark(path: Path, plots: Path | None) -> None:
    runs = load_gaissa_runs(path)
    energy = np.array([r.epoch_energy_j for r in runs])
    power = np.array([r.power_w for r in runs])
    predictors = make_predictors(runs, paper_matrix(path))
    print(f"## Per-epoch energy and power, {len(runs)} runs of pre_runs.csv (MAPE %)\n")
    print("| split | held out | PRE energy | PRE power | PRE 90% coverage | KRR energy | KRR power |")
    print("|---|---|---|---|---|---|---|")
    cv_predictions: dict[str, np.ndarray] = {}
    logo_predictions = np.zeros(len(runs))
    for label, parts in splits(runs).items():
        whole: dict[str, list[np.ndarray]] = {
            name: [np.zeros(len(runs)), np.zeros(len(runs))] for name in predictors
        }
        rows = []
        coverage = np.zeros(len(runs), dtype=bool)
        for group, train, test in parts:
            cells = []
            for name, predict in predictors.items():
                e, p, covered = predict(train, test)
                whole[name][0][test], whole[name][1][test] = e, p
                cells += [mape(e, energy[test]), mape(p, power[test])]
                if covered is not None:
                    coverage[test] = covered
                    cells.append(100.0 * float(covered.mean()))
            if label == "leave-one-GPU-out":
                logo_predictions[test] = whole["PRE (ours)"][0][test]
            rows.append((group, cells))
        if label == "5-fold CV":
            cv_predictions = {name: whole[name][0] for name in predictors}
            o, k = whole["PRE (ours)"], whole["kernel ridge (paper)"]
            print(
                f"| {label} | all (pooled) | {mape(o[0], energy):.1f} | {mape(o[1], power):.1f} | "
                f"{100 * coverage.mean():.0f} | {mape(k[0], energy):.1f} | {mape(k[1], power):.1f} |"
            )
            continue
        for group, c in rows:
            print(f"| {label} | {group} | {c[0]:.1f} | {c[1]:.1f} | {c[2]:.0f} | {c[3]:.1f} | {c[4]:.1f} |")
        worst = [max(c[i] for _, c in rows) for i in range(5)]
        print(
            f"| {label} | **worst** | **{worst[0]:.1f}** | **{worst[1]:.1f}** | "
            f"{min(c[2] for _, c in rows):.0f} "
            f"| **{worst[3]:.1f}** | **{worst[4]:.1f}** |"
        )
    seaa_table(path, runs)
    if plots is not None:
        write_plots(plots, runs, energy, cv_predictions, logo_predictions)


def seaa_descriptor(row: dict[str, str]) -> RunDescriptor:
    return RunDescriptor(
        model=ModelDescriptor(float(row["GFLOPs"]) * 1e9, (3, 128, 128), "32-true"),
        data=DataDescriptor(int(row["batch size"]), int(row["training size"]), int(row["validation size"])),
        gpu=lookup_gpu(row["gpu model"]),
        host_ram_gb=SEAA_RAM_GB[row["training environment"]],
    )


def seaa_table(path: Path, runs: list[LabelledRun]) -> None:
    with (path / "seaa_runs.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = np.array([float(r["energy (MJ)"]) * 1e6 for r in rows])
    epochs = [int(r["trained epochs"]) for r in rows]
    descriptors = [seaa_descriptor(r) for r in rows]
    tdp = np.array(
        [
            d.gpu.tdp_w * float(r["training duration (h)"]) * 3600
            for d, r in zip(descriptors, rows, strict=True)
        ]
    )
    shipped = PreEstimator.fit(runs)
    ours = np.array([e.total_j(n) for e, n in zip(shipped.predict_many(descriptors), epochs, strict=True)])
    held_out = np.zeros(len(rows))
    for gpu in sorted({d.gpu.name for d in descriptors}):
        model = PreEstimator.fit([r for r in runs if r.gpu_name != gpu])
        idx = [i for i, d in enumerate(descriptors) if d.gpu.name == gpu]
        for i, e in zip(idx, model.predict_many([descriptors[i] for i in idx]), strict=True):
            held_out[i] = e.total_j(epochs[i])
    print(f"\n## Total energy of the {len(rows)} seaa_runs.csv runs (GPU energy; APE %)\n")
    print("| method | needs | median APE | P90 APE | max APE |")
    print("|---|---|---|---|---|")
    for name, needs, pred in (
        ("PRE (fitted on all pre_runs)", "descriptors + epochs", ours),
        ("PRE (GPU held out of the fit)", "descriptors + epochs", held_out),
        ("GPU TDP x duration", "the measured duration", tdp),
    ):
        ape = np.abs(pred / truth - 1.0) * 100.0
        print(f"| {name} | {needs} | {np.median(ape):.1f} | {np.percentile(ape, 90):.1f} | {ape.max():.1f} |")


def write_plots(
    out: Path, runs: list[LabelledRun], energy: np.ndarray, cv: dict[str, np.ndarray], logo: np.ndarray
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    gpus = sorted({r.gpu_name for r in runs})
    panels = [
        ("5-fold CV, PRE (ours)", cv["PRE (ours)"]),
        ("5-fold CV, kernel ridge (paper)", cv["kernel ridge (paper)"]),
        ("leave-one-GPU-out, PRE (ours)", logo),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for ax, (title, pred) in zip(axes, panels, strict=True):
        for gpu in gpus:
            mask = np.array([r.gpu_name == gpu for r in runs])
            ax.scatter(energy[mask] / 1e3, np.maximum(pred[mask], 1.0) / 1e3, s=8, alpha=0.6, label=gpu)
        lim = [energy.min() / 1e3 / 2, energy.max() / 1e3 * 2]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            xlim=lim,
            ylim=lim,
            title=title,
            xlabel="measured per-epoch energy (kJ)",
            ylabel="predicted (kJ)",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pre_predicted_vs_measured.png", dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_gaissa_dir(Path(__file__).resolve().parents[1]))
    parser.add_argument("--plots", type=Path, help="write docs figures into this folder (e.g. docs/img)")
    args = parser.parse_args(argv)
    if not (args.data / "pre_runs.csv").is_file():
        print(f"skipped: GAISSA data not found at {args.data} (set LIGHTNING_ENERGY_GAISSA)")
        return 0
    run_benchmark(args.data, args.plots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
