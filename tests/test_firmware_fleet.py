"""The seeded firmware fleet against the inventory: every injected change flagged within one report interval."""

from __future__ import annotations

from pymonitor.actors.firmware import FirmwareInventory, parse_advisories
from pymonitor.bench.fleet_firmware import run
from pymonitor.simulators.health.firmware import MODELS, generate


def test_every_injected_change_is_flagged_within_one_report_interval_and_nothing_else() -> None:
    scenario = generate(4, devices=400, hours=36, injected=12)
    inventory = FirmwareInventory(
        scenario.devices, approved=scenario.approved, rollouts=scenario.rollouts, schemes=scenario.schemes
    )
    events = [e for r in scenario.reports() if (e := inventory.observe(r)) is not None]
    truth = {c.device: c.ts_ms for c in scenario.injected}
    assert {e.device for e in events} == set(truth)
    assert len(events) == len(truth)
    for event in events:
        assert 0 <= event.ts_ms - truth[event.device] <= scenario.report_interval_ms
    assert {c.kind for c in scenario.injected} == {"unapproved version", "tampered image", "downgrade"}


def test_fleet_uses_every_vendor_scheme_and_its_advisories_parse() -> None:
    scenario = generate(1, devices=200, hours=4)
    assert set(scenario.schemes.values()) == {"semver", "vbuild", "calver", "underscore", "revision"}
    assert [a.model for a in parse_advisories(scenario.advisories_toml)] == [m.name for m in MODELS]


def test_bench_reports_detection_latency_and_counts() -> None:
    result = run(2, devices=300, hours=12)
    assert result["detected"] == result["injected"] > 0
    assert result["false_positives"] == 0
    assert result["firmware_detect_max_s"] <= result["report_interval_s"]
