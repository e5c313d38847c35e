"""Golden CBOR frames pin the wire bytes of every message tag.

``tests/golden/<tag>.cbor`` holds the encoding of ``EXAMPLES[tag]``. A change that alters the bytes
of an existing tag breaks nodes that already speak it: make a new tag (``.v2``) instead.

Regenerate (only for a new tag, or after a deliberate, reviewed wire change)::

    PM_REGEN_GOLDEN=1 /work/venv/bin/pytest -q tests/test_messages_golden.py

With ``PM_REGEN_GOLDEN=1`` the files are written instead of compared; review the diff before committing.

``tests/golden/variants/`` pins other shapes of a tag that nodes still send (a reading batch with
float64 columns beside the quantized example); ``tests/golden/legacy/`` holds frames of nodes from
before a field was added, which must keep decoding (they are never regenerated).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import product_tags

from pymonitor.messages import (
    Command,
    CommandAck,
    DeadLetter,
    DeliveryAck,
    Event,
    NodeBirth,
    NodeDeath,
    RawRequest,
    ReadingBatch,
    SummaryBatch,
    decode,
    encode,
)
from pymonitor.messages.config import ConfigDesired, ConfigReport
from pymonitor.messages.packing import PackedFrame
from pymonitor.messages.registry import spec_for_tag
from pymonitor.messages.signed import SignedCommand
from pymonitor.messages.summaries import pack_sketch

GOLDEN_DIR = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("PM_REGEN_GOLDEN") == "1"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

PACKED_INNER = NodeDeath(node="gw-field-3", session=1_767_225_000, reason="shutdown", ts_ms=T0_MS)
_INNER_FRAME = bytes.fromhex(
    "a561746d6e6f64652e64656174682e7631646e6f64656a67772d6669656c642d336773657373696f6e1a6955b6a866726561"
    "736f6e6873687574646f776e6574735f6d731b0000019b76daa800"
)
_ZLIB_BODY = bytes.fromhex(
    "78da5b9a58929b979f92aa97929a5892a157669802e265a597eba665a6e6a4e81aa717a7161767e6e74965866e5b9156949a"
    "589c9f97519c515a92925f9e975a521c9f5b2ccdc0c038bbecd60a0600a15b1e27"
)

_BATCH: dict[str, Any] = {
    "node": "gw-field-3",
    "session": 1_767_225_000,
    "seq": 2**40 + 17,
    "devices": ["bat-001", "bat-002", "bat-003"],
    "metrics": ["volts", "temp_c", "rssi_dbm"],
    "device_index": [0, 1, 2, 0, 1],
    "device_seq": [100, 250, 7, 101, 251],
    "ts_ms": [T0_MS, T0_MS + 40, T0_MS + 75, T0_MS + 60_000, T0_MS + 60_040],
    "values": [
        [3.71, 3.64, None, 3.70, 3.63],
        [21.5, -4.25, 18.0, math.nan, -4.5],
        [-71.0, -88.0, -95.5, -70.0, None],
    ],
    "backfill": True,
    "received_ms": [T0_MS + 350, T0_MS + 390, T0_MS + 420, T0_MS + 60_310, T0_MS + 60_700],
}
FLOAT64_BATCH = ReadingBatch.build(**_BATCH)  # no value_scale: float64 columns
# The example: the same readings as int64 steps of each metric's resolution (1 mV, 0.01 degC, 0.5 dB).
QUANTIZED_BATCH = ReadingBatch.build(**_BATCH, value_scale=[0.001, 0.01, 0.5])

EXAMPLES: dict[str, object] = {
    # zlib of a fixed inner frame, written out: the golden bytes must not depend on a compressor's version.
    "frame.packed.v1": PackedFrame(codec="zlib", size=len(_INNER_FRAME), body=_ZLIB_BODY),
    "reading.batch.v1": QUANTIZED_BATCH,
    "event.v1": Event(
        node="shop-web",
        ts_ms=T0_MS + 1_234,
        kind="battery.low",
        severity="warning",
        message="bat-002 below 3.3 V",
        source="bat-002",
        value=3.29,
        labels={"site": "north-field", "chemistry": "LiFePO4"},
        details={"threshold_v": 3.3, "samples": [3.31, 3.3, 3.29], "forecast": {"empty_in_h": 41, "sure": False}},
        session=1_767_225_000,
        seq=43,
    ),
    "dead.letter.v1": DeadLetter(
        node="hub-1",
        ts_ms=T0_MS + 5,
        topic="pm/v1/field/gw-field-3/up/readings",
        reason="reading.batch.v1 at $.ts_ms: 8 bytes do not hold 2 rows of 8 bytes",
        payload=bytes(range(16)),
        payload_size=4_096,
    ),
    "command.v1": Command(
        id="cmd-0001",
        name="set-interval",
        ts_ms=T0_MS + 10,
        args={"interval_s": 300, "devices": ["bat-001", "bat-002"], "jitter": 0.25, "note": None, "blob": b"\x00\xff"},
        issuer="ops@hub",
    ),
    "ack.command.v1": CommandAck(
        node="gw-field-3",
        id="cmd-0001",
        ts_ms=T0_MS + 2_500,
        status="refused",
        detail="interval below the 60 s minimum",
        result={"min_interval_s": 60, "applied": False},
    ),
    "ack.delivery.v1": DeliveryAck(
        node="gw-field-3",
        session=1_767_225_000,
        ranges=[[1, 40], [42, 42], [2**63 - 2, 2**63 - 1]],
        hub_ts_ms=T0_MS + 3_000,
    ),
    "node.birth.v1": NodeBirth(
        node="gw-field-3",
        session=1_767_225_000,
        ts_ms=T0_MS,
        role="gateway",
        version="0.1.0",
        connects=3,
        devices=120,
        capabilities=["readings", "backfill", "cmd:set-interval"],
    ),
    "node.death.v1": NodeDeath(node="gw-field-3", session=1_767_225_000, reason="connection lost"),
    "raw.request.v1": RawRequest(
        id="raw-0007",
        from_ms=T0_MS,
        to_ms=T0_MS + 3_600_000,
        ts_ms=T0_MS + 86_400_000,
        devices=["bat-002", "bat-003"],
        reason="anomaly on bat-002 at 00:12",
    ),
    # A raw.request.v1 frame written out (id raw-0007, the first hour of 2026): the signed bytes must not drift.
    "command.signed.v1": SignedCommand(
        body=bytes.fromhex(
            "a861746e7261772e726571756573742e7631626964687261772d303030376766726f6d5f6d731b0000019b76daa80065746f"
            "5f6d731b0000019b771196806574735f6d731b0000019b7c01040067646576696365738066726561736f6e60647469657263726177"
        ),
        key_id="0123456789abcdef",
        issued_ms=T0_MS + 86_400_000,
        expires_ms=T0_MS + 86_400_000 + 600_000,
        seq=2**40 + 3,
        signature=bytes(range(64, 128)),
    ),
    "config.desired.v1": ConfigDesired(
        node="gw-field-3",
        version=7,
        hash="5f" * 32,
        doc={"node": {"name": "gw-field-3"}, "broker": {"url": "mqtts://hub.example:8883"}, "hub": {"raw_days": 3.5}},
        key_id="0123456789abcdef",
        issued_ms=T0_MS,
        expires_ms=T0_MS + 30 * 86_400_000,
        seq=42,
        signature=bytes(range(64)),
    ),
    "config.report.v1": ConfigReport(
        node="gw-field-3",
        version=7,
        hash="5f" * 32,
        status="applied",
        ts_ms=T0_MS + 1_000,
        detail="1 conflict(s) settled by hub-wins",
        previous_version=6,
        conflicts=[{"path": "hub.raw_days", "base": 7.0, "local": 5.0, "remote": 3.5}],
        failed_checks=["broker_reachable"],
    ),
    # Two hourly windows, quantized (0.01 degC; 1 mV): columns written out so the bytes are the layout's alone.
    "summary.batch.v1": SummaryBatch(
        node="gw-field-3",
        session=1_767_225_000,
        seq=2**40 + 18,
        devices=["bat-001", "bat-002"],
        metrics=["temp_c", "volts"],
        window_ms=3_600_000,
        alpha=0.01,
        rows=2,
        device_index=bytes.fromhex("0000000001000000"),
        metric_index=bytes.fromhex("0000000001000000"),
        window_start_ms=(T0_MS).to_bytes(8, "little") + (0).to_bytes(8, "little"),
        count=(3).to_bytes(8, "little") + (1).to_bytes(8, "little"),
        min=(-425).to_bytes(8, "little", signed=True) + (3710).to_bytes(8, "little"),
        max=(2150).to_bytes(8, "little") + (3710).to_bytes(8, "little"),
        sum=(3525).to_bytes(8, "little") + (3710).to_bytes(8, "little"),
        first=(2150).to_bytes(8, "little") + (3710).to_bytes(8, "little"),
        last=(1800).to_bytes(8, "little") + (3710).to_bytes(8, "little"),
        m2=(3 * (2150**2 + 425**2 + 1800**2) - 3525**2).to_bytes(8, "little") + (0).to_bytes(8, "little"),
        sketches=[pack_sketch({145: 1, 154: 1}, {73: 1}, 0), pack_sketch({66: 1}, {}, 0, bases=(66, 0))],
        value_scale=[0.01, 0.001],
        late=2,
    ),
}


def golden_path(tag: str) -> Path:
    return GOLDEN_DIR / f"{tag}.cbor"


@pytest.fixture(scope="module", autouse=True)
def regenerate_golden_files() -> None:
    """With PM_REGEN_GOLDEN=1, write every golden file before the comparisons run."""
    if REGENERATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        for tag, msg in EXAMPLES.items():
            golden_path(tag).write_bytes(encode(msg))


@pytest.mark.parametrize("tag", sorted(EXAMPLES))
def test_example_is_of_its_tag(tag: str) -> None:
    spec = spec_for_tag(tag)
    assert spec is not None, f"{tag} is not registered (anymore?)"
    assert type(EXAMPLES[tag]) is spec.cls


@pytest.mark.parametrize("tag", sorted(EXAMPLES))
def test_encoding_matches_golden_bytes(tag: str) -> None:
    assert encode(EXAMPLES[tag]) == golden_path(tag).read_bytes(), (
        f"the wire bytes of {tag} changed: if deliberate, add a new tag instead (see this module's docstring)"
    )


@pytest.mark.parametrize("tag", sorted(EXAMPLES))
def test_golden_bytes_decode_to_the_example(tag: str) -> None:
    frame = golden_path(tag).read_bytes()
    assert decode(frame) == EXAMPLES[tag]
    assert encode(decode(frame)) == frame


def test_every_registered_tag_has_an_example_and_a_golden_file() -> None:
    missing_examples = sorted(set(product_tags()) - set(EXAMPLES))
    assert not missing_examples, f"add an example to EXAMPLES and regenerate golden files for {missing_examples}"
    missing_files = sorted(tag for tag in product_tags() if not golden_path(tag).is_file())
    assert not missing_files, f"no golden file for {missing_files}: run with PM_REGEN_GOLDEN=1"


def test_every_golden_file_has_an_example() -> None:
    stray = sorted(p.name for p in GOLDEN_DIR.glob("*.cbor") if p.name.removesuffix(".cbor") not in EXAMPLES)
    assert not stray, f"golden files without an example (a tag must keep its example while it is spoken): {stray}"


def test_the_packed_example_inflates_to_its_inner_message() -> None:
    from pymonitor.messages import decode_unpacked

    assert decode_unpacked(golden_path("frame.packed.v1").read_bytes()) == PACKED_INNER


VARIANTS: dict[str, object] = {
    "reading.batch.v1.float64": FLOAT64_BATCH,
    # a metric whose [summary] config asks no quantile: its rows carry no sketch
    "summary.batch.v1.unsketched": dataclasses.replace(
        EXAMPLES["summary.batch.v1"],  # type: ignore[type-var]
        sketches=[b""] * EXAMPLES["summary.batch.v1"].rows,  # type: ignore[attr-defined]
    ),
}
"""Other shapes of a tag still sent, pinned in ``golden/variants/<name>.cbor``."""

LEGACY: dict[str, object] = {
    "reading.batch.v1.before-received_ms": dataclasses.replace(FLOAT64_BATCH, received_ms=b""),
    "reading.batch.v1.before-value_scale": FLOAT64_BATCH,
    "raw.request.v1.before-tier": EXAMPLES["raw.request.v1"],
    "event.v1.before-session": dataclasses.replace(EXAMPLES["event.v1"], session=0, seq=0),  # type: ignore[type-var]
}
"""What each frame in ``golden/legacy/`` decodes to: fields added later take their defaults."""


@pytest.fixture(scope="module", autouse=True)
def regenerate_variant_files() -> None:
    if REGENERATE:
        (GOLDEN_DIR / "variants").mkdir(exist_ok=True)
        for name, msg in VARIANTS.items():
            (GOLDEN_DIR / "variants" / f"{name}.cbor").write_bytes(encode(msg))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_encoding_matches_its_golden_bytes_and_decodes_back(name: str) -> None:
    frame = (GOLDEN_DIR / "variants" / f"{name}.cbor").read_bytes()
    assert encode(VARIANTS[name]) == frame, f"the wire bytes of {name} changed"
    assert decode(frame) == VARIANTS[name]


def test_every_variant_file_has_a_message() -> None:
    stray = sorted(p.stem for p in (GOLDEN_DIR / "variants").glob("*.cbor") if p.stem not in VARIANTS)
    assert not stray


def test_quantized_and_float64_examples_carry_the_same_readings() -> None:
    quantized, plain = QUANTIZED_BATCH.columns(), FLOAT64_BATCH.columns()
    assert QUANTIZED_BATCH.value_scale and not FLOAT64_BATCH.value_scale
    assert [col.tobytes() for col in quantized.values] == [col.tobytes() for col in plain.values]  # type: ignore[attr-defined]
    assert QUANTIZED_BATCH.reading_count() == FLOAT64_BATCH.reading_count() == 12
    assert QUANTIZED_BATCH.values != FLOAT64_BATCH.values  # int64 steps on the wire, not float64


@pytest.mark.parametrize("path", sorted((GOLDEN_DIR / "legacy").glob("*.cbor")), ids=lambda p: p.name)
def test_frames_from_nodes_before_an_added_field_still_decode(path: Path) -> None:
    """Fields added later have defaults, so a frame from an older node decodes to the same message."""
    assert path.stem in LEGACY, f"say in LEGACY what {path.name} decodes to"
    assert decode(path.read_bytes()) == LEGACY[path.stem]
