"""``lightning-energy estimate``: which GPU should I train this on? Ranks GPUs by estimated energy.

The model is given as ``--gflops`` (forward GFLOPs per sample), ``--model module:Class`` or
``--model path/to/file.py:Class`` (built with ``--model-args``), or a LightningCLI ``--config`` (read with
jsonargparse: ``model.class_path``/``init_args``, or the init args of ``--model``). FLOPs and their
conv/matmul split are counted with ``torch.utils.flop_counter`` on a zero batch of ``--input-shape``; token
models (an embedding first) get an integer batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from lightning_energy.errors import EstimationError
from lightning_energy.pre.describe import format_epochs
from lightning_energy.pre.descriptors import PRECISIONS, DataDescriptor, ModelDescriptor, RunDescriptor
from lightning_energy.pre.gpus import gpu_names, lookup_gpu
from lightning_energy.pre.model import Estimate, PreEstimator
from lightning_energy.units import energy_unit, joules_to_kwh, sig

PROG = "lightning-energy estimate"
INPUT_DTYPES = ("auto", "float", "long")
SORT_KEYS = ("energy", "time")
COUNTED = "GPU energy only (the board, as NVML counts it; host CPU, RAM, cooling and PUE not included)"


def add_estimate_parser(subparsers: Any) -> None:
    """Register the ``estimate`` sub-command on an argparse ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "estimate",
        help="estimate a training run's energy on one or several GPUs, cheapest first",
        description="Estimate per-epoch time, power and energy of a run on GPUs of the table, offline, "
        "and rank the GPUs by energy (GPU energy only; 90% intervals; see docs/pre.md).",
    )
    p.add_argument(
        "--model",
        help="module:Class or path/to/file.py:Class of an nn.Module / LightningModule (with --model-args)",
    )
    p.add_argument(
        "--config",
        help="LightningCLI YAML config: model.class_path/init_args (or the init args of --model)",
    )
    p.add_argument(
        "--gflops",
        type=float,
        help="forward GFLOPs per sample, instead of counting them; FLOPs, 2 per multiply-accumulate "
        "(ResNet-50 at 224 px: 8.2 GFLOPs = 4.1 GMACs; a figure quoted in MACs or 'multiply-adds' must "
        "be doubled)",
    )
    p.add_argument("--model-args", default="{}", help="JSON object of keyword arguments for --model")
    p.add_argument("--input-shape", required=True, help="shape of one sample, e.g. 3,224,224 or 384 (tokens)")
    p.add_argument(
        "--input-dtype",
        choices=INPUT_DTYPES,
        default="auto",
        help="dtype of the zero batch: float, long (token ids), or auto (float, else long)",
    )
    p.add_argument(
        "--conv-fraction",
        type=float,
        help="share of the FLOPs in convolutions (default: counted, or from the input shape with --gflops)",
    )
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--train-samples", type=int, required=True)
    p.add_argument("--val-samples", type=int, default=0)
    p.add_argument("--epochs", type=float, required=True)
    p.add_argument("--precision", default="32-true", help=f"one of {PRECISIONS} (or 32/16/bf16)")
    p.add_argument(
        "--tf32",
        action="store_true",
        help="FP32 matmuls run on TF32 tensor cores (torch.set_float32_matmul_precision('high'); "
        "PyTorch's default is off)",
    )
    p.add_argument("--host-ram-gb", type=float, default=32.0)
    p.add_argument("--gpu", action="append", help="GPU of the table or NVML name (repeatable; default: all)")
    p.add_argument("--coefficients", help="fitted coefficients JSON (default: the shipped ones)")
    p.add_argument(
        "--sort",
        choices=SORT_KEYS,
        default="energy",
        help="rank by per-epoch GPU energy (default) or by epoch time",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_estimate)


def run_estimate(args: argparse.Namespace) -> int:
    """Print the ranking; 0 on success, 2 with a one-line message on stderr for bad input."""
    try:
        model, data, estimates = _estimate(args)
    except EstimationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    ranked = rank(estimates, getattr(args, "sort", "energy"))
    try:
        _check_finite(ranked, args.epochs)
    except EstimationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(_json(model, ranked, args.epochs) if args.json else _table(model, data, ranked, args.epochs))
    return 0


