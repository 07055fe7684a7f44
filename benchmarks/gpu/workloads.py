"""Training workloads for the GPU validation runs, on synthetic data (no downloads, no torchvision needed).

Every workload trains on a fixed synthetic batch kept on the device, so the run measures the GPU, not an input
pipeline: the loader (:func:`loader`) has the real batch size and sample count and yields the same CPU batch
every step, and the module's ``transfer_batch_to_device`` swaps it for its copy already on the device (no copy
per step). PRE, which describes the fit from the loader and one batch, sees an ordinary run. ``tiny=True``
shrinks everything for a CPU smoke run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

#: name -> the regime it stands for (the PRE model tells conv from matmul work, fp32 from bf16, and GPU-bound
#: from host-bound steps; STEP tells a steady level from a planned step)
WORKLOADS = {
    "resnet50": "compute-bound CNN: ResNet-50, fp32 (TF32 convolutions), 224², batch 128",
    "transformer_bf16": "transformer in bf16: decoder LM, d=768, 12 layers, seq 512, batch 32, vocab 32k",
    "mobilenet_v2": "bandwidth-bound CNN: MobileNetV2 (depthwise convolutions), fp32, 224², batch 256",
    "finetune": "planned power step: ResNet-18 fp32, 224², batch 256, backbone frozen until an epoch",
    "mlp": "short steps (the callback's worst case): 4 x 4096 MLP, fp32, batch 1024",
}


# ----------------------------------------------------------------------------------------- compact ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.short = _shortcut(in_ch, ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int) -> None:
        super().__init__()
        out_ch = ch * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, stride, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.short = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class ResNet(nn.Module):
    """torchvision-equivalent layout (ResNet-18: BasicBlock [2,2,2,2]; ResNet-50: Bottleneck [3,4,6,3])."""

    def __init__(
        self, block: type[BasicBlock | Bottleneck], layers: list[int], classes: int, width: int = 64
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        in_ch = width
        for i, n in enumerate(layers):
            ch = width * 2**i
            for j in range(n):
                stages.append(block(in_ch, ch, 2 if (j == 0 and i > 0) else 1))
                in_ch = ch * block.expansion
        self.features = nn.Sequential(*stages)
        self.head = nn.Linear(in_ch, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet(depth: int, classes: int, width: int = 64, *, tiny: bool = False) -> ResNet:
    """ResNet-18 or -50; ``tiny``: one block per stage (a CPU dry run)."""
    if depth not in (18, 50):
        raise ValueError(f"depth must be 18 or 50, got {depth!r}")
    layers = [1, 1, 1, 1] if tiny else ([2, 2, 2, 2] if depth == 18 else [3, 4, 6, 3])
    return ResNet(BasicBlock if depth == 18 else Bottleneck, layers, classes, width)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise convolution, 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [
                nn.Conv2d(in_ch, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),  # depthwise
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)  # type: ignore[no-any-return]


def mobilenet_v2(classes: int, width: float = 1.0, *, tiny: bool = False) -> nn.Module:
    """torchvision-equivalent MobileNetV2 layout (expansion, channels, repeats, stride); ``tiny``: the first
    two groups, a quarter of the width (a CPU dry run)."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2)]
    settings.append((6, 320, 1, 1))
    if tiny:
        settings, width = settings[:2], width / 4

    def ch(c: int) -> int:
        return max(4, int(c * width + 2) // 4 * 4)

    in_ch = ch(32)
    layers: list[nn.Module] = [nn.Conv2d(3, in_ch, 3, 2, 1, bias=False), nn.BatchNorm2d(in_ch), nn.ReLU6()]
    for expand, channels, repeats, stride in settings:
        for i in range(repeats):
            layers.append(InvertedResidual(in_ch, ch(channels), stride if i == 0 else 1, expand))
            in_ch = ch(channels)
    last = ch(1280)
    layers += [nn.Conv2d(in_ch, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, classes)]
    return nn.Sequential(*layers)


class TinyLM(nn.Module):
    """A decoder-only transformer LM (pre-norm encoder layers with a causal mask)."""

    def __init__(self, vocab: int, d_model: int, layers: int, heads: int, seq: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(torch.zeros(seq, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        return self.head(self.blocks(x, mask=self.mask, is_causal=True))


# ----------------------------------------------------------------------------------------- Lightning glue
class SampleIndices(Dataset[int]):
    """``samples`` sample indices, fetched a batch at a time (one call per batch, not one per sample)."""

    def __init__(self, samples: int) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> int:
        return index

    def __getitems__(self, indices: list[int]) -> list[int]:
        return indices


class SyntheticModule(pl.LightningModule):
    """Trains ``model`` on a fixed synthetic batch; optionally freezes ``frozen`` until ``unfreeze_epoch``."""

    inputs: torch.Tensor  # buffers, declared for the type checker
    targets: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        lm: bool = False,
        frozen: nn.Module | None = None,
        unfreeze_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("inputs", inputs, persistent=False)
        self.register_buffer("targets", targets, persistent=False)
        self.lm = lm
        self.frozen = frozen
        self.unfreeze_epoch = unfreeze_epoch
        if frozen is not None:
            frozen.requires_grad_(False)

    def on_train_epoch_start(self) -> None:
        if self.frozen is not None and self.current_epoch == self.unfreeze_epoch:
            self.frozen.requires_grad_(True)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model: what PRE runs once to count FLOPs."""
        return self.model(inputs)  # type: ignore[no-any-return]

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return self.inputs  # the loader's CPU batch has its copy on the device already

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        out = self.model(batch)
        if self.lm:
            return nn.functional.cross_entropy(out.flatten(0, 1), self.targets.flatten())
        return nn.functional.cross_entropy(out, self.targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=1e-4)


@dataclass
class Workload:
    name: str
    module: SyntheticModule
    precision: str
    descriptor: dict[str, object]
    example_inputs: torch.Tensor  # the synthetic batch, on the CPU


def build_workload(
    name: str, *, tiny: bool = False, unfreeze_epoch: int | None = None, seed: int = 0
) -> Workload:
    """The named workload; ``tiny`` for CPU dry runs. ``finetune`` trains its backbone from
    ``unfreeze_epoch`` on (0: from the start, as the probe does); the others take no ``unfreeze_epoch``."""
    if name not in WORKLOADS:
        raise ValueError(f"name must be one of {tuple(WORKLOADS)}, got {name!r}")
    if (name == "finetune") != (unfreeze_epoch is not None):
        raise ValueError(f"unfreeze_epoch is for finetune only and required there, got {unfreeze_epoch!r}")
    if unfreeze_epoch is not None and unfreeze_epoch < 0:
        raise ValueError(f"unfreeze_epoch must be >= 0, got {unfreeze_epoch!r}")
    generator = torch.Generator().manual_seed(seed)
    image = 16 if tiny else 224
    classes = 10 if tiny else 1000
    precision = "32-true"
    lm = False
    frozen: nn.Module | None = None
    descriptor: dict[str, object] = {"workload": name, "regime": WORKLOADS[name], "synthetic_data": True}
    if name in ("resnet50", "finetune", "mobilenet_v2"):
        if name == "mobilenet_v2":
            batch = 4 if tiny else 256
            model: nn.Module = mobilenet_v2(classes, tiny=tiny)
            descriptor.update(model="mobilenet_v2")
        else:
            depth = 50 if name == "resnet50" else 18
            batch = 4 if tiny else (128 if depth == 50 else 256)
            resnet_model = resnet(depth, classes, 4 if tiny else 64, tiny=tiny)
            model = resnet_model
            descriptor.update(model=f"resnet{depth}")
            if name == "finetune" and unfreeze_epoch:
                frozen = nn.ModuleList([resnet_model.stem, resnet_model.features])
                descriptor.update(frozen_backbone_until_epoch=unfreeze_epoch)
        inputs = torch.randn(batch, 3, image, image, generator=generator)
        targets = torch.randint(0, classes, (batch,), generator=generator)
        descriptor.update(batch_size=batch, image_size=image, classes=classes)
    elif name == "transformer_bf16":
        vocab, d_model, layers, heads, seq, batch = (
            (100, 32, 2, 2, 16, 2) if tiny else (32_000, 768, 12, 12, 512, 32)
        )
        model = TinyLM(vocab, d_model, layers, heads, seq)
        inputs = torch.randint(0, vocab, (batch, seq), generator=generator)
        targets = torch.randint(0, vocab, (batch, seq), generator=generator)
        lm = True
        precision = "bf16-mixed"
        descriptor.update(
            model="transformer_lm", d_model=d_model, layers=layers, seq_len=seq, batch_size=batch
        )
    else:  # mlp
        width_mlp, batch = (32, 8) if tiny else (4096, 1024)
        model = nn.Sequential(
            nn.Linear(width_mlp, width_mlp),
            nn.GELU(),
            nn.Linear(width_mlp, width_mlp),
            nn.GELU(),
            nn.Linear(width_mlp, width_mlp),
            nn.GELU(),
            nn.Linear(width_mlp, 10),
        )
        inputs = torch.randn(batch, width_mlp, generator=generator)
        targets = torch.randint(0, 10, (batch,), generator=generator)
        descriptor.update(model="mlp", width=width_mlp, depth=4, batch_size=batch)
    descriptor.update(
        precision=precision,
        parameters=sum(p.numel() for p in model.parameters()),
    )
    module = SyntheticModule(model, inputs, targets, lm=lm, frozen=frozen, unfreeze_epoch=unfreeze_epoch)
    return Workload(
        name=name, module=module, precision=precision, descriptor=descriptor, example_inputs=inputs
    )


def loader(workload: Workload, steps: int) -> DataLoader[Any]:
    """``steps`` batches of the workload's batch size, each the workload's CPU batch (see the module doc)."""
    inputs = workload.example_inputs
    batch_size = int(inputs.shape[0])

    def same_batch(indices: list[int]) -> torch.Tensor:
        return inputs

    return DataLoader(
        SampleIndices(steps * batch_size), batch_size=batch_size, shuffle=False, collate_fn=same_batch
    )


def steps_for_target(step_time_s: float, target_epoch_s: float, min_steps: int = 5) -> int:
    """Steps per epoch so an epoch lasts about ``target_epoch_s`` (at least ``min_steps``)."""
    if step_time_s <= 0 or not math.isfinite(step_time_s):
        raise ValueError(f"step_time_s must be a positive number of seconds, got {step_time_s!r}")
    return max(min_steps, round(target_epoch_s / step_time_s))
