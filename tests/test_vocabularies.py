"""The closed vocabularies of STEP and PRE: interval group, GPU speed source, regime and board class.

Each is a ``Literal`` in the module that owns it; reading a report written by another version is lenient
(an odd value reads as "not said"), as for the meter labels (tests/test_labels.py).
"""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from lightning_energy.pre import descriptors, roofline, throughput
from lightning_energy.pre.fit import PreSummary
from lightning_energy.pre.model import Estimate
from lightning_energy.report_projection import ProjectionPoint
from lightning_energy.step.params import INTERVAL_GROUPS, IntervalGroup, StepParams, read_interval_group
from lightning_energy.step.projection import Projection


def test_the_vocabularies_are_the_literals() -> None:
    assert INTERVAL_GROUPS == get_args(IntervalGroup) == ("steady", "stable", "unstable", "ahead")
    assert get_args(throughput.SpeedSource) == throughput.SOURCES
    assert throughput.SOURCES[0] == throughput.MEASURED == "measured"
    assert roofline.REGIMES == get_args(roofline.Regime) == ("compute-bound", "bandwidth-bound", "host-bound")
    assert descriptors.BOARD_CLASSES == get_args(descriptors.BoardClass) == ("data-centre", "consumer")


@pytest.mark.parametrize("group", INTERVAL_GROUPS)
def test_each_group_has_its_own_hazard_table(group: IntervalGroup) -> None:
    params = StepParams()
    low, high = params.hazard_table(group)
    assert low is getattr(params, f"hazard_{group}_low") and high is getattr(params, f"hazard_{group}_high")


def test_readers_keep_known_values_and_read_odd_ones_as_not_said() -> None:
    assert [read_interval_group(g) for g in INTERVAL_GROUPS] == list(INTERVAL_GROUPS)
    assert read_interval_group("wobbly") == read_interval_group(None) == read_interval_group(3) == ""
    assert [throughput.read_speed_source(s) for s in throughput.SOURCES] == list(throughput.SOURCES)
    assert throughput.read_speed_source(None) == "measured"  # 0.3.0 wrote none for a measured GPU
    assert throughput.read_speed_source("a rumour") == "unknown"
    assert [roofline.read_regime(r) for r in roofline.REGIMES] == list(roofline.REGIMES)
    assert roofline.read_regime("compute") is None and roofline.read_regime(None) is None


def _projection(group: IntervalGroup) -> Projection:
    return Projection(100.0, 90.0, 110.0, True, 3, 10.0, 5, 50.0, 2.0, 0, 5.0, None, "level", 0.9, "", group)


def test_a_reports_interval_group_round_trips_and_an_odd_one_reads_as_not_said() -> None:
    point = ProjectionPoint(4, _projection("steady"))
    data = point.to_json()
    assert data["interval_group"] == "steady"
    assert ProjectionPoint.from_json(data).projection.interval_group == "steady"
    assert ProjectionPoint.from_json({**data, "interval_group": "wobbly"}).projection.interval_group == ""
    old = {k: v for k, v in data.items() if k != "interval_group"}  # a 0.3.0 report
    assert ProjectionPoint.from_json(old).projection.interval_group == ""


def test_a_reports_speed_source_and_regime_read_leniently() -> None:
    estimate = Estimate(1.0, 10.0, 0.1, 0.1, "T4", speed_source="datasheet", regime="host-bound")
    pre = PreSummary(total_j=1.0, low_j=0.5, high_j=2.0, estimate=estimate)
    data = pre.to_json()
    assert PreSummary.from_json(data) == pre
    odd = {**data, "estimate": {**data["estimate"], "speed_source": "a rumour", "regime": "compute"}}
    read = PreSummary.from_json(odd).estimate
    assert read is not None and read.speed_source == "unknown" and read.regime is None
    assert dataclasses.replace(read, speed_source="datasheet", regime="host-bound") == estimate
