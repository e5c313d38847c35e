"""``/v1/health`` and ``/v1/alerts``: auth, filters, history, ack and silence written as the CLI writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_support import COLD_FP, HOT_FP, NOW, Api, alerting_config, make_api

from pymonitor.actors.alerting.actor import silence_of
from pymonitor.actors.alerting.alert import Alert
from pymonitor.actors.alerting.silences import Muter


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return make_api(tmp_path)


def test_health_needs_no_key(api: Api) -> None:
    got = api.client.get("/v1/health")
    assert got.status_code == 200 and got.json() == {"ok": True, "alerting": False, "fleet": False}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer pm_wrong"}, {"Authorization": "Basic b3BzOnB3"}, {"Authorization": "Bearer "}],
)
def test_alerts_refuse_a_missing_or_unknown_key_with_401(api: Api, headers: dict[str, str]) -> None:
    got = api.client.get("/v1/alerts", headers=headers)
    assert got.status_code == 401
    assert got.json() == {"error": "missing or unknown API key", "field": "Authorization"}
    assert got.headers["www-authenticate"] == "Bearer"


def test_writes_without_a_key_write_nothing(api: Api) -> None:
    before = api.counts()
    assert api.client.post(f"/v1/alerts/{HOT_FP}/ack").status_code == 401
    body = {"matchers": ['site="Site A"'], "duration": "1h", "comment": "x"}
    assert api.client.post("/v1/alerts/silences", json=body).status_code == 401
    assert api.counts() == before


def test_alerts_list_only_firing_ones_newest_first(api: Api) -> None:
    got = api.client.get("/v1/alerts", headers=api.auth()).json()
    assert [a["fingerprint"] for a in got["firing"]] == [COLD_FP, HOT_FP]
    assert got["count"] == 2 and got["firing"][1]["labels"]["site"] == "Site A"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("severity=critical", [HOT_FP]),
        ("site=Site%20B", [COLD_FP]),
        ("label=node%3Dgw-1", [HOT_FP]),
        ("label=node%3Dgw-1&label=device%3Dfridge", []),
        ("severity=warning&site=Site%20B", [COLD_FP]),
    ],
)
def test_alerts_filter_by_severity_site_and_labels(api: Api, query: str, expected: list[str]) -> None:
    got = api.client.get(f"/v1/alerts?{query}", headers=api.auth()).json()
    assert [a["fingerprint"] for a in got["firing"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("severity=loud", "severity"), ("label=nodegw-1", "label"), ("label=%3Dx", "label")],
)
def test_alerts_refuse_bad_filters_naming_the_field(api: Api, query: str, field: str) -> None:
    got = api.client.get(f"/v1/alerts?{query}", headers=api.auth())
    assert got.status_code == 422 and got.json()["field"] == field


def test_history_filters_by_fingerprint_since_and_limit(api: Api) -> None:
    rows = api.client.get(f"/v1/alerts/history?fingerprint={HOT_FP}", headers=api.auth()).json()["history"]
    assert [r["state"] for r in rows] == ["firing"] and rows[0]["notifications"] == []
    assert len(api.client.get("/v1/alerts/history?limit=2", headers=api.auth()).json()["history"]) == 2
    assert len(api.client.get("/v1/alerts/history?since=1h", headers=api.auth()).json()["history"]) == 4
    assert api.client.get("/v1/alerts/history?since=1ms", headers=api.auth()).json()["history"] == []


def test_large_answers_are_gzipped_for_clients_that_accept_it(api: Api) -> None:
    got = api.client.get("/v1/alerts/history?limit=50", headers={**api.auth(), "Accept-Encoding": "gzip"})
    assert got.headers["content-encoding"] == "gzip" and len(got.json()["history"]) == 4
    small = api.client.get("/v1/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=soon", "since"), ("limit=0", "limit"), ("limit=501", "limit"), ("limit=many", "limit")],
)
def test_history_refuses_bad_parameters_naming_the_field(api: Api, query: str, field: str) -> None:
    got = api.client.get(f"/v1/alerts/history?{query}", headers=api.auth())
    assert got.status_code == 422 and got.json()["field"] == field


def test_ack_is_recorded_with_the_api_user_and_via_api(api: Api) -> None:
    got = api.client.post(f"/v1/alerts/{HOT_FP[:6]}/ack", json={"comment": "on my way"}, headers=api.auth())
    assert got.status_code == 200 and got.json() == {"acknowledged": HOT_FP, "by": "ops-phone", "at_ms": NOW}
    [row] = api.acks()
    assert (row["fingerprint"], row["action"], row["by"], row["via"], row["accepted"], row["detail"]) == (
        HOT_FP, "ack", "ops-phone", "api", 1, "on my way")  # fmt: skip


def test_ack_without_a_body_gets_a_default_comment(api: Api) -> None:
    assert api.client.post(f"/v1/alerts/{COLD_FP}/ack", headers=api.auth()).status_code == 200
    assert api.acks()[0]["detail"] == "acknowledged through the API"


def test_ack_of_an_unknown_or_ambiguous_alert_names_the_fingerprint(api: Api) -> None:
    missing = api.client.post("/v1/alerts/ffffffffffffffff/ack", headers=api.auth())
    assert missing.status_code == 404 and missing.json()["field"] == "fingerprint"
    store = api.store()
    twins = [Alert(fingerprint=f"abcd00000000000{i}", rule="r", labels={}, severity="info", state="firing",
                   summary="twin", starts_ms=NOW) for i in (1, 2)]  # fmt: skip
    store.record_alerts(twins, NOW)
    store.close()
    ambiguous = api.client.post("/v1/alerts/abcd/ack", headers=api.auth())
    assert ambiguous.status_code == 409
    assert ambiguous.json() == {"error": "'abcd' matches 2 alerts", "field": "fingerprint"}
    assert api.acks() == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (b'{"comment": 5}', 422, "comment"),
        (b'{"comment": "x", "by": "mallory"}', 422, "by"),
        (b"x" * 20_000, 413, "body"),
    ],
)
def test_ack_refuses_bad_bodies_naming_the_field_and_writes_nothing(
    api: Api, body: bytes, status: int, field: str
) -> None:
    got = api.client.post(f"/v1/alerts/{HOT_FP}/ack", content=body, headers=api.auth())
    assert got.status_code == status and got.json()["field"] == field
    assert api.acks() == []


def test_silence_is_written_for_the_actor_and_audited(api: Api) -> None:
    body = {"matchers": ['site="Site A"', 'severity="critical"'], "duration": "2h", "comment": "fixing the fan"}
    got = api.client.post("/v1/alerts/silences", json=body, headers=api.auth())
    assert got.status_code == 201
    made = got.json()
    assert made["starts_ms"] == NOW and made["ends_ms"] == NOW + 2 * 3_600_000
    store = api.store()
    [row] = store.silences_after(0)
    store.close()
    assert row["created_by"] == "ops-phone" and row["comment"] == "fixing the fan"
    # the actor turns the row into a silence that mutes the Site A alert and not the Site B one
    muter = Muter(silences=(silence_of(row, NOW),))
    hot = Alert(fingerprint=HOT_FP, rule="temp_high", labels={"site": "Site A"}, severity="critical", state="firing",
                summary="hot", starts_ms=NOW)  # fmt: skip
    cold = Alert(fingerprint=COLD_FP, rule="temp_low", labels={"site": "Site B"}, severity="critical",
                 state="firing", summary="cold", starts_ms=NOW)  # fmt: skip
    assert muter.is_muted(hot, NOW + 1) and not muter.is_muted(cold, NOW + 1)
    [audit] = api.acks()
    assert (audit["action"], audit["by"], audit["via"]) == ("silence", "ops-phone", "api")
    assert "fixing the fan" in str(audit["detail"])
    listed = api.client.get("/v1/alerts/silences", headers=api.auth()).json()["silences"]
    assert [s["id"] for s in listed] == [made["silence"]]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"matchers": ['site="A"'], "duration": "forever", "comment": "x"}, 422, "duration"),
        ({"matchers": ['site="A"'], "duration": "-5m", "comment": "x"}, 422, "duration"),
        ({"matchers": ["site=A"], "duration": "1h", "comment": "x"}, 422, "matchers[0]"),
        ({"matchers": [], "duration": "1h", "comment": "x"}, 422, "matchers"),
        ({"matchers": ['site="A"'], "duration": "1h"}, 422, "comment"),
        ({"matchers": ['site="A"'], "duration": "1h", "comment": "x", "ends_ms": 5}, 422, "ends_ms"),
        ({"matchers": 'site="A"', "duration": "1h", "comment": "x"}, 422, "matchers"),
        ({"matchers": ['site="A"'], "duration": 3600, "comment": "x"}, 422, "duration"),
    ],
)
def test_silence_refuses_bad_input_naming_the_field_and_writes_nothing(
    api: Api, body: dict[str, object], status: int, field: str
) -> None:
    got = api.client.post("/v1/alerts/silences", json=body, headers=api.auth())
    assert got.status_code == status, got.json()
    assert got.json()["field"] == field
    assert api.counts()["silences"] == 0 and api.acks() == []


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_ack_never_fails_with_5xx_on_arbitrary_bytes(api: Api, body: bytes) -> None:
    got = api.client.post(f"/v1/alerts/{COLD_FP}/ack", content=body, headers=api.auth())
    assert got.status_code < 500
    assert got.status_code == 200 or "field" in got.json()


def test_unknown_route_is_a_json_404(api: Api) -> None:
    got = api.client.get("/v1/nothing", headers=api.auth())
    assert got.status_code == 404 and got.json() == {"error": "not found", "field": "path"}


def test_a_missing_history_file_is_a_503_naming_it_and_not_created(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    api.settings.alerts_db.unlink()
    got = api.client.get("/v1/alerts", headers=api.auth())
    assert got.status_code == 503 and got.json()["field"] == "alerts_db"
    assert not api.settings.alerts_db.exists()


def test_a_history_file_of_a_newer_schema_is_a_503_naming_it(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    store = api.store()
    store.conn.execute("PRAGMA user_version = 999")
    store.close()
    got = api.client.get("/v1/alerts", headers=api.auth())
    assert got.status_code == 503 and "newer" in got.json()["error"]



def test_running_actor_applies_an_ack_made_through_the_api(api: Api) -> None:
    from pymonitor.actors.alerting.actor import AlertingActor
    from pymonitor.actors.runtime.clock import RealClock

    assert api.client.post(f"/v1/alerts/{HOT_FP}/ack", headers=api.auth()).status_code == 200
    actor = AlertingActor(None, alerting_config(), api.db, RealClock())
    actor.store = api.store()
    applied: list[tuple[str, str, str]] = []

    def spy(fp: str, *, by: str, via: str, now_ms: int, record: bool = True) -> list[object]:
        applied.append((fp, by, via))
        return []

    actor.pipeline.ack = spy  # type: ignore[method-assign,assignment]
    actor._poll_store(NOW)
    actor.store.close()
    assert applied == [(HOT_FP, "ops-phone", "api")]
