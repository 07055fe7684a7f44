"""Memory traffic of GAISSA's six Keras architectures, counted on torch re-implementations (meta tensors).

Research tooling (not part of the runtime package). GAISSA publishes the forward GFLOPs of each run but not
the bytes its layers move; this script writes them as **bytes per FLOP by op class** at each input size
(``tools/gaissa_traffic.json``), which ``tools/gaissa.py`` multiplies by the published GFLOPs. The models
follow the Keras applications' architectures (without the classification head, as the runs replace it):

* ``vgg16``, ``resnet50``, ``xception``: the published layer lists;
* ``mobilenet_v2``: the published layer list at width multiplier ``alpha = 0.5``, as GAISSA trained it
  (``MobileNetV2(..., alpha=0.5)`` in the authors' ``seaa2023_ect/src/models/train_model.py``; its published
  0.064 GFLOPs at 128 px are the 0.5-width model's, the full-width model has 0.196): channels
  ``_make_divisible(c x alpha, 8)``, the last 1x1 convolution keeps 1280;
* ``inception_v3``: the published blocks (A x3, B, C x4, D, E x2) with their branch widths;
* ``nasnet_mobile``: **approximate**: NASNet-A Mobile's layout (stem, 2 reduction stem cells, 3 stages of
  4 normal cells with 44/88/176 filters and 2 reduction cells), each cell as 1x1 input convolutions, its
  five separable-convolution / pooling / identity pairs (separable convolutions applied twice, as in
  NASNet) and a 6-way concatenation; the exact pairings of NASNet-A are simplified.

Run: ``python tools/gaissa_models.py`` (about a minute).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lightning_energy.pre.describe import TRAFFIC_CLASSES, count_traffic  # noqa: E402
from tools.lambda_workloads import resnet50_layers  # noqa: E402

OUT = REPO / "tools" / "gaissa_traffic.json"
SIZES = {"inception_v3": (75, 128, 224)}
DEFAULT_SIZES = (128,)


def conv_bn(inp: int, out: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def sep(inp: int, out: int, k: int = 3, s: int = 1) -> nn.Sequential:
    """Separable convolution: depthwise k x k then pointwise, BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, k, s, k // 2, groups=inp, bias=False),
        nn.Conv2d(inp, out, 1, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU(),
    )


