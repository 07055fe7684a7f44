"""GAISSA descriptors from the authors' training protocols (tools/gaissa.py, tools/gaissa_models.py)."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from tools.gaissa import (
    CHESSLIVE_FROZEN_EPOCHS,
    TRAFFIC_JSON,
    chesslive_epochs,
    inception_head_flops,
    load_gaissa_runs,
)


def test_inception_runs_train_their_head_only_and_chesslive_runs_fine_tune_after_ten_epochs(
    gaissa_dir: Path,
) -> None:
    runs = load_gaissa_runs(gaissa_dir)
    epochs = chesslive_epochs(str(gaissa_dir))
    assert set(epochs) == {"mobilenet_v2", "nasnet_mobile", "resnet50", "vgg16", "xception"}
    for run in runs:
        share = run.descriptor.model.trainable_fraction
        assert share is not None, run.architecture
        if run.architecture == "inception_v3":
            assert 0.02 < share < 0.05  # the head's share of the FLOPs
        else:
            assert share == pytest.approx(1.0 - CHESSLIVE_FROZEN_EPOCHS / epochs[run.architecture])
            assert 0.8 < share < 0.95


def test_inception_head_and_base_add_up_to_the_published_flops(gaissa_dir: Path) -> None:
    table = json.loads(TRAFFIC_JSON.read_text())["architectures"]["inception_v3"]
    published: dict[tuple[str, int], list[float]] = {}
    for run in load_gaissa_runs(gaissa_dir):
        if run.architecture == "inception_v3":
            size = run.descriptor.model.input_shape[1]
            flops = run.descriptor.model.forward_flops_per_sample
            published.setdefault((run.dataset, size), []).append(flops)
    assert len(published) == 6
    for (dataset, size), values in published.items():
        counted = table[str(size)]
        head = inception_head_flops(dataset, counted["output_features"])
        assert head is not None
        total = counted["forward_gflops"] * 1e9 + head
        assert total == pytest.approx(statistics.median(values), rel=0.01), (dataset, size)
    assert inception_head_flops("imagenet", 2048.0) is None


def test_mobilenet_is_counted_at_the_width_gaissa_trained() -> None:
    counted = json.loads(TRAFFIC_JSON.read_text())["architectures"]["mobilenet_v2"]["128"]
    # published: 0.064 GFLOPs at 128 px with the 0.5-width base (the full width has 0.196)
    assert counted["forward_gflops"] == pytest.approx(0.064, rel=0.05)


def test_without_the_run_table_the_chesslive_share_is_left_to_the_fit(
    gaissa_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(gaissa_dir / "pre_runs.csv", tmp_path / "pre_runs.csv")
    runs = load_gaissa_runs(tmp_path)
    unknown = {r.architecture for r in runs if r.descriptor.model.trainable_fraction is None}
    assert unknown == {"mobilenet_v2", "nasnet_mobile", "resnet50", "vgg16", "xception"}
