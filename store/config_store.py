"""The hub's config history: every desired version of every target, node reports, signing sequences.

Append-only: a version is never changed or deleted (a rollback is a new version, see
``actors/configsync/history.py``). Documents are stored as canonical CBOR, so the stored bytes
hash to the version's ``hash``. One SQLite file in WAL mode (``store/database.py``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import cbor2
import orjson

from pymonitor.actors.configsync.canonical import canonical_bytes
from pymonitor.actors.configsync.desired import DesiredState
from pymonitor.messages.config import ConfigReport

from .database import Migration, StoreError, open_store

CONFIG_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            """CREATE TABLE config_versions (
                target TEXT NOT NULL, version INTEGER NOT NULL, doc BLOB NOT NULL, hash TEXT NOT NULL,
                created_ms INTEGER NOT NULL, author TEXT NOT NULL, note TEXT NOT NULL, restores INTEGER NOT NULL,
                PRIMARY KEY (target, version)) WITHOUT ROWID""",
            """CREATE TABLE config_reports (
                id INTEGER PRIMARY KEY, node TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL,
                status TEXT NOT NULL, ts_ms INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
                previous_version INTEGER NOT NULL, conflicts BLOB NOT NULL, failed_checks TEXT NOT NULL)""",
            "CREATE INDEX config_reports_node ON config_reports (node, id)",
            # The last signing sequence per key id: a restarted hub must never reuse one (nodes refuse replays).
            "CREATE TABLE signing_seq (key_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
        ),
    ),
)


class VersionConflictError(StoreError):
    """Someone else stored a version of the target first; re-read the latest and redo the change."""


_VERSION_COLUMNS = "target, version, doc, hash, created_ms, author, note, restores"
_REPORT_COLUMNS = "node, version, hash, status, ts_ms, reason, detail, previous_version, conflicts, failed_checks"


def _state(row: tuple[Any, ...]) -> DesiredState:
    target, version, doc, hash_, created_ms, author, note, restores = row
    return DesiredState(
        target=target,
        version=version,
        doc=cbor2.loads(doc),
        hash=hash_,
        created_ms=created_ms,
        author=author,
        note=note,
        restores=restores,
    )


def _report(row: tuple[Any, ...]) -> ConfigReport:
    node, version, hash_, status, ts_ms, reason, detail, previous, conflicts, failed = row
    return ConfigReport(
        node=node,
        version=version,
        hash=hash_,
        status=status,
        ts_ms=ts_ms,
        reason=reason,
        detail=detail,
        previous_version=previous,
        conflicts=cbor2.loads(conflicts),
        failed_checks=orjson.loads(failed),
    )


class ConfigStore:
    """Config versions, reports and signing sequences in one SQLite file; safe across processes."""

    def __init__(self, path: str | Path) -> None:
        opened = open_store(path, CONFIG_MIGRATIONS)
        self.path = opened.path
        self._conn: sqlite3.Connection = opened.db.conn

    def close(self) -> None:
        self._conn.close()

    def append(self, state: DesiredState) -> DesiredState:
        """Store the next version of its target; :class:`VersionConflictError` unless it is latest + 1."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute(
                "SELECT MAX(version) FROM config_versions WHERE target = ?", (state.target,)
            ).fetchone()
            latest = row[0] or 0
            if state.version != latest + 1:
                raise VersionConflictError(
                    f"{self.path}: {state.target} is at version {latest}, cannot store version {state.version}"
                )
            self._conn.execute(
                f"INSERT INTO config_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    state.target,
                    state.version,
                    canonical_bytes(state.doc),
                    state.hash,
                    state.created_ms,
                    state.author,
                    state.note,
                    state.restores,
                ),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return state

    def latest(self, target: str) -> DesiredState | None:
        row = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE target = ? ORDER BY version DESC LIMIT 1",
            (target,),
        ).fetchone()
        return None if row is None else _state(row)

    def get(self, target: str, version: int) -> DesiredState | None:
        row = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE target = ? AND version = ?", (target, version)
        ).fetchone()
        return None if row is None else _state(row)

    def history(self, target: str) -> list[DesiredState]:
        """Every version of ``target``, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM config_versions WHERE target = ? ORDER BY version", (target,)
        ).fetchall()
        return [_state(r) for r in rows]

    def targets(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT target FROM config_versions ORDER BY target")]

    def next_seq(self, key_id: str) -> int:
        """The next signing sequence of ``key_id`` (1 first), durably reserved before it is used."""
        row = self._conn.execute(
            "INSERT INTO signing_seq (key_id, seq) VALUES (?, 1) "
            "ON CONFLICT (key_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
            (key_id,),
        ).fetchone()
        return int(row[0])

    def record_report(self, report: ConfigReport) -> None:
        self._conn.execute(
            f"INSERT INTO config_reports ({_REPORT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report.node,
                report.version,
                report.hash,
                report.status,
                report.ts_ms,
                report.reason,
                report.detail,
                report.previous_version,
                cbor2.dumps(report.conflicts),
                orjson.dumps(report.failed_checks),
            ),
        )

    def reports(self, node: str, limit: int = 100) -> list[ConfigReport]:
        """The latest reports of ``node``, newest first."""
        rows = self._conn.execute(
            f"SELECT {_REPORT_COLUMNS} FROM config_reports WHERE node = ? ORDER BY id DESC LIMIT ?",
            (node, limit),
        ).fetchall()
        return [_report(r) for r in rows]