def vgg16() -> nn.Module:
    layers: list[nn.Module] = []
    inp = 3
    for width, count in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(count):
            layers += [nn.Conv2d(inp, width, 3, padding=1), nn.ReLU()]
            inp = width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        layers: list[nn.Module] = [conv_bn(inp, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, out, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


#: MobileNetV2's width multiplier in GAISSA's runs (see the module docstring).
MOBILENET_ALPHA = 0.5


def make_divisible(value: float, divisor: int = 8) -> int:
    """Keras' channel rounding for MobileNet widths."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2(alpha: float = MOBILENET_ALPHA) -> nn.Module:
    first = make_divisible(32 * alpha)
    layers: list[nn.Module] = [conv_bn(3, first, 3, 2)]
    inp = first
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for i in range(n):
            out = make_divisible(c * alpha)
            layers.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
            inp = out
    layers.append(conv_bn(inp, 1280, 1))
    return nn.Sequential(*layers)


class XBlock(nn.Module):
    def __init__(self, inp: int, out: int, reps: int, stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(reps):
            layers.append(sep(inp if i == 0 else out, out))
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.body = nn.Sequential(*layers)
        self.skip = conv_bn(inp, out, 1, stride, act=False) if stride != 1 or inp != out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + (x if self.skip is None else self.skip(x))


def xception() -> nn.Module:
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2), conv_bn(32, 64, 3)]
    layers += [XBlock(64, 128, 2, 2), XBlock(128, 256, 2, 2), XBlock(256, 728, 2, 2)]
    layers += [XBlock(728, 728, 3, 1) for _ in range(8)]
    layers += [XBlock(728, 1024, 2, 2), sep(1024, 1536), sep(1536, 2048)]
    return nn.Sequential(*layers)


class Branches(nn.Module):
    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


def _c(
    inp: int, out: int, k: int | tuple[int, int] = 1, s: int = 1, p: int | tuple[int, int] = 0
) -> nn.Module:
    return nn.Sequential(nn.Conv2d(inp, out, k, s, p, bias=False), nn.BatchNorm2d(out), nn.ReLU())


def inception_v3() -> nn.Module:
    def block_a(inp: int, pool: int) -> nn.Module:
        return Branches(
            _c(inp, 64),
            nn.Sequential(_c(inp, 48), _c(48, 64, 5, p=2)),
            nn.Sequential(_c(inp, 64), _c(64, 96, 3, p=1), _c(96, 96, 3, p=1)),
            nn.Sequential(nn.AvgPool2d(3, 1, 1), _c(inp, pool)),
        )

    def block_c(inp: int, mid: int) -> nn.Module:
        return Branches(
            _c(inp, 192),
            nn.Sequential(_c(inp, mid), _c(mid, mid, (1, 7), p=(0, 3)), _c(mid, 192, (7, 1), p=(3, 0))),
            nn.Sequential(
                _c(inp, mid),
                _c(mid, mid, (7, 1), p=(3, 0)),
                _c(mid, mid, (1, 7), p=(0, 3)),
                _c(mid, mid, (7, 1), p=(3, 0)),
                _c(mid, 192, (1, 7), p=(0, 3)),
            ),
            nn.Sequential(nn.AvgPool2d(3, 1, 1), _c(inp, 192)),
        )

    def block_e(inp: int) -> nn.Module:
        return Branches(
            _c(inp, 320),
            nn.Sequential(
                _c(inp, 384), Branches(_c(384, 384, (1, 3), p=(0, 1)), _c(384, 384, (3, 1), p=(1, 0)))
            ),
            nn.Sequential(
                _c(inp, 448),
                _c(448, 384, 3, p=1),
                Branches(_c(384, 384, (1, 3), p=(0, 1)), _c(384, 384, (3, 1), p=(1, 0))),
            ),
            nn.Sequential(nn.AvgPool2d(3, 1, 1), _c(inp, 192)),
        )

    return nn.Sequential(
        _c(3, 32, 3, 2),
        _c(32, 32, 3),
        _c(32, 64, 3, p=1),
        nn.MaxPool2d(3, 2),
        _c(64, 80),
        _c(80, 192, 3),
        nn.MaxPool2d(3, 2),
        block_a(192, 32),
        block_a(256, 64),
        block_a(288, 64),
        Branches(
            _c(288, 384, 3, 2),
            nn.Sequential(_c(288, 64), _c(64, 96, 3, p=1), _c(96, 96, 3, 2)),
            nn.MaxPool2d(3, 2),
        ),
        block_c(768, 128),
        block_c(768, 160),
        block_c(768, 160),
        block_c(768, 192),
        Branches(
            nn.Sequential(_c(768, 192), _c(192, 320, 3, 2)),
            nn.Sequential(
                _c(768, 192),
                _c(192, 192, (1, 7), p=(0, 3)),
                _c(192, 192, (7, 1), p=(3, 0)),
                _c(192, 192, 3, 2),
            ),
            nn.MaxPool2d(3, 2),
        ),
        block_e(1280),
        block_e(2048),
    )


class NasCell(nn.Module):
    """A simplified NASNet-A cell (see the module docstring): 5 pairs of ops, 6-way concatenation."""

    def __init__(self, inp: int, filters: int, stride: int) -> None:
        super().__init__()
        self.squeeze = conv_bn(inp, filters, 1)

        def sep2(k: int) -> nn.Module:
            return nn.Sequential(sep(filters, filters, k, stride), sep(filters, filters, k))

        def pool() -> nn.Module:
            return nn.AvgPool2d(3, stride, 1, count_include_pad=False)

        def ident() -> nn.Module:
            return nn.Identity() if stride == 1 else nn.AvgPool2d(1, stride)

        self.pairs = nn.ModuleList(
            nn.ModuleList(pair)
            for pair in (
                (sep2(5), sep2(3)),
                (sep2(5), sep2(3)),
                (pool(), ident()),
                (pool(), pool()),
                (sep2(3), ident()),
            )
        )
        self.keep = ident()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.squeeze(x)
        outs = [self.keep(h)] + [a(h) + b(h) for a, b in self.pairs]
        return torch.cat(outs, 1)


def nasnet_mobile() -> nn.Module:
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2), NasCell(32, 11, 2), NasCell(66, 22, 2)]
    inp = 132
    for stage, filters in enumerate((44, 88, 176)):
        if stage > 0:
            layers.append(NasCell(inp, filters, 2))
            inp = 6 * filters
        for _ in range(4):
            layers.append(NasCell(inp, filters, 1))
            inp = 6 * filters
    return nn.Sequential(*layers)


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "vgg16": vgg16,
    "resnet50": lambda: resnet50_layers(),
    "mobilenet_v2": lambda: mobilenet_v2(),
    "xception": xception,
    "inception_v3": inception_v3,
    "nasnet_mobile": nasnet_mobile,
}


def per_flop(name: str, size: int) -> dict[str, float]:
    """Forward activation bytes per forward FLOP by op class at ``size`` px (batch 4 minus batch 2)."""
    with torch.device("meta"):
        module = ARCHITECTURES[name]()
    small, large = (torch.zeros(b, 3, size, size, device="meta") for b in (2, 4))
    flops = []
    for x in (small, large):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module.eval()
            module(x)
        flops.append(float(counter.get_total_flops()))
    a, b = count_traffic(module, small), count_traffic(module, large)
    flop = flops[1] - flops[0]
    with torch.no_grad():
        features = module(torch.zeros(1, 3, size, size, device="meta")).numel()
    return {k: (b.activation_bytes[k] - a.activation_bytes[k]) / flop for k in TRAFFIC_CLASSES} | {
        "forward_gflops": flop / 2 / 1e9,
        "forward_kernels": float(b.kernels),
        "parameter_count": float(sum(p.numel() for p in module.parameters())),
        "output_features": float(features),
    }


def main() -> int:
    table = {
        "_about": "Forward activation bytes per forward FLOP by op class (FP32-counted) of GAISSA's "
        "architectures "
        "at each input size, from torch re-implementations on meta tensors by tools/gaissa_models.py "
        "(nasnet_mobile approximate; mobilenet_v2 at width 0.5); forward_gflops is the re-implementation's "
        "own count (check); output_features: the base's output elements per sample (the head's input).",
        "architectures": {
            name: {str(s): per_flop(name, s) for s in SIZES.get(name, DEFAULT_SIZES)}
            for name in ARCHITECTURES
        },
    }
    OUT.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    for name, sizes in table["architectures"].items():
        for size, v in sizes.items():
            total = sum(v[k] for k in TRAFFIC_CLASSES)
            print(
                f"{name:<14} {size:>4} px  {v['forward_gflops']:8.3f} GFLOPs  {total:.4f} B/FLOP  "
                f"params {v['parameter_count']:.3g}"
            )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
