"""The alert history keeps every transition, notification, attempt, acknowledgement and escalation step."""

from __future__ import annotations

from pathlib import Path

from pymonitor.actors.alerting.alert import Alert, fingerprint
from pymonitor.store.alert_store import AlertStore, NotificationRecord

T0 = 1_767_225_600_000


def alert(n: int, state: str = "firing", site: str = "A") -> Alert:
    labels = {"device": f"d{n}", "site": site}
    return Alert(
        fingerprint=fingerprint("battery_low", labels), rule="battery_low", labels=labels, severity="warning",
        state=state, summary=f"battery low on d{n}", value=3.1, starts_ms=T0 + n,  # type: ignore[arg-type]
        ends_ms=None if state == "firing" else T0 + 10_000,
    )  # fmt: skip


def test_a_storm_is_recorded_alert_by_alert_even_when_it_became_one_notification(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    storm = [alert(n) for n in range(10_000)]
    store.record_alerts(storm, T0)
    nid = store.record_notification(
        NotificationRecord(
            receiver="ops", channel="sms", recipient="+4915100000000", group_key="site=A",
            fingerprints=[a.fingerprint for a in storm], text="10000 alerts at 1 site", created_ms=T0 + 5,
        )
    )  # fmt: skip
    store.record_attempt(nid, 1, "retry", "HTTP 503", None, T0 + 6)
    store.record_attempt(nid, 2, "sent", "", "msg-77", T0 + 1_006)
    assert store.counts()["alerts"] == 10_000 and store.counts()["notifications"] == 1
    assert store.fingerprints_recorded() == {a.fingerprint for a in storm}
    (latest,) = store.history(fingerprint=storm[42].fingerprint)
    (note,) = latest["notifications"]
    assert note["recipient"] == "+4915100000000"
    assert [a["status"] for a in note["attempts"]] == ["retry", "sent"]
    store.close()


def test_active_lists_what_still_fires_and_history_is_newest_first(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    store.record_alerts([alert(1), alert(2)], T0)
    store.record_alerts([alert(1, "resolved")], T0 + 10_000)
    assert [a["labels"]["device"] for a in store.active()] == ["d2"]
    states = [(h["labels"]["device"], h["state"]) for h in store.history()]
    assert states == [("d1", "resolved"), ("d2", "firing"), ("d1", "firing")]
    assert [h["state"] for h in store.history(since_ms=T0 + 1)] == ["resolved"]
    assert store.history(until_ms=T0 + 1, limit=1)[0]["state"] == "firing"
    store.close()


def test_acknowledgements_refused_ones_included_and_escalations_are_kept_and_survive_reopen(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    a = alert(3)
    store.record_alerts([a], T0)
    store.record_escalation(a.fingerprint, "night", 1, ["oncall-2"], "no ack within 10m", T0 + 600_000)
    store.record_acknowledgement(a.fingerprint, "ack", "+4915199999999", "sms", False, "sender not allowed", T0 + 1)
    store.record_acknowledgement(a.fingerprint, "ack", "+4915100000000", "sms", True, "", T0 + 2)
    store.close()
    again = AlertStore(tmp_path / "alerts.db")
    (h,) = again.history()
    assert [x["accepted"] for x in h["acknowledgements"]] == [0, 1]
    assert h["escalations"][0]["level"] == 1 and "oncall-2" in h["escalations"][0]["receivers"]
    again.close()


def test_silences_are_listed_until_they_expire(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    sid = store.add_silence(['site="A"'], T0, T0 + 3_600_000, "admin", "maintenance", T0)
    assert [s["id"] for s in store.silences(T0 + 1)] == [sid]
    assert store.silences(T0 + 1)[0]["matchers"] == ['site="A"']
    assert store.silences(T0 + 3_600_000) == []
    store.record_alerts([], T0)  # nothing to record is not an error
    assert store.counts()["alerts"] == 0
    store.close()
