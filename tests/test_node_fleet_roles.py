"""[hub].fleet_roles = true runs the fleet-health role actors beside the hub, fed from its stream."""

from __future__ import annotations

from pathlib import Path

from conftest import MosquittoBroker, wait_for

from pymonitor.actors.fleet_roles import GatewayOptions
from pymonitor.actors.fleet_roles.answers import ask
from pymonitor.actors.runtime.node import start_node
from pymonitor.deploy.config import parse_config


def test_a_hub_with_fleet_roles_feeds_every_role_the_readings_it_receives(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    unique = tmp_path.name[-24:].strip("_").replace("_", "-")
    config = parse_config(
        {
            "node": {"name": "hub", "fleet": f"fr-{unique}"},
            "broker": {"url": mosquitto.url},
            "hub": {"db": str(tmp_path / "hub.db"), "fleet_roles": True, "fleet_analyse_every_s": 0.5},
            "simulator": {"devices": 6, "gateways": 2, "interval_s": 1.0},
        }
    )
    node = start_node(config)
    try:
        roles = node.fleet_roles
        assert roles is not None

        def fed() -> bool:
            stats = roles.stats()
            readings = [stats[name]["accepted_readings"] for name in ("battery", "calibration", "environment")]
            return min(readings) > 0

        wait_for(fed, what="readings at the battery, calibration and environment roles")
        stats = roles.stats()
        assert all(stats[name]["dropped_readings"] == 0 for name in ("battery", "calibration", "environment"))
        assert all(stats[name].get("failures", 0) == 0 for name in stats if name != "refused_frames")
        # Each role analyses on its own (every 0.5 s here) and keeps the answer the CLI then serves.
        wait_for(
            lambda: ask(tmp_path / "hub.db", "gateways", GatewayOptions())["source"]["kind"] == "role",
            what="the gateways role's stored answer",
        )
        answer = ask(tmp_path / "hub.db", "gateways", GatewayOptions())
        assert answer["plan"] is None  # no inventory imported: nothing to plan
    finally:
        node.stop()
