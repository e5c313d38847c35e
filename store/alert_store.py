"""The alert history: every alert transition, notification, delivery attempt, acknowledgement,
escalation step and suppression (muted or deferred, and why), kept so ``pymonitor alerts history``
can answer "what happened and who knew".

One SQLite file (WAL) owned by the alerting actor. Nothing is summarised away: a storm of
10,000 alerts is 10,000 ``alerts`` rows even when it became three notifications, and each
notification lists the fingerprints it carried. Writes are batched per call (``executemany`` in
one transaction), so recording a storm costs milliseconds, not a commit per alert.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymonitor.actors.alerting.alert import Alert

from .database import Migration, open_store, transaction

ALERT_STORE_MIGRATIONS = (
    Migration(
        1,
        (
            """CREATE TABLE alerts (
                id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, rule TEXT NOT NULL, labels TEXT NOT NULL,
                severity TEXT NOT NULL, state TEXT NOT NULL, summary TEXT NOT NULL, value REAL,
                starts_ms INTEGER NOT NULL, ends_ms INTEGER, recorded_ms INTEGER NOT NULL)""",
            "CREATE INDEX alerts_fingerprint ON alerts (fingerprint, id)",
            "CREATE INDEX alerts_recorded ON alerts (recorded_ms)",
            """CREATE TABLE notifications (
                id INTEGER PRIMARY KEY, receiver TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL,
                group_key TEXT NOT NULL, alert_count INTEGER NOT NULL, fingerprints TEXT NOT NULL,
                text TEXT NOT NULL, created_ms INTEGER NOT NULL)""",
            """CREATE TABLE attempts (
                notification_id INTEGER NOT NULL REFERENCES notifications (id), attempt INTEGER NOT NULL,
                status TEXT NOT NULL, detail TEXT NOT NULL, provider_id TEXT, ts_ms INTEGER NOT NULL)""",
            "CREATE INDEX attempts_notification ON attempts (notification_id)",
            """CREATE TABLE acknowledgements (
                id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, action TEXT NOT NULL, by TEXT NOT NULL,
                via TEXT NOT NULL, accepted INTEGER NOT NULL, detail TEXT NOT NULL, ts_ms INTEGER NOT NULL)""",
            """CREATE TABLE escalations (
                id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, chain TEXT NOT NULL, level INTEGER NOT NULL,
                receivers TEXT NOT NULL, reason TEXT NOT NULL, ts_ms INTEGER NOT NULL)""",
            """CREATE TABLE silences (
                id INTEGER PRIMARY KEY, matchers TEXT NOT NULL, starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL,
                created_by TEXT NOT NULL, comment TEXT NOT NULL, created_ms INTEGER NOT NULL)""",
        ),
    ),
    Migration(
        2,
        (
            """CREATE TABLE suppressions (
                id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
                until_ms INTEGER, ts_ms INTEGER NOT NULL)""",
            "CREATE INDEX suppressions_fingerprint ON suppressions (fingerprint, id)",
        ),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    """Why an alert did not notify when it fired: muted (silence, window, inhibition) or deferred to a digest."""

    fingerprint: str
    kind: str  # "muted" | "deferred"
    reason: str
    until_ms: int | None = None  # deferred: when the digest goes out


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationRecord:
    """What went to one recipient through one channel, and which alerts it carried."""

    receiver: str
    channel: str
    recipient: str
    group_key: str
    fingerprints: Sequence[str]
    text: str
    created_ms: int


class AlertStore:
    """The alerting actor's history file; see the module docstring."""

    def __init__(self, path: str | Path) -> None:
        opened = open_store(path, ALERT_STORE_MIGRATIONS)
        self.path = opened.path
        self.set_aside = opened.set_aside
        self.conn: sqlite3.Connection = opened.db.conn

    def close(self) -> None:
        self.conn.close()

    # writing

    def record_alerts(self, alerts: Sequence[Alert], recorded_ms: int) -> None:
        """Every transition, in one transaction."""
        if not alerts:
            return
        with transaction(self.conn):
            self.conn.executemany(
                "INSERT INTO alerts (fingerprint, rule, labels, severity, state, summary, value, starts_ms, ends_ms,"
                " recorded_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (a.fingerprint, a.rule, json.dumps(dict(a.labels), sort_keys=True), a.severity, a.state,
                     a.summary, a.value, a.starts_ms, a.ends_ms, recorded_ms)
                    for a in alerts
                ),
            )  # fmt: skip

    def record_suppressions(self, rows: Sequence[Suppression], ts_ms: int) -> None:
        """A batch of "did not notify, and why", in one transaction (a silenced storm is many rows)."""
        if not rows:
            return
        with transaction(self.conn):
            self.conn.executemany(
                "INSERT INTO suppressions (fingerprint, kind, reason, until_ms, ts_ms) VALUES (?, ?, ?, ?, ?)",
                ((r.fingerprint, r.kind, r.reason, r.until_ms, ts_ms) for r in rows),
            )

    def record_notification(self, record: NotificationRecord) -> int:
        """The notification's id, for its delivery attempts."""
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO notifications (receiver, channel, recipient, group_key, alert_count, fingerprints, text,"
                " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.receiver, record.channel, record.recipient, record.group_key, len(record.fingerprints),
                 json.dumps(list(record.fingerprints)), record.text, record.created_ms),
            )  # fmt: skip
        assert cur.lastrowid is not None
        return cur.lastrowid

    def record_attempt(
        self, notification_id: int, attempt: int, status: str, detail: str, provider_id: str | None, ts_ms: int
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO attempts (notification_id, attempt, status, detail, provider_id, ts_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (notification_id, attempt, status, detail, provider_id, ts_ms),
            )

    def record_acknowledgement(
        self, fingerprint: str, action: str, by: str, via: str, accepted: bool, detail: str, ts_ms: int
    ) -> None:
        """Accepted and refused replies alike: the audit trail of who tried to act on what."""
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO acknowledgements (fingerprint, action, by, via, accepted, detail, ts_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (fingerprint, action, by, via, int(accepted), detail, ts_ms),
            )

    def record_escalation(
        self, fingerprint: str, chain: str, level: int, receivers: Sequence[str], reason: str, ts_ms: int
    ) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO escalations (fingerprint, chain, level, receivers, reason, ts_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (fingerprint, chain, level, json.dumps(list(receivers)), reason, ts_ms),
            )

    def add_silence(
        self, matchers: Sequence[str], starts_ms: int, ends_ms: int, created_by: str, comment: str, created_ms: int
    ) -> int:
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO silences (matchers, starts_ms, ends_ms, created_by, comment, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (json.dumps(list(matchers)), starts_ms, ends_ms, created_by, comment, created_ms),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    # reading

    def silences(self, now_ms: int) -> list[dict[str, Any]]:
        """Silences not yet expired at ``now_ms``."""
        return self._silence_rows("ends_ms > ?", now_ms)

    def _silence_rows(self, where: str, arg: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT id, matchers, starts_ms, ends_ms, created_by, comment FROM silences WHERE {where} ORDER BY id",
            (arg,),
        ).fetchall()
        keys = ("id", "matchers", "starts_ms", "ends_ms", "created_by", "comment")
        return [{**dict(zip(keys, row, strict=True)), "matchers": json.loads(row[1])} for row in rows]

    def active(self) -> list[dict[str, Any]]:
        """Alerts whose latest transition is ``firing``, newest first."""
        rows = self.conn.execute(
            "SELECT a.fingerprint, a.rule, a.labels, a.severity, a.summary, a.value, a.starts_ms FROM alerts a"
            " JOIN (SELECT fingerprint, MAX(id) AS id FROM alerts GROUP BY fingerprint) latest ON latest.id = a.id"
            " WHERE a.state = 'firing' ORDER BY a.starts_ms DESC, a.id DESC"
        ).fetchall()
        keys = ("fingerprint", "rule", "labels", "severity", "summary", "value", "starts_ms")
        return [{**dict(zip(keys, row, strict=True)), "labels": json.loads(row[2])} for row in rows]

    def history(
        self,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        fingerprint: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Alert transitions (newest first) with the notifications that carried each and their attempts."""
        where, args = ["1 = 1"], []
        for clause, value in (
            ("recorded_ms >= ?", since_ms),
            ("recorded_ms < ?", until_ms),
            ("fingerprint = ?", fingerprint),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        rows = self.conn.execute(
            "SELECT id, fingerprint, rule, labels, severity, state, summary, value, starts_ms, ends_ms, recorded_ms"
            f" FROM alerts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        keys = ("id", "fingerprint", "rule", "labels", "severity", "state", "summary", "value", "starts_ms", "ends_ms",
                "recorded_ms")  # fmt: skip
        out = [{**dict(zip(keys, row, strict=True)), "labels": json.loads(row[3])} for row in rows]
        for item in out:
            item["notifications"] = self.notifications_of(item["fingerprint"])
            item["acknowledgements"] = self._of("acknowledgements", item["fingerprint"])
            item["escalations"] = self._of("escalations", item["fingerprint"])
            item["suppressions"] = self._of("suppressions", item["fingerprint"])
        return out

    def notifications_of(self, fingerprint: str) -> list[dict[str, Any]]:
        """Notifications that carried this alert, each with its delivery attempts."""
        rows = self.conn.execute(
            "SELECT n.id, n.receiver, n.channel, n.recipient, n.created_ms"
            " FROM notifications n, json_each(n.fingerprints) f WHERE f.value = ? ORDER BY n.id",
            (fingerprint,),
        ).fetchall()
        out = []
        for nid, receiver, channel, recipient, created_ms in rows:
            attempts = self.conn.execute(
                "SELECT attempt, status, detail, provider_id, ts_ms FROM attempts"
                " WHERE notification_id = ? ORDER BY rowid",
                (nid,),
            ).fetchall()
            out.append({
                "id": nid, "receiver": receiver, "channel": channel, "recipient": recipient, "created_ms": created_ms,
                "attempts": [dict(zip(("attempt", "status", "detail", "provider_id", "ts_ms"), a, strict=True))
                             for a in attempts],
            })  # fmt: skip
        return out

    def _of(self, table: str, fingerprint: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(f"SELECT * FROM {table} WHERE fingerprint = ? ORDER BY id", (fingerprint,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def notification_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        """The notification a carrier's message id belongs to (for its delivery status callbacks)."""
        row = self.conn.execute(
            "SELECT n.id, n.receiver, n.channel, n.recipient, n.fingerprints FROM attempts a"
            " JOIN notifications n ON n.id = a.notification_id WHERE a.provider_id = ? ORDER BY a.rowid DESC LIMIT 1",
            (provider_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "receiver", "channel", "recipient", "fingerprints")
        return {**dict(zip(keys, row, strict=True)), "fingerprints": json.loads(row[4])}

    def last_acknowledgement_id(self) -> int:
        """The newest acknowledgement row id (0 for none): where a starting actor begins polling."""
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM acknowledgements").fetchone()[0])

    def acknowledgements_after(self, last_id: int, *, via: str | None = None) -> list[dict[str, Any]]:
        """Accepted acknowledgements newer than ``last_id`` (e.g. those the CLI wrote), oldest first."""
        cur = self.conn.execute(
            "SELECT * FROM acknowledgements WHERE id > ? AND accepted = 1 AND (? IS NULL OR via = ?) ORDER BY id",
            (last_id, via, via),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def silences_after(self, last_id: int) -> list[dict[str, Any]]:
        """Silences added after row ``last_id``, expired ones included (the caller's clock decides), oldest first."""
        return self._silence_rows("id > ?", last_id)

    def counts(self) -> dict[str, int]:
        """Rows per table: alerts recorded, notifications made, attempts, acknowledgements, escalations."""
        tables = ("alerts", "notifications", "attempts", "acknowledgements", "escalations", "silences", "suppressions")
        return {t: int(self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}

    def fingerprints_recorded(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT DISTINCT fingerprint FROM alerts")}