def _check_finite(ranked: list[Estimate], epochs: float) -> None:
    """Every figure to print is a finite number, else ``EstimationError`` saying which overflowed."""
    for e in ranked:
        figures = (e.epoch_energy_j, e.power_w, e.epoch_seconds, e.log_sigma, e.total_j(epochs))
        if not all(math.isfinite(v) for v in (*figures, *e.total_interval_j(epochs))):
            raise EstimationError(
                f"the estimate on {e.gpu_name} is not a finite number (--epochs {epochs:g} and the model's "
                "figures overflow, or the coefficients are damaged)"
            )


def rank(estimates: list[Estimate], sort: str = "energy") -> list[Estimate]:
    """Estimates cheapest first (``energy``) or fastest first (``time``)."""
    if sort not in SORT_KEYS:
        raise EstimationError(f"sort must be one of {SORT_KEYS}, got {sort!r}")
    if sort == "time":
        return sorted(estimates, key=lambda e: (e.epoch_seconds, e.epoch_energy_j))
    return sorted(estimates, key=lambda e: (e.epoch_energy_j, e.epoch_seconds))


def within_uncertainty(ranked: list[Estimate]) -> list[Estimate]:
    """The first GPU and every other whose 90 % energy interval overlaps its interval (not decided)."""
    if not ranked:
        return []
    top = ranked[0]
    return [e for e in ranked if e is top or (e.low_j <= top.high_j and top.low_j <= e.high_j)]


def _estimate(args: argparse.Namespace) -> tuple[ModelDescriptor, DataDescriptor, list[Estimate]]:
    if not math.isfinite(args.epochs) or args.epochs <= 0:
        raise EstimationError(f"--epochs must be > 0, got {args.epochs}")
    given = [name for name in ("gflops", "model", "config") if getattr(args, name)]
    if not given:
        raise EstimationError("give the model as --gflops, --model or --config")
    if args.gflops is not None and len(given) > 1:
        raise EstimationError("--gflops cannot be combined with --model or --config")
    shape = _parse_shape(args.input_shape)
    data = DataDescriptor(args.batch_size, args.train_samples, args.val_samples)
    model = _model_descriptor(args, shape)
    gpus = [lookup_gpu(name) for name in (args.gpu or gpu_names())]
    estimator = PreEstimator.load(args.coefficients) if args.coefficients else PreEstimator.default()
    descriptors = [RunDescriptor(model, data, gpu, host_ram_gb=args.host_ram_gb) for gpu in gpus]
    return model, data, estimator.predict_many(descriptors)


def _parse_shape(text: str) -> tuple[int, ...]:
    """``3,224,224`` or ``3x224x224``; every part must be an integer > 0 (no empty or other parts)."""
    parts = [part.strip() for part in re.split(r"[,x]", text.strip().strip("()[]"))]
    if not parts or not all(re.fullmatch(r"[0-9]+", part) for part in parts):
        raise EstimationError(
            f"--input-shape must be integers > 0 separated by commas (3,224,224), got {text!r}"
        )
    shape = tuple(int(part) for part in parts)
    if min(shape) <= 0:
        raise EstimationError(f"--input-shape must be integers > 0, got {text!r}")
    return shape


def import_class(spec: str) -> Any:
    """``module:Class``, ``module.Class`` or ``path/to/file.py:Class`` (a ``.py`` file is loaded by path;
    a module that is not importable but is a file of the current directory is loaded from there)."""
    target, sep, class_name = spec.rpartition(":")
    if not sep:
        target, _, class_name = spec.rpartition(".")
    if not target or not class_name:
        raise EstimationError(f"--model must look like module:Class or path/to/file.py:Class, got {spec!r}")
    path = Path(target)
    if path.suffix != ".py":
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            local = Path(*target.split(".")).with_suffix(".py")
            if exc.name != target.split(".")[0] or not local.is_file():
                raise EstimationError(f"--model: cannot import {target!r}: {exc}") from exc
            path = local
        except Exception as exc:  # the user's module raised on import ("needs CUDA"): one line
            raise EstimationError(f"--model: importing {target!r} failed: {exc!r}") from exc
        else:
            return _get_class(module, class_name, spec)
    if not path.is_file():
        raise EstimationError(f"--model: no such file {str(path)!r}")
    module_name = f"_lightning_energy_model_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise EstimationError(f"--model: cannot load {str(path)!r} as a Python file")
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # the file may import its sibling modules, as `python file.py` allows
        sys.path.insert(0, folder)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error is a one-line message, not a traceback
        raise EstimationError(f"--model: importing {str(path)!r} failed: {exc!r}") from exc
    return _get_class(module, class_name, spec, str(path))


def _get_class(module: Any, class_name: str, spec: str, where: str | None = None) -> Any:
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        place = where if where is not None else module.__name__
        raise EstimationError(f"--model: {spec!r}: no {class_name!r} in {place!r}") from exc


