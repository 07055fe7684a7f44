"""Descriptors of Lambda's ten benchmark workloads: forward FLOPs, memory traffic and kernel count per item.

Research tooling (not part of the runtime package). torchvision, torchaudio and NVIDIA's
DeepLearningExamples do not import here, so every model is written below in plain torch after the
published architecture, and counted on **meta tensors** (no data, no weights, no GPU) with
:func:`lightning_energy.pre.describe.count_traffic` and ``FlopCounterMode``. Where a model is approximate
it says so in ``APPROXIMATIONS`` (the table records it next to the numbers).

An *item* is the unit of Lambda's throughput: an image (ResNet-50, SSD), a sequence of 384 tokens (BERT),
a token (GNMT: source + target; Transformer-XL: target), a sample (NCF), a mel frame (Tacotron2) and an
audio sample (WaveGlow).

Run: ``python tools/lambda_workloads.py`` writes ``lightning_energy/pre/workloads.json`` (descriptors
only; the Lambda throughput itself stays in ``../shared/data/lambda``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lightning_energy.pre.describe import (  # noqa: E402
    TRAFFIC_CLASSES,
    TrafficCount,
    _attention_fast_path,
    _attention_formulas,
    count_traffic,
)

DEFAULT_OUT = REPO / "lightning_energy" / "pre" / "workloads.json"

APPROXIMATIONS = {
    "resnet50": "exact architecture (torchvision's ResNet-50 v1.5)",
    "ssd": "SSD300 with a ResNet-50 backbone to layer3 at stride 1 and five extra blocks (NVIDIA's v1.1); "
    "loss and box matching not counted",
    "bert_base_squad": "BERT encoder as nn.TransformerEncoderLayer (post-norm, GELU), 384 tokens, QA head",
    "bert_large_squad": "as bert_base_squad with 24 layers, 1024 wide, 16 heads",
    "gnmt": "GNMT v2: 4+4 LSTM layers of 1024 (first bidirectional), additive attention, 32320 classes; "
    "25 source + 25 target tokens per sentence (WMT16 en-de average, approximate)",
    "ncf": "NeuMF: 64-factor GMF, MLP 256-256-128-64 over 128-wide embeddings of 138493 users, 26744 items",
    "tacotron2": "Tacotron2 (encoder convs + BiLSTM, location-sensitive attention, 2 decoder LSTM cells, "
    "postnet) with 150 characters and 600 mel frames per utterance (LJSpeech-like, approximate)",
    "waveglow": "WaveGlow: 12 flows, 8 WN layers of 256 channels, early outputs every 4 flows, "
    "16000-sample segments",
    "transformerxlbase": "Transformer-XL base as a causal transformer of 16 layers, 410 wide, 10 heads, "
    "d_inner 2100 over 192 tokens; attention over memory and relative positions and the adaptive "
    "softmax tail not modelled (head of 20000 words + 3 clusters only): approximate",
    "transformerxllarge": "as transformerxlbase with 18 layers, 1024 wide, 16 heads, d_inner 4096, "
    "128 tokens: approximate",
}


# --------------------------------------------------------------------------------------------- models
class Bottleneck(nn.Module):
    def __init__(self, inp: int, width: int, stride: int) -> None:
        super().__init__()
        out = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(inp, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.down = (
            nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            if stride != 1 or inp != out
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return torch.relu(self.body(x) + skip)


def resnet50_layers(strides: tuple[int, int, int, int] = (1, 2, 2, 2), blocks: int = 4) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inp = 64
    for width, count, stride in list(zip((64, 128, 256, 512), (3, 4, 6, 3), strides, strict=True))[:blocks]:
        for i in range(count):
            layers.append(Bottleneck(inp, width, stride if i == 0 else 1))
            inp = width * 4
    return nn.Sequential(*layers)


class ResNet50(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = resnet50_layers()
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class SSD300(nn.Module):
    def __init__(self, classes: int = 81) -> None:
        super().__init__()
        self.backbone = resnet50_layers(strides=(1, 2, 1, 1), blocks=3)
        channels = [1024, 512, 512, 256, 256, 256]
        extra = []
        for i, (inp, out, mid) in enumerate(
            zip(channels[:-1], channels[1:], (256, 256, 128, 128, 128), strict=True)
        ):
            stride, pad = (2, 1) if i < 3 else (1, 0)
            extra.append(
                nn.Sequential(
                    nn.Conv2d(inp, mid, 1, bias=False),
                    nn.BatchNorm2d(mid),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(mid, out, 3, stride, pad, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(inplace=True),
                )
            )
        self.extra = nn.ModuleList(extra)
        anchors = (4, 6, 6, 6, 4, 4)
        self.loc = nn.ModuleList(
            nn.Conv2d(c, a * 4, 3, padding=1) for c, a in zip(channels, anchors, strict=True)
        )
        self.conf = nn.ModuleList(
            nn.Conv2d(c, a * classes, 3, padding=1) for c, a in zip(channels, anchors, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [self.backbone(x)]
        for block in self.extra:
            maps.append(block(maps[-1]))
        outs = [h(m).flatten(1) for m, h in zip(maps, self.loc, strict=True)]
        outs += [h(m).flatten(1) for m, h in zip(maps, self.conf, strict=True)]
        return torch.cat(outs, 1)


class Encoder(nn.Module):
    """A transformer encoder over token ids: BERT (post-norm) or a causal LM (Transformer-XL approx.)."""

    def __init__(self, vocab: int, width: int, layers: int, heads: int, inner: int, out: int, causal: bool):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(512, width)
        self.norm = nn.LayerNorm(width)
        layer = nn.TransformerEncoderLayer(width, heads, inner, activation="gelu", batch_first=True)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, heads, inner, activation="gelu", batch_first=True)
            for _ in range(layers)
        )
        del layer
        self.head = nn.Linear(width, out)
        self.causal = causal

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        positions = torch.arange(length, device=tokens.device)
        x = self.norm(self.embed(tokens) + self.pos(positions))
        mask = (
            nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
            if self.causal
            else None
        )
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=self.causal)
        return self.head(x)


class GNMT(nn.Module):
    def __init__(self, vocab: int = 32320, width: int = 1024, src_len: int = 25, tgt_len: int = 25) -> None:
        super().__init__()
        self.src_len, self.tgt_len = src_len, tgt_len
        self.embed_src = nn.Embedding(vocab, width)
        self.embed_tgt = nn.Embedding(vocab, width)
        self.enc_bi = nn.LSTM(width, width // 2, bidirectional=True)
        self.enc = nn.LSTM(width, width, num_layers=3)
        self.dec_att = nn.LSTMCell(2 * width, width)
        self.dec = nn.LSTM(2 * width, width, num_layers=3)
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, width, bias=False)
        self.score = nn.Linear(width, 1, bias=False)
        self.classifier = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        src, tgt = tokens[:, : self.src_len].t(), tokens[:, self.src_len :].t()
        memory, _ = self.enc_bi(self.embed_src(src))
        memory, _ = self.enc(memory)  # (S, B, W)
        keys = self.key(memory)
        emb = self.embed_tgt(tgt)
        batch, width = tgt.shape[1], memory.shape[2]
        h = c = context = emb.new_zeros(batch, width)
        outputs, contexts = [], []
        for step in range(self.tgt_len):
            h, c = self.dec_att(torch.cat([emb[step], context], 1), (h, c))
            energy = self.score(torch.tanh(keys + self.query(h))).squeeze(2)  # (S, B)
            weights = torch.softmax(energy, 0)
            context = (weights.unsqueeze(2) * memory).sum(0)
            outputs.append(h)
            contexts.append(context)
        x, _ = self.dec(torch.cat([torch.stack(outputs), torch.stack(contexts)], 2))
        return self.classifier(x)


class NCF(nn.Module):
    def __init__(self, users: int = 138493, items: int = 26744, factors: int = 64) -> None:
        super().__init__()
        self.mf_user, self.mf_item = nn.Embedding(users, factors), nn.Embedding(items, factors)
        self.mlp_user, self.mlp_item = nn.Embedding(users, 128), nn.Embedding(items, 128)
        self.mlp = nn.Sequential(
            nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU()
        )
        self.out = nn.Linear(factors + 64, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        user, item = ids[:, 0], ids[:, 1]
        mf = self.mf_user(user) * self.mf_item(item)
        mlp = self.mlp(torch.cat([self.mlp_user(user), self.mlp_item(item)], 1))
        return torch.sigmoid(self.out(torch.cat([mf, mlp], 1)))


class Tacotron2(nn.Module):
    def __init__(self, text_len: int = 150, frames: int = 600, mels: int = 80) -> None:
        super().__init__()
        self.text_len, self.frames, self.mels = text_len, frames, mels
        self.embed = nn.Embedding(148, 512)
        self.convs = nn.Sequential(
            *[
                m
                for _ in range(3)
                for m in (nn.Conv1d(512, 512, 5, padding=2), nn.BatchNorm1d(512), nn.ReLU())
            ]
        )
        self.lstm = nn.LSTM(512, 256, bidirectional=True, batch_first=True)
        self.prenet = nn.Sequential(nn.Linear(mels, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())
        self.att_rnn = nn.LSTMCell(256 + 512, 1024)
        self.query = nn.Linear(1024, 128, bias=False)
        self.memory = nn.Linear(512, 128, bias=False)
        self.location_conv = nn.Conv1d(2, 32, 31, padding=15, bias=False)
        self.location = nn.Linear(32, 128, bias=False)
        self.energy = nn.Linear(128, 1, bias=False)
        self.dec_rnn = nn.LSTMCell(1024 + 512, 1024)
        self.proj = nn.Linear(1024 + 512, mels + 1)
        post: list[nn.Module] = []
        for i in range(5):
            post += [nn.Conv1d(mels if i == 0 else 512, mels if i == 4 else 512, 5, padding=2)]
            post += [nn.BatchNorm1d(mels if i == 4 else 512), nn.Tanh()]
        self.postnet = nn.Sequential(*post)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.embed(text[:, : self.text_len]).transpose(1, 2)).transpose(1, 2)
        memory, _ = self.lstm(x)  # (B, T, 512)
        keys = self.memory(memory)
        batch = text.shape[0]
        h1 = c1 = memory.new_zeros(batch, 1024)
        h2 = c2 = memory.new_zeros(batch, 1024)
        context = memory.new_zeros(batch, 512)
        weights = cumulative = memory.new_zeros(batch, self.text_len)
        frame = memory.new_zeros(batch, self.mels)
        frames = []
        for _ in range(self.frames):
            h1, c1 = self.att_rnn(torch.cat([self.prenet(frame), context], 1), (h1, c1))
            loc = self.location(self.location_conv(torch.stack([weights, cumulative], 1)).transpose(1, 2))
            energy = self.energy(torch.tanh(self.query(h1).unsqueeze(1) + keys + loc)).squeeze(2)
            weights = torch.softmax(energy, 1)
            cumulative = cumulative + weights
            context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
            h2, c2 = self.dec_rnn(torch.cat([h1, context], 1), (h2, c2))
            out = self.proj(torch.cat([h2, context], 1))
            frame = out[:, : self.mels]
            frames.append(frame)
        mel = torch.stack(frames, 2)
        return mel + self.postnet(mel)


class WN(nn.Module):
    def __init__(self, channels_in: int, cond: int, width: int = 256, layers: int = 8) -> None:
        super().__init__()
        self.start = nn.Conv1d(channels_in, width, 1)
        self.cond = nn.Conv1d(cond, 2 * width * layers, 1)
        self.ins = nn.ModuleList(
            nn.Conv1d(width, 2 * width, 3, dilation=2**i, padding=2**i) for i in range(layers)
        )
        self.res_skip = nn.ModuleList(
            nn.Conv1d(width, 2 * width if i < layers - 1 else width, 1) for i in range(layers)
        )
        self.end = nn.Conv1d(width, 2 * channels_in, 1)
        self.width = width

    def forward(self, audio: torch.Tensor, spect: torch.Tensor) -> torch.Tensor:
        x = self.start(audio)
        cond = self.cond(spect)
        out = torch.zeros_like(x)
        w = self.width
        for i, (conv, res_skip) in enumerate(zip(self.ins, self.res_skip, strict=True)):
            acts = conv(x) + cond[:, 2 * w * i : 2 * w * (i + 1)]
            acts = torch.tanh(acts[:, :w]) * torch.sigmoid(acts[:, w:])
            rs = res_skip(acts)
            if i < len(self.ins) - 1:
                x = x + rs[:, :w]
                out = out + rs[:, w:]
            else:
                out = out + rs
        return self.end(out)


class WaveGlow(nn.Module):
    def __init__(self, mels: int = 80, flows: int = 12, group: int = 8, segment: int = 16000) -> None:
        super().__init__()
        self.group, self.segment = group, segment
        self.upsample = nn.ConvTranspose1d(mels, mels, 1024, stride=256)
        remaining, wns, convs = group, [], []
        for k in range(flows):
            if k % 4 == 0 and k > 0:
                remaining -= 2
            convs.append(nn.Conv1d(remaining, remaining, 1, bias=False))
            wns.append(WN(remaining // 2, mels * group))
        self.convinv, self.wn = nn.ModuleList(convs), nn.ModuleList(wns)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        batch = audio.shape[0]
        frames = self.segment // 256
        spect = self.upsample(audio.new_zeros(batch, 80, frames))[:, :, : self.segment]
        spect = (
            spect.reshape(batch, 80, -1, self.group).permute(0, 1, 3, 2).reshape(batch, 80 * self.group, -1)
        )
        x = audio.reshape(batch, -1, self.group).transpose(1, 2)
        outputs = []
        for k, (conv, wn) in enumerate(zip(self.convinv, self.wn, strict=True)):
            if k % 4 == 0 and k > 0:
                outputs.append(x[:, :2])
                x = x[:, 2:]
            x = conv(x)
            half = x.shape[1] // 2
            out = wn(x[:, :half], spect)
            x = torch.cat([x[:, :half], torch.exp(out[:, half:]) * x[:, half:] + out[:, :half]], 1)
        outputs.append(x)
        return torch.cat(outputs, 1)


# ------------------------------------------------------------------------------------ workloads
@dataclass(frozen=True)
class Workload:
    name: str
    unit: str
    build: Callable[[], nn.Module]
    example: Callable[[int], torch.Tensor]  # batch -> input on the meta device
    items_per_sample: float  # Lambda's items in one input sample


def _tokens(length: int, vocab: int) -> Callable[[int], torch.Tensor]:
    return lambda batch: torch.zeros(batch, length, dtype=torch.long, device="meta").clamp(max=vocab - 1)


WORKLOADS = (
    Workload("resnet50", "images/s", ResNet50, lambda b: torch.zeros(b, 3, 224, 224, device="meta"), 1.0),
    Workload("ssd", "images/s", SSD300, lambda b: torch.zeros(b, 3, 300, 300, device="meta"), 1.0),
    Workload(
        "bert_base_squad",
        "sequences/s",
        lambda: Encoder(30522, 768, 12, 12, 3072, 2, causal=False),
        _tokens(384, 30522),
        1.0,
    ),
    Workload(
        "bert_large_squad",
        "sequences/s",
        lambda: Encoder(30522, 1024, 24, 16, 4096, 2, causal=False),
        _tokens(384, 30522),
        1.0,
    ),
    Workload("gnmt", "tokens/s", GNMT, _tokens(50, 32320), 50.0),
    Workload("ncf", "samples/s", NCF, _tokens(2, 26744), 1.0),
    Workload("tacotron2", "mel-spectrogram frames/s", Tacotron2, _tokens(150, 148), 600.0),
    Workload(
        "waveglow", "audio samples/s", WaveGlow, lambda b: torch.zeros(b, 16000, device="meta"), 16000.0
    ),
    Workload(
        "transformerxlbase",
        "tokens/s",
        lambda: Encoder(267735, 410, 16, 10, 2100, 20003, causal=True),
        _tokens(192, 267735),
        192.0,
    ),
    Workload(
        "transformerxllarge",
        "tokens/s",
        lambda: Encoder(267735, 1024, 18, 16, 4096, 20003, causal=True),
        _tokens(128, 267735),
        128.0,
    ),
)


def _flops(module: nn.Module, inputs: torch.Tensor) -> tuple[float, float]:
    """Forward FLOPs of the call: total and in convolutions."""
    counter = FlopCounterMode(display=False, custom_mapping=_attention_formulas())
    with counter, _attention_fast_path(False), torch.no_grad():
        module.eval()
        module(inputs)
    per_op = counter.get_flop_counts().get("Global", {})
    conv = float(sum(v for op, v in per_op.items() if "convolution" in str(op)))
    return float(counter.get_total_flops()), conv


def _difference(large: TrafficCount, small: TrafficCount, samples: int) -> dict[str, float]:
    return {
        k: max(large.activation_bytes[k] - small.activation_bytes[k], 0.0) / samples for k in TRAFFIC_CLASSES
    }


def describe_workload(workload: Workload, small: int = 2, large: int = 4) -> dict[str, Any]:
    """Per-item forward FLOPs (total, conv share), forward activation traffic by class, the measured
    training/forward traffic ratio, parameters and the kernels (aten ops) of one training step."""
    with torch.device("meta"):
        module = workload.build()
    one, two = workload.example(small), workload.example(large)
    flops_one, conv_one = _flops(module, one)
    flops_two, conv_two = _flops(module, two)
    flops = (flops_two - flops_one) / (large - small)  # per sample, without batch-independent work
    conv = (conv_two - conv_one) / (large - small)
    # per-sample traffic: the difference between two batch sizes (weights, weight gradients and other
    # batch-independent traffic cancel; they are per step, from the parameter count)
    forward = _difference(count_traffic(module, two), count_traffic(module, one), large - small)
    training_two = count_traffic(module, two, backward=True)
    training = _difference(training_two, count_traffic(module, one, backward=True), large - small)
    fwd_bytes = sum(forward.values())
    train_bytes = sum(training.values())
    items = workload.items_per_sample
    params = sum(p.numel() for p in module.parameters())
    return {
        "unit": workload.unit,
        "input_shape": list(workload.example(1).shape[1:]),
        "items_per_sample": items,
        "forward_flops_per_item": flops / items,
        "conv_flop_fraction": min(max(conv / flops, 0.0), 1.0),
        "forward_bytes_per_item": {k: v / items for k, v in forward.items()},
        "training_to_forward_bytes": train_bytes / fwd_bytes,
        "parameter_count": int(params),
        "kernels_per_training_step": training_two.kernels,
        "approximation": APPROXIMATIONS[workload.name],
    }


def build() -> dict[str, Any]:
    workloads = {w.name: describe_workload(w) for w in WORKLOADS}
    ratios = sorted(w["training_to_forward_bytes"] for w in workloads.values())
    return {
        "_about": "Descriptors of Lambda's benchmark workloads per item of their throughput unit, counted on "
        "meta tensors by tools/lambda_workloads.py (FLOPs: FlopCounterMode, 2 per multiply-add; bytes: "
        "activation traffic of the forward pass at FP32, by op class). See docs/pre.md.",
        "classes": list(TRAFFIC_CLASSES),
        "training_to_forward_bytes_median": ratios[len(ratios) // 2],
        "workloads": workloads,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    table = build()
    args.out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    for name, w in table["workloads"].items():
        total = sum(w["forward_bytes_per_item"].values())
        print(
            f"{name:<20} {w['forward_flops_per_item'] / 1e9:10.4g} GFLOP/item  {total / 1e6:10.4g} MB/item  "
            f"intensity {w['forward_flops_per_item'] / total:7.3g} FLOP/B  train/fwd bytes "
            f"{w['training_to_forward_bytes']:.2f}  kernels {w['kernels_per_training_step']}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
