"""Gateway load: per-gateway traffic, imbalance, bottleneck reasons, quarantine of bad rows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pymonitor.actors.gateways import (
    Deployment,
    GatewayLoadError,
    GatewayStats,
    analyse,
    attached_quality,
    clean,
    gini,
)


def deployment(**overrides: object) -> Deployment:
    """Three gateways; gateway 0 carries four devices, gateway 2 one device over a weak link."""
    fields: dict[str, object] = {
        "capacity_msgs_s": np.array([2.0, 4.0, 4.0]),
        "device_gateway": np.array([0, 0, 0, 0, 1, 2]),
        "device_rate_msgs_s": np.array([1.0, 1.0, 0.5, 0.5, 1.0, 1.0]),
        "reach_device": np.array([0, 0, 1, 1, 2, 3, 4, 5]),
        "reach_gateway": np.array([0, 1, 0, 2, 0, 0, 1, 2]),
        "reach_quality": np.array([0.9, 0.8, 0.9, 0.7, 0.9, 0.9, 0.9, 0.2]),
    }
    fields.update(overrides)
    return Deployment(**fields)  # type: ignore[arg-type]


def test_traffic_devices_and_imbalance_per_gateway() -> None:
    report = analyse(clean(deployment()))
    assert report.devices.tolist() == [4, 1, 1]
    assert report.traffic_msgs_s.tolist() == [3.0, 1.0, 1.0]
    assert report.utilisation.tolist() == [1.5, 0.25, 0.25]
    assert report.max_over_mean == pytest.approx(1.5 / (2.0 / 3))
    assert report.gini == pytest.approx(gini(np.array([1.5, 0.25, 0.25])))
    reasons = {b.gateway: b.reasons for b in report.bottlenecks}
    assert reasons == {0: ("over capacity",), 2: ("weak links",)}
    assert [b.gateway for b in report.bottlenecks] == [0, 2]  # worst first


def test_gini_is_zero_when_even_and_grows_with_concentration() -> None:
    assert gini(np.array([1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 3.0])) == pytest.approx(2 / 3)
    assert gini(np.array([])) == 0.0
    assert gini(np.zeros(3)) == 0.0


def test_queue_growth_and_drops_flag_gateways() -> None:
    queue = np.array([[0.0, 60.0, 120.0, np.nan], [5.0, 5.0, 5.0, 5.0], [np.nan, np.nan, 1.0, np.nan]])
    stats = GatewayStats(
        queue_len=queue, sample_interval_s=60.0, dropped=np.array([0, 50, 0]), forwarded=np.array([100, 950, 0])
    )
    report = analyse(clean(deployment()), stats)
    assert report.queue_growth_msgs_s.tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert report.drop_share.tolist() == pytest.approx([0.0, 0.05, 0.0])
    reasons = {b.gateway: b.reasons for b in report.bottlenecks}
    assert reasons[0] == ("over capacity", "queue growing")
    assert reasons[1] == ("dropping",)


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        (
            GatewayStats(queue_len=np.zeros(3), sample_interval_s=60, dropped=np.zeros(3), forwarded=np.zeros(3)),
            "shape",
        ),
        (
            GatewayStats(queue_len=np.zeros((2, 2)), sample_interval_s=60, dropped=np.zeros(3), forwarded=np.zeros(3)),
            "3 rows",
        ),
        (
            GatewayStats(queue_len=np.zeros((3, 2)), sample_interval_s=0, dropped=np.zeros(3), forwarded=np.zeros(3)),
            "positive",
        ),
        (
            GatewayStats(queue_len=np.zeros((3, 2)), sample_interval_s=60, dropped=np.zeros(2), forwarded=np.zeros(3)),
            "dropped",
        ),
    ],
)
def test_stats_of_the_wrong_shape_are_refused(stats: GatewayStats, message: str) -> None:
    with pytest.raises(GatewayLoadError, match=message):
        analyse(clean(deployment()), stats)


def test_bad_rows_are_quarantined_and_counted() -> None:
    dirty = deployment(
        device_gateway=np.array([0, 0, 7, 0, 1, 2]),
        device_rate_msgs_s=np.array([1.0, np.nan, 0.5, -1.0, 1.0, 1.0]),
        reach_quality=np.array([0.9, 0.8, 0.9, 0.7, 0.9, np.nan, 0.9, 0.2]),
        quarantined=Counter({"earlier": 1}),
    )
    cleaned = clean(dirty)
    assert cleaned.quarantined == {
        "earlier": 1,
        "device_unknown_gateway": 1,
        "device_bad_rate": 2,
        "edge_invalid": 1,
    }
    assert cleaned.device_gateway.tolist() == [0, -1, -1, -1, 1, 2]
    report = analyse(cleaned)
    assert report.traffic_msgs_s.tolist() == [1.0, 1.0, 1.0]
    assert report.devices.tolist() == [1, 1, 1]
    assert cleaned.reach_device.tolist() == [0, 0, 4, 5]  # edges of quarantined devices go too


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capacity_msgs_s": np.array([])}, "capacity_msgs_s: expected a non-empty"),
        ({"capacity_msgs_s": np.array([2.0, 0.0, np.nan])}, r"capacity_msgs_s\[1\]: expected a positive"),
        ({"device_rate_msgs_s": np.array([1.0])}, "device_rate_msgs_s: expected one value per device"),
        ({"reach_gateway": np.array([0])}, "reach_gateway: expected one value per edge"),
        ({"reach_quality": np.zeros((8, 1))}, "reach_quality: expected one value per edge"),
    ],
)
def test_shapes_and_capacities_that_cannot_work_are_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(GatewayLoadError, match=message):
        clean(deployment(**overrides))


def test_attached_quality_is_zero_without_a_matching_edge() -> None:
    cleaned = clean(deployment(device_gateway=np.array([2, 0, 0, 0, 1, 2])))
    assert attached_quality(cleaned).tolist() == [0.0, 0.9, 0.9, 0.9, 0.9, 0.2]
    no_edges = clean(deployment(reach_device=np.array([]), reach_gateway=np.array([]), reach_quality=np.array([])))
    assert attached_quality(no_edges).tolist() == [0.0] * 6


def test_idle_fleet_has_no_imbalance() -> None:
    report = analyse(clean(deployment(device_rate_msgs_s=np.zeros(6))))
    assert report.max_over_mean == 1.0
    assert report.gini == 0.0
