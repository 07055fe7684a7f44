"""``lightning-energy estimate``: which GPU should I train this on? Ranks GPUs by total energy."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

from lightning_energy.errors import EstimationError
from lightning_energy.pre.descriptors import PRECISIONS, DataDescriptor, ModelDescriptor, RunDescriptor
from lightning_energy.pre.gpus import gpu_names, lookup_gpu
from lightning_energy.pre.model import PreEstimator


def add_estimate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``estimate`` sub-command."""
    p = subparsers.add_parser(
        "estimate",
        help="estimate a training run's energy on one or several GPUs, cheapest first",
        description="Estimate per-epoch time, energy and total kWh of a run on GPUs of the table (offline).",
    )
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--model", help="module:Class of an nn.Module / LightningModule (built with --model-args)"
    )
    model.add_argument("--config", help="LightningCLI YAML config with model.class_path / model.init_args")
    model.add_argument("--gflops", type=float, help="forward GFLOPs per sample, instead of counting them")
    p.add_argument("--model-args", default="{}", help="JSON dict of keyword arguments for --model")
    p.add_argument("--input-shape", required=True, help="shape of one sample, e.g. 3,224,224")
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--train-samples", type=int, required=True)
    p.add_argument("--val-samples", type=int, default=0)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--precision", default="32-true", help=f"one of {PRECISIONS}")
    p.add_argument("--host-ram-gb", type=float, default=32.0)
    p.add_argument(
        "--gpu", action="append", help=f"GPU of the table (repeatable; default all): {gpu_names()}"
    )
    p.add_argument("--coefficients", help="fitted coefficients JSON (default: the shipped ones)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_estimate)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError as exc:
        raise EstimationError(f"--input-shape must be integers separated by commas, got {text!r}") from exc
    if not shape or min(shape) <= 0:
        raise EstimationError(f"--input-shape must be integers > 0, got {text!r}")
    return shape


def _import_class(path: str) -> Any:
    if ":" in path:
        module_name, _, class_name = path.partition(":")
    else:
        module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise EstimationError(f"--model must look like package.module:Class, got {path!r}")
    if os.getcwd() not in sys.path:  # like `python -m`, find modules of the current directory
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EstimationError(f"--model: cannot import {class_name!r} from {module_name!r}: {exc}") from exc


def _build_model(args: argparse.Namespace) -> Any:
    if args.config:
        import yaml

        with open(args.config, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
        spec = config.get("model") or {}
        if "class_path" not in spec:
            raise EstimationError(f"--config {args.config!r} has no model.class_path")
        return _import_class(spec["class_path"])(**(spec.get("init_args") or {}))
    kwargs = json.loads(args.model_args)
    if not isinstance(kwargs, dict):
        raise EstimationError(f"--model-args must be a JSON object, got {args.model_args!r}")
    return _import_class(args.model)(**kwargs)


def _model_descriptor(args: argparse.Namespace, shape: tuple[int, ...]) -> ModelDescriptor:
    if args.gflops is not None:
        if args.gflops <= 0:
            raise EstimationError(f"--gflops must be > 0, got {args.gflops}")
        return ModelDescriptor(args.gflops * 1e9, shape, precision=args.precision)
    import torch

    from lightning_energy.pre.describe import describe_model

    module = _build_model(args)
    dummy = torch.zeros((1, *shape))
    return describe_model(module, dummy, precision=args.precision)


def run_estimate(args: argparse.Namespace) -> int:
    """Print the ranking; returns the exit status (2 on bad input)."""
    try:
        if args.epochs < 1:
            raise EstimationError(f"--epochs must be >= 1, got {args.epochs}")
        shape = _parse_shape(args.input_shape)
        data = DataDescriptor(args.batch_size, args.train_samples, args.val_samples)
        model = _model_descriptor(args, shape)
        gpus = [lookup_gpu(name) for name in (args.gpu or gpu_names())]
        estimator = PreEstimator.load(args.coefficients) if args.coefficients else PreEstimator.default()
        descriptors = [RunDescriptor(model, data, gpu, host_ram_gb=args.host_ram_gb) for gpu in gpus]
        estimates = estimator.predict_many(descriptors)
    except EstimationError as exc:
        print(f"lightning-energy estimate: error: {exc}", file=sys.stderr)
        return 2
    ranked = sorted(estimates, key=lambda e: e.epoch_energy_j)
    if args.json:
        rows = [{**e.to_dict(), "total_kwh": e.total_j(args.epochs) / 3.6e6} for e in ranked]
        print(json.dumps({"model_gflops": model.forward_flops_per_sample / 1e9, "runs": rows}, indent=1))
        return 0
    print(
        f"model: {model.forward_flops_per_sample / 1e9:.4g} GFLOPs/sample forward, input {shape}, "
        f"{model.precision}; batch {data.batch_size}, {data.train_samples} train + {data.val_samples} val "
        f"samples, "
        f"{args.epochs} epochs"
    )
    print(
        f"{'GPU':<12} {'epoch s':>9} {'epoch kJ':>9} {'power W':>8} {'total kWh':>10} "
        f"{'90% interval kWh':>20}"
    )
    for e in ranked:
        low, high = e.total_interval_j(args.epochs)
        print(
            f"{e.gpu_name:<12} {e.epoch_seconds:>9.1f} {e.epoch_energy_j / 1e3:>9.2f} {e.power_w:>8.0f} "
            f"{e.total_j(args.epochs) / 3.6e6:>10.4f} {f'{low / 3.6e6:.4f}-{high / 3.6e6:.4f}':>20}"
        )
    return 0
