"""Schema of the hub store, as numbered migrations (``PRAGMA user_version``)."""

from __future__ import annotations

from .database import Migration

HUB_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            """CREATE TABLE nodes (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT, version TEXT,
                session INTEGER, connects INTEGER, online INTEGER NOT NULL DEFAULT 0,
                last_birth_ms INTEGER, last_seen_ms INTEGER, last_death_reason TEXT)""",
            "CREATE TABLE devices (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, node_id INTEGER)",
            "CREATE TABLE metrics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
            # One row per accepted frame: the primary key is what makes QoS 1 redelivery idempotent.
            """CREATE TABLE frames (
                node_id INTEGER NOT NULL, session INTEGER NOT NULL, seq INTEGER NOT NULL,
                rows INTEGER NOT NULL, readings INTEGER NOT NULL, received_ms INTEGER NOT NULL,
                backfill INTEGER NOT NULL, PRIMARY KEY (node_id, session, seq)) WITHOUT ROWID""",
            # Append-only and unindexed on the hot path; rollups and query indexes come with retention tiers.
            """CREATE TABLE readings (
                device_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
                value REAL NOT NULL, device_seq INTEGER NOT NULL)""",
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY, node TEXT NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
                kind TEXT NOT NULL, severity TEXT NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL,
                value REAL, labels TEXT NOT NULL, details TEXT NOT NULL)""",
            """CREATE TABLE dead_letters (
                id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, node TEXT NOT NULL, topic TEXT NOT NULL,
                reason TEXT NOT NULL, payload BLOB NOT NULL, payload_size INTEGER NOT NULL)""",
        ),
    ),
    Migration(
        2,
        (
            # Bandwidth per node, UTC day, direction and stream; added to in the frames' transaction.
            """CREATE TABLE traffic (
                node TEXT NOT NULL, day TEXT NOT NULL, direction TEXT NOT NULL, stream TEXT NOT NULL,
                bytes INTEGER NOT NULL, frames INTEGER NOT NULL,
                PRIMARY KEY (node, day, direction, stream)) WITHOUT ROWID""",
        ),
    ),
    Migration(
        3,
        (
            # The device's clock corrected from the gateway's receipt stamps; NULL when a batch has none.
            # ts_ms stays what the device said.
            "ALTER TABLE readings ADD COLUMN ts_corrected_ms INTEGER",
            # A held event (seq > 0) shares its node's seq space with reading frames, so its
            # identity goes into frames too: 1 marks such a row.
            "ALTER TABLE frames ADD COLUMN event INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE events ADD COLUMN session INTEGER",
            "ALTER TABLE events ADD COLUMN seq INTEGER",
        ),
    ),
    Migration(
        4,
        (
            # One row per closed window of a summary.batch.v1 frame (not `summaries`: the retention
            # tiers' block table, actors/summary/retention.py, takes that name); the frame's identity goes into
            # frames (event = 2 marks a summary frame), so a redelivered frame stores nothing twice.
            # Stats are floats (steps scaled back); sketch is the frame's compact bucket bytes.
            """CREATE TABLE window_summaries (
                node_id INTEGER NOT NULL, session INTEGER NOT NULL, seq INTEGER NOT NULL,
                device_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, start_ms INTEGER NOT NULL,
                window_ms INTEGER NOT NULL, count INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
                sum REAL NOT NULL, first REAL NOT NULL, last REAL NOT NULL, m2 REAL NOT NULL,
                alpha REAL NOT NULL, sketch BLOB NOT NULL)""",
            "CREATE INDEX window_summaries_series ON window_summaries (device_id, metric_id, start_ms)",
        ),
    ),
    Migration(
        5,
        (
            # Retention tiers (store/hub_retention.py): a time index for rollup scans and expiry,
            # one row per series and window of the 1m/1h/1d rollups (tier 1, 2, 3; sketch: CBOR of
            # DDSketch.to_dict), a watermark per tier, and every row dropped, by tier and reason.
            "CREATE INDEX readings_ts ON readings (ts_ms)",
            """CREATE TABLE rollups (
                tier INTEGER NOT NULL, start_ms INTEGER NOT NULL, device_id INTEGER NOT NULL,
                metric_id INTEGER NOT NULL, count INTEGER NOT NULL, skipped INTEGER NOT NULL,
                min REAL, max REAL, sum REAL, mean REAL, m2 REAL, first REAL, last REAL,
                first_ts_ms INTEGER, last_ts_ms INTEGER, sketch BLOB,
                PRIMARY KEY (tier, start_ms, device_id, metric_id)) WITHOUT ROWID""",
            "CREATE TABLE retention_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
            """CREATE TABLE retention_drops (
                tier TEXT NOT NULL, reason TEXT NOT NULL, rows INTEGER NOT NULL,
                PRIMARY KEY (tier, reason)) WITHOUT ROWID""",
            "CREATE INDEX window_summaries_start ON window_summaries (start_ms)",
        ),
    ),
    Migration(
        6,
        # The time index costs every insert on the hot path (bench ingest: hub CPU per reading up
        # from about 1.3 to 4.2 us with it). Only a hub that runs retention needs it, and
        # HubRetention creates it when it starts.
        ("DROP INDEX IF EXISTS readings_ts",),
    ),
    Migration(
        7,
        (
            # What a fleet is made of, as imported from another system (store/fleet_import.py):
            # one row per device, upserted; extra CSV columns land in labels (a JSON object).
            """CREATE TABLE inventory (
                device_id INTEGER PRIMARY KEY, gateway TEXT NOT NULL, site TEXT NOT NULL, location TEXT,
                battery_type TEXT, model TEXT, firmware TEXT, labels TEXT NOT NULL DEFAULT '{}',
                updated_ms INTEGER NOT NULL)""",
            "CREATE INDEX inventory_site ON inventory (site)",
            "CREATE INDEX inventory_gateway ON inventory (gateway)",
            # One row per `pymonitor import`; finished_ms stays NULL for a run that was interrupted,
            # and the counts are those of the transactions it committed.
            """CREATE TABLE import_runs (
                id INTEGER PRIMARY KEY, kind TEXT NOT NULL, file TEXT NOT NULL, rows_ok INTEGER NOT NULL DEFAULT 0,
                rows_bad INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0, rejects TEXT,
                started_ms INTEGER NOT NULL, finished_ms INTEGER)""",
        ),
    ),
)
