"""Firmware inventory: unauthorised changes, outdated and vulnerable devices, rollout progress, consistency."""

from __future__ import annotations

import pytest

from pymonitor.actors.firmware import (
    Device,
    FirmwareError,
    FirmwareInventory,
    FirmwareReport,
    Image,
    Rollout,
    parse_advisories,
)

H = 3_600_000
DEVICES = [
    Device(id="d1", model="TH", site="north"),
    Device(id="d2", model="TH", site="north"),
    Device(id="d3", model="TH", site="south", group="pilot"),
    Device(id="g1", model="GW", site="north"),
]
APPROVED = [
    Image(model="TH", version="1.2.0", image_hash="a120"),
    Image(model="GW", version="v1.0.0-b7", image_hash="g7"),
]
ROLLOUT = Rollout(
    id="th-1.4.3",
    model="TH",
    from_versions=frozenset({"1.2.0"}),
    to_version="1.4.3",
    image_hash="a143",
    start_ms=10 * H,
    end_ms=20 * H,
)


def inventory() -> FirmwareInventory:
    inv = FirmwareInventory(DEVICES, approved=APPROVED, rollouts=[ROLLOUT], schemes={"TH": "semver", "GW": "vbuild"})
    for device in ("d1", "d2", "d3"):
        assert inv.observe(FirmwareReport(device=device, version="1.2.0", image_hash="a120", ts_ms=0)) is None
    assert inv.observe(FirmwareReport(device="g1", version="v1.0.0-b7", image_hash="g7", ts_ms=0)) is None
    return inv


def report(device: str, version: str, image_hash: str, hours: float, failed: str | None = None) -> FirmwareReport:
    ts_ms = int(hours * H)
    return FirmwareReport(device=device, version=version, image_hash=image_hash, ts_ms=ts_ms, update_failed=failed)


def test_update_inside_an_approved_rollout_is_not_flagged() -> None:
    inv = inventory()
    assert inv.observe(report("d1", "1.2.0", "a120", 9.9)) is None
    assert inv.observe(report("d1", "1.4.3", "a143", 10.1)) is None
    assert inv.current("d1") == "1.4.3"


def test_change_detected_at_the_report_that_shows_it() -> None:
    inv = inventory()
    event = inv.observe(report("d2", "1.4.4", "evil", 3))
    assert event is not None
    assert (event.device, event.ts_ms, event.previous, event.current) == ("d2", 3 * H, "1.2.0#a120", "1.4.4#evil")
    assert inv.observe(report("d2", "1.4.4", "evil", 4)) is None  # flagged once, not on every report


@pytest.mark.parametrize(
    ("version", "image_hash", "hours"),
    [
        ("1.2.0", "tampered", 12),  # same version, new image
        ("1.4.3", "a143", 25),  # right image, outside the window
        ("1.4.3", "other", 12),  # right version, wrong image
    ],
)
def test_changes_no_rollout_explains_are_unauthorised(version: str, image_hash: str, hours: float) -> None:
    inv = inventory()
    assert inv.observe(report("d1", "1.2.0", "a120", hours - 0.25)) is None
    event = inv.observe(report("d1", version, image_hash, hours))
    assert event is not None and event.reason == "no approved rollout explains the change"


def test_downgrade_to_an_approved_image_without_a_rollout_is_unauthorised() -> None:
    inv = inventory()
    inv.observe(report("d1", "1.4.3", "a143", 12))
    assert inv.observe(report("d1", "1.2.0", "a120", 30)) is not None


def test_first_report_with_an_unapproved_image_is_flagged() -> None:
    inv = FirmwareInventory(DEVICES, approved=APPROVED)
    event = inv.observe(report("d1", "9.9.9", "x", 0))
    assert event is not None and event.previous is None and "not approved" in event.reason


def test_bad_reports_are_counted_not_raised() -> None:
    inv = inventory()
    assert inv.observe(report("nobody", "1.2.0", "a120", 1)) is None
    assert inv.observe(report("d1", "not-a-version", "a120", 1)) is None
    assert inv.observe(report("d1", "1.2.0", "", 1)) is None
    inv.observe(report("d1", "1.2.0", "a120", 5))
    assert inv.observe(report("d1", "6.6.6", "x", 4)) is None
    assert inv.rejected == {"unknown_device": 1, "bad_version": 1, "missing_hash": 1, "out_of_order": 1}
    assert inv.current("d1") == "1.2.0"
    assert inv.current("nobody") is None


def test_outdated_vulnerable_versions_and_progress() -> None:
    inv = inventory()
    inv.observe(report("d1", "1.4.3", "a143", 12))
    inv.observe(report("d3", "1.2.0", "a120", 12, failed="1.4.3"))
    assert inv.newest_approved("TH") is not None and str(inv.newest_approved("TH")) == "1.4.3"
    assert inv.outdated() == ["d2", "d3"]
    advisories = parse_advisories('[[advisory]]\nid = "A"\nmodel = "TH"\naffected = "<1.4.3"')
    assert inv.vulnerable(advisories) == {"d2": ("A",), "d3": ("A",)}
    (progress,) = inv.rollout_progress()
    assert (progress.done, progress.pending, progress.failed) == (1, 1, 1)
    inv.observe(report("d2", "1.3.0", "x", 13))  # off every rollout path: neither done, pending nor failed
    (progress,) = inv.rollout_progress()
    assert (progress.done, progress.pending, progress.failed) == (1, 0, 1)
    assert inv.versions()[("TH", "north")] == {"1.4.3": 1, "1.3.0": 1}
    rows = {(r.group, r.model): r for r in inv.consistency()}
    assert rows[("north", "TH")].majority_share == 0.5
    assert rows[("pilot", "TH")].majority_version == "1.2.0"
    assert rows[("north", "GW")].majority_share == 1.0


def test_rollout_with_an_empty_window_or_source_set_is_refused() -> None:
    bad_window = Rollout(
        id="r", model="TH", from_versions=frozenset({"1"}), to_version="2", image_hash="h", start_ms=5, end_ms=1
    )
    with pytest.raises(FirmwareError, match=r"rollouts\[0\] \(r\)\.end_ms: before start_ms"):
        FirmwareInventory(DEVICES, approved=APPROVED, rollouts=[bad_window])
    empty = Rollout(
        id="e", model="TH", from_versions=frozenset(), to_version="2.0.0", image_hash="h", start_ms=0, end_ms=1
    )
    with pytest.raises(FirmwareError, match=r"rollouts\[0\] \(e\)\.from_versions: empty"):
        FirmwareInventory(DEVICES, approved=APPROVED, rollouts=[empty])


def test_a_model_without_an_approved_image_has_no_outdated_devices() -> None:
    inv = FirmwareInventory([*DEVICES, Device(id="x1", model="XR", site="north")], approved=APPROVED)
    assert inv.observe(FirmwareReport(device="x1", version="0.9.0", image_hash="x09", ts_ms=0)) is not None
    assert "x1" not in inv.outdated()
