"""gammu-smsd FILES backend: outbox names and atomic writes, sent/error status, inbox replies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.channels import GammuChannel, GammuConfig, GammuInbox, OutgoingMessage
from pymonitor.actors.alerting.channels.gammu import outbox_name
from pymonitor.actors.alerting.sms import segments

NOW_MS = 1_764_806_400_000


@pytest.fixture
def spool(tmp_path: Path) -> GammuConfig:
    for name in ("outbox", "sent", "error", "inbox"):
        (tmp_path / name).mkdir()
    raw = {name: str(tmp_path / name) for name in ("outbox", "sent", "error", "inbox")}
    return GammuConfig.parse(raw | {"max_segments": 1}, "channels.modem")


def _message(**changes: object) -> OutgoingMessage:
    fields: dict[str, object] = {
        "id": "n-7",
        "recipient": "+447700900123",
        "subject": "s",
        "text": "CRIT battery low – 11.2 V “gw-7”",
        "severity": "critical",
    }
    return OutgoingMessage(**(fields | changes))  # type: ignore[arg-type]


def test_outbox_file_follows_gammu_naming_and_holds_utf16_gsm_text(spool: GammuConfig) -> None:
    result = GammuChannel(spool).send(_message(), NOW_MS)
    assert result.status == "sent"
    [path] = list(spool.outbox.iterdir())
    assert path.name == result.provider_id
    assert path.name.startswith("OUTA_+447700900123_") and path.name.endswith(".txt")
    raw = path.read_bytes()
    assert raw[:2] == b"\xff\xfe"
    assert raw.decode("utf-16") == 'CRIT battery low - 11.2 V "gw-7"'


def test_priority_letters_follow_severity() -> None:
    names = {sev: outbox_name(_message(severity=sev)) for sev in ("info", "warning", "critical", "emergency")}
    assert [str(names[s])[3] for s in ("emergency", "critical", "warning", "info")] == ["A", "A", "B", "C"]


def test_retried_message_rewrites_the_same_file_instead_of_sending_twice(spool: GammuConfig) -> None:
    channel = GammuChannel(spool)
    first = channel.send(_message(), NOW_MS)
    second = channel.send(_message(), NOW_MS + 5000)
    other = channel.send(_message(id="n-8"), NOW_MS)
    assert first.provider_id == second.provider_id != other.provider_id
    assert len(list(spool.outbox.iterdir())) == 2  # and no temporary file left behind


def test_long_text_is_cut_to_the_segment_budget(spool: GammuConfig) -> None:
    result = GammuChannel(spool).send(_message(text="x" * 500), NOW_MS)
    text = (spool.outbox / result.provider_id).read_bytes().decode("utf-16")
    assert segments(text) == 1 and text.endswith("...")


def test_recipient_that_is_not_a_number_fails_for_good(spool: GammuConfig) -> None:
    result = GammuChannel(spool).send(_message(recipient="ops@example.org"), NOW_MS)
    assert result.status == "failed" and "not a phone number" in result.detail
    assert outbox_name(_message(recipient="+44_77/00")) is None


def test_unwritable_outbox_is_worth_a_retry(spool: GammuConfig, tmp_path: Path) -> None:
    broken = GammuConfig(outbox=tmp_path / "missing", sent=spool.sent, error=spool.error, inbox=spool.inbox)
    result = GammuChannel(broken).send(_message(), NOW_MS)
    assert result.status == "retry" and "outbox not writable" in result.detail


def test_check_reports_where_gammu_moved_the_file(spool: GammuConfig) -> None:
    channel = GammuChannel(spool)
    name = channel.send(_message(), NOW_MS).provider_id
    assert channel.check(name).status == "sent"
    (spool.outbox / name).replace(spool.sent / name)  # what gammu-smsd does after sending
    assert channel.check(name).status == "delivered"
    (spool.sent / name).replace(spool.error / name)
    assert channel.check(name).status == "failed"
    (spool.error / name).unlink()
    assert channel.check(name).detail == "spool file vanished"


def test_inbox_joins_parts_decodes_and_moves_files_to_processed(spool: GammuConfig) -> None:
    inbox = spool.inbox
    (inbox / "IN20261204_101500_00_+447700900123_00.txt").write_bytes("ACK 4821 ".encode("utf-16"))
    (inbox / "IN20261204_101500_00_+447700900123_01.txt").write_bytes("1234".encode("utf-16"))
    (inbox / "IN20261204_101000_00_07700900124_00.txt").write_bytes(b"STATUS 9999")
    (inbox / "IN20261204_101000_01_+15550100_00.bin").write_bytes(b"\x00\x01")
    (inbox / "INjunk.txt").write_bytes(b"?")
    (inbox / "IN20261399_101000_00_+15550100_00.txt").write_bytes(b"bad month")
    (inbox / "notes.md").write_bytes(b"ignored")
    reader = GammuInbox(inbox)
    first, second = reader.collect()
    assert (first.sender, first.text) == ("07700900124", "STATUS 9999")
    assert (second.sender, second.text) == ("+447700900123", "ACK 4821 1234")
    assert second.received_ms == int(datetime(2026, 12, 4, 10, 15, tzinfo=UTC).timestamp() * 1000)
    assert len(second.files) == 2
    assert reader.skipped == {"bad name": 1, "not text (bin)": 1, "bad date": 1}
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == sorted(first.files + second.files)
    assert reader.collect() == []  # nothing read twice


def test_invalid_utf8_in_inbox_is_replaced_not_raised(spool: GammuConfig) -> None:
    (spool.inbox / "IN20261204_101500_00_+447700900123_00.txt").write_bytes(b"ACK \xff\xfe\xfd")
    [sms] = GammuInbox(spool.inbox).collect()
    assert sms.text.startswith("ACK ")


def test_relative_spool_path_is_refused_naming_the_key(tmp_path: Path) -> None:
    raw = {"outbox": "spool/out", "sent": "/s", "error": "/e", "inbox": "/i"}
    with pytest.raises(AlertConfigError, match=r"^channels.modem.outbox: expected an absolute path"):
        GammuConfig.parse(raw, "channels.modem")
    with pytest.raises(AlertConfigError, match=r"^channels.modem.inbox: expected a non-empty string"):
        GammuConfig.parse({"outbox": "/o", "sent": "/s", "error": "/e"}, "channels.modem")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(
        st.text(alphabet="IN0123456789_+.txbinemsk", min_size=1, max_size=45).filter(lambda n: n not in (".", "..")),
        max_size=6,
        unique=True,
    ),
    body=st.binary(max_size=80),
)
def test_arbitrary_inbox_file_names_never_crash_the_reader(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], body: bytes
) -> None:
    inbox = tmp_path_factory.mktemp("inbox")
    for name in names:
        (inbox / name).write_bytes(body)
    reader = GammuInbox(inbox)
    messages = reader.collect()
    read = sum(len(m.files) for m in messages)
    assert read + sum(reader.skipped.values()) <= len(names)
    assert all(name.startswith("IN") for m in messages for name in m.files)