def _model_from_config(args: argparse.Namespace) -> Any:
    """The model of a LightningCLI config, instantiated by jsonargparse."""
    import torch
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    if args.model:
        parser.add_class_arguments(import_class(args.model), "model")
    else:
        parser.add_subclass_arguments(torch.nn.Module, "model", required=True)
    for key in ("seed_everything", "trainer", "data", "optimizer", "lr_scheduler", "ckpt_path"):
        parser.add_argument(f"--{key}", type=Any, default=None)  # other LightningCLI sections: ignored
    try:
        config = parser.parse_path(args.config)
        return parser.instantiate_classes(config).model
    except Exception as exc:  # jsonargparse and the user's __init__: one line, no traceback
        raise EstimationError(f"--config {args.config!r}: {exc}".splitlines()[0]) from exc


def _build_model(args: argparse.Namespace) -> Any:
    if args.config:
        return _model_from_config(args)
    try:
        kwargs = json.loads(args.model_args)
    except ValueError as exc:
        raise EstimationError(f"--model-args must be a JSON object, got {args.model_args!r}") from exc
    if not isinstance(kwargs, dict):
        raise EstimationError(f"--model-args must be a JSON object, got {args.model_args!r}")
    cls = import_class(args.model)
    try:
        return cls(**kwargs)
    except Exception as exc:  # the user's __init__
        raise EstimationError(f"--model: {args.model}(**{kwargs}) failed: {exc!r}") from exc


def _model_descriptor(args: argparse.Namespace, shape: tuple[int, ...]) -> ModelDescriptor:
    conv = args.conv_fraction
    if conv is not None and not 0.0 <= conv <= 1.0:
        raise EstimationError(f"--conv-fraction must be in [0, 1], got {conv}")
    if args.gflops is not None:
        if not math.isfinite(args.gflops) or args.gflops <= 0:
            raise EstimationError(f"--gflops must be > 0, got {args.gflops}")
        return ModelDescriptor(
            args.gflops * 1e9,
            shape,
            precision=args.precision,
            conv_flop_fraction=conv,
            matmul_tf32=args.tf32,
        )
    import torch

    from lightning_energy.pre.describe import describe_model

    module = _build_model(args)
    dtypes = {"auto": (torch.float32, torch.long), "float": (torch.float32,), "long": (torch.long,)}
    errors: list[str] = []
    for dtype in dtypes[args.input_dtype]:
        try:
            model = describe_model(module, torch.zeros((1, *shape), dtype=dtype), precision=args.precision)
        except EstimationError:
            raise
        except Exception as exc:  # the user's forward
            kind = "float" if dtype.is_floating_point else "integer (token ids)"
            errors.append(f"on a zero {kind} batch: {_one_line(exc)}")
            continue
        # TF32 is the user's training setting (--tf32), not this process's.
        return dataclasses.replace(
            model,
            matmul_tf32=args.tf32,
            conv_flop_fraction=model.conv_flop_fraction if conv is None else conv,
        )
    shown = ", ".join(str(s) for s in (1, *shape))
    raise EstimationError(
        f"the model's forward failed for --input-shape {args.input_shape} (batch shape ({shown})) "
        + "; and ".join(errors)
        + "; check --input-shape (one sample, without the batch dimension) and --input-dtype"
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def format_flops(flops: float) -> str:
    """FLOPs with an SI prefix and 3 significant figures (``8.18 GFLOPs``)."""
    for prefix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if flops >= scale:
            return f"{sig(flops / scale)} {prefix}FLOPs"
    return f"{sig(flops)} FLOPs"


def _duration_unit(max_s: float) -> tuple[str, float]:
    if max_s >= 3600 * 10:
        return "h", 3600.0
    if max_s >= 600:
        return "min", 60.0
    return "s", 1.0


def _table(model: ModelDescriptor, data: DataDescriptor, ranked: list[Estimate], epochs: float) -> str:
    family = f"{sig(100 * model.conv_share)}% conv FLOPs"
    if model.precision == "32-true" and model.conv_share < 1.0:
        family += ", TF32 matmuls " + ("on" if model.matmul_tf32 else "off (--tf32 if you enable them)")
    lines = [
        f"model: {format_flops(model.forward_flops_per_sample)}/sample forward, input "
        f"{model.input_shape}, {model.precision}, {family}; batch {data.batch_size}, "
        f"{data.train_samples} train + {data.val_samples} val samples, {format_epochs(epochs)} epochs",
    ]
    t_unit, t_scale = _duration_unit(max(e.epoch_seconds for e in ranked))
    epoch_in, total_in = (
        energy_unit(max(e.epoch_energy_j for e in ranked)),
        energy_unit(max(e.total_j(epochs) for e in ranked)),
    )
    e_unit, e_scale = epoch_in.name, epoch_in.joules
    total_unit, total_scale = total_in.name, total_in.joules
    header = (
        f"{'rank':>4}  {'GPU':<16} {'epoch ' + t_unit:>10} {'power W':>8} {'epoch ' + e_unit:>10} "
        f"{'total ' + total_unit:>10} {'90% interval ' + total_unit:>22}  {'bound':<9}  {'board':<11}  "
        "speed from"
    )
    lines.append(header)
    for rank, e in enumerate(ranked, start=1):
        low, high = e.total_interval_j(epochs)
        interval = f"{sig(low / total_scale)} to {sig(high / total_scale)}"
        lines.append(
            f"{rank:>4}  {e.gpu_name:<16} {sig(e.epoch_seconds / t_scale):>10} {sig(e.power_w):>8} "
            f"{sig(e.epoch_energy_j / e_scale):>10} {sig(e.total_j(epochs) / total_scale):>10} "
            f"{interval:>22}  {_bound(e):<9}  {e.board_class or '-':<11}  {e.speed_source}"
        )
    lines.extend(_notes(ranked))
    return "\n".join(lines)


def _bound(e: Estimate) -> str:
    """``compute``, ``bandwidth`` or ``host`` (what the run is predicted to be bound by)."""
    return (e.regime or "-").removesuffix("-bound")


_WHY = {
    "compute-bound": "its kernels are bound by FLOP/s, so the GPU with the most FLOP/s per watt wins",
    "bandwidth-bound": "its kernels are bound by memory traffic, so the GPU with the most bytes/s per watt "
    "wins",
    "host-bound": "the GPU waits on loading, launches and Python (about the same time on every GPU), so the "
    "lowest power wins",
}


def why(ranked: list[Estimate]) -> str:
    """One line on why the first GPU of an energy ranking comes first."""
    top = ranked[0]
    text = f"why {top.gpu_name}: {sig(top.power_w)} W for {_duration(top.epoch_seconds)} per epoch"
    if len(ranked) > 1:
        second = ranked[1]
        saving = 100.0 * (1.0 - top.epoch_energy_j / second.epoch_energy_j)
        text += (
            f" vs {second.gpu_name}'s {sig(second.power_w)} W for {_duration(second.epoch_seconds)}"
            f" ({sig(saving)}% less energy)"
        )
    if top.regime in _WHY:
        text += f"; the run is {top.regime}: {_WHY[top.regime]}"
    return text + "."


def _duration(seconds: float) -> str:
    unit, scale = _duration_unit(seconds)
    return f"{sig(seconds / scale)} {unit}"


def _notes(ranked: list[Estimate]) -> list[str]:
    by_energy = rank(ranked, "energy")
    close = within_uncertainty(by_energy)
    lines = [why(by_energy), f"counted: {COUNTED}."]
    if len(ranked) > 1 and len(close) > 1:
        names = ", ".join(e.gpu_name for e in close)
        lines.append(
            f"not decided: these {len(close)} are within the uncertainty (their 90% energy intervals overlap "
            f"the cheapest's): {names}. A run history on your machines narrows this (docs/pre.md)."
        )
    elif len(ranked) > 1:
        lines.append(f"decided: {by_energy[0].gpu_name}'s 90% energy interval overlaps no other GPU's.")
    return lines


def _json(model: ModelDescriptor, ranked: list[Estimate], epochs: float) -> str:
    rows = [
        {
            **e.to_dict(),
            "total_j": e.total_j(epochs),
            "total_kwh": joules_to_kwh(e.total_j(epochs)),
            "total_low_j": e.total_interval_j(epochs)[0],
            "total_high_j": e.total_interval_j(epochs)[1],
        }
        for e in ranked
    ]
    return json.dumps(
        {
            "model_gflops": model.forward_flops_per_sample / 1e9,
            "conv_flop_fraction": model.conv_share,
            "epochs": epochs,
            "counted": COUNTED,
            "within_uncertainty": [e.gpu_name for e in within_uncertainty(rank(ranked, "energy"))],
            "why": why(rank(ranked, "energy")),
            "runs": rows,
        },
        indent=1,
        allow_nan=False,
    )
