"""Signed control commands: a node that trusts keys acts only on valid command.signed.v1 frames, and says why not."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from test_end_to_end import RawClient
from typer.testing import CliRunner

from pymonitor.actors.configsync.commands import (
    BODY_KEY,
    COMMAND_TTL_MS,
    command_id,
    next_command_seq,
    open_command,
    sign_command,
)
from pymonitor.actors.configsync.errors import ConfigSyncError, KeyFileError, SignatureError
from pymonitor.actors.configsync.signing import (
    CLOCK_SKEW_MS,
    ReplayGuard,
    generate_key,
    save_private_key,
    sign,
    trusted_keys,
)
from pymonitor.actors.runtime.clock import RealClock
from pymonitor.actors.runtime.node import _command_trust
from pymonitor.actors.runtime.supervisor import Supervisor
from pymonitor.broker import BrokerAddress, topics
from pymonitor.cli.main import app
from pymonitor.deploy.config import ConfigError, parse_config
from pymonitor.messages import Command, CommandAck, MessageError, NodeDeath, RawRequest, SignedCommand, encode
from pymonitor.simulators.fleet import FleetSimulator

T0_MS = 1_767_225_600_000
HUB_KEY = generate_key()
TRUSTED = trusted_keys([HUB_KEY.public_key()])
OTHER_KEY = generate_key()
REQUEST = RawRequest(id="raw-1", from_ms=T0_MS - 3_600_000, to_ms=T0_MS, ts_ms=T0_MS)
FRAME = encode(REQUEST)


def refusal(frame: bytes | object, guard: ReplayGuard | None = None, now_ms: int = T0_MS) -> str:
    """The reason ``open_command`` refuses with (fails the test if it accepts)."""
    with pytest.raises(SignatureError) as err:
        open_command(frame, TRUSTED, guard or ReplayGuard(), now_ms)
    return err.value.reason


# ---------------------------------------------------------------- the core


def test_a_signed_raw_request_opens_to_the_very_request() -> None:
    signed = sign_command(FRAME, HUB_KEY, T0_MS, seq=1)
    assert signed.body == FRAME and signed.expires_ms == T0_MS + COMMAND_TTL_MS and signed.seq == 1
    assert open_command(encode(signed), TRUSTED, ReplayGuard(), T0_MS + 1) == REQUEST
    command = Command(id="c-1", name="set-interval", ts_ms=T0_MS, args={"interval_s": 60})
    assert open_command(sign_command(encode(command), HUB_KEY, T0_MS, seq=2), TRUSTED, ReplayGuard(), T0_MS) == command


@pytest.mark.parametrize("plain", [REQUEST, Command(id="c-1", name="reboot", ts_ms=T0_MS)])
def test_a_plain_control_command_is_refused_as_unsigned(plain: object) -> None:
    assert refusal(plain) == "unsigned"
    assert refusal(encode(plain)) == "unsigned"


def test_a_signed_command_without_a_signature_is_refused_as_unsigned() -> None:
    signed = sign_command(FRAME, HUB_KEY, T0_MS, seq=1)
    assert refusal(dataclasses.replace(signed, signature=b"")) == "unsigned"


def test_a_command_signed_by_a_key_the_node_does_not_trust_is_refused_as_unknown_key() -> None:
    assert refusal(sign_command(FRAME, generate_key(), T0_MS, seq=1)) == "unknown_key"


@pytest.mark.parametrize(
    "change",
    [
        {"body": encode(dataclasses.replace(REQUEST, from_ms=T0_MS - 7_200_000))},  # a wider window than signed
        {"seq": 2},
        {"expires_ms": T0_MS + 2 * COMMAND_TTL_MS},
        {"signature": bytes(64)},
    ],
    ids=["body", "seq", "expires_ms", "signature"],
)
def test_a_command_changed_after_signing_is_refused_as_forged(change: dict[str, Any]) -> None:
    signed = sign_command(FRAME, HUB_KEY, T0_MS, seq=1)
    assert refusal(dataclasses.replace(signed, **change)) == "forged"


def test_a_rollout_or_config_signature_never_verifies_as_a_command() -> None:
    """The same key signs rollouts and configs: their bodies are other maps, so the signature does not carry over."""
    env = sign({"frame": FRAME}, HUB_KEY, issued_ms=T0_MS, expires_ms=T0_MS + 60_000, seq=1)
    moved = SignedCommand(
        body=FRAME, key_id=env.key_id, issued_ms=T0_MS, expires_ms=T0_MS + 60_000, seq=1, signature=env.signature
    )
    assert refusal(moved) == "forged"


@pytest.mark.parametrize(
    ("now_ms", "issued_ms"),
    [(T0_MS + COMMAND_TTL_MS, T0_MS), (T0_MS, T0_MS + CLOCK_SKEW_MS + 1)],
    ids=["expired", "issued-in-the-future"],
)
def test_an_expired_or_future_command_is_refused_as_stale(now_ms: int, issued_ms: int) -> None:
    assert refusal(sign_command(FRAME, HUB_KEY, issued_ms, seq=1), now_ms=now_ms) == "stale"


def test_a_command_accepted_once_is_refused_as_replayed_and_so_is_one_below_the_window() -> None:
    guard = ReplayGuard()
    signed = sign_command(FRAME, HUB_KEY, T0_MS, seq=100)
    open_command(signed, TRUSTED, guard, T0_MS)
    assert refusal(signed, guard) == "replayed"
    assert refusal(sign_command(FRAME, HUB_KEY, T0_MS, seq=100 - guard.window), guard) == "replayed"
    open_command(sign_command(FRAME, HUB_KEY, T0_MS, seq=99), TRUSTED, guard, T0_MS)  # late but within the window


def test_a_refused_command_does_not_use_up_its_sequence() -> None:
    guard = ReplayGuard()
    signed = sign_command(FRAME, HUB_KEY, T0_MS, seq=5)
    assert refusal(signed, guard, now_ms=T0_MS + COMMAND_TTL_MS) == "stale"
    assert open_command(signed, TRUSTED, guard, T0_MS) == REQUEST


def test_a_validly_signed_body_that_is_no_control_command_is_a_message_error() -> None:
    death = encode(NodeDeath(node="gw-1", session=1, reason="shutdown"))
    env = sign({BODY_KEY: death}, HUB_KEY, issued_ms=T0_MS, expires_ms=T0_MS + 60_000, seq=1)
    signed = SignedCommand(body=death, key_id=env.key_id, issued_ms=T0_MS, expires_ms=T0_MS + 60_000, seq=1)
    signed = dataclasses.replace(signed, signature=env.signature)
    with pytest.raises(MessageError, match="expected raw.request.v1 or command.v1, got NodeDeath"):
        open_command(signed, TRUSTED, ReplayGuard(), T0_MS)


@pytest.mark.parametrize(
    ("frame", "ttl_ms", "message"),
    [
        (encode(NodeDeath(node="gw-1", session=1, reason="x")), COMMAND_TTL_MS, "inner_frame: .*got NodeDeath"),
        (b"\xff\x00", COMMAND_TTL_MS, "inner_frame: "),
        (FRAME, 0, "ttl_ms: expected a positive duration, got 0"),
    ],
    ids=["not-a-command", "not-cbor", "no-ttl"],
)
def test_sign_command_refuses_what_no_node_could_act_on(frame: bytes, ttl_ms: int, message: str) -> None:
    with pytest.raises(ConfigSyncError, match=message):
        sign_command(frame, HUB_KEY, T0_MS, seq=1, ttl_ms=ttl_ms)


def test_a_signed_command_needs_a_body() -> None:
    with pytest.raises(MessageError) as err:
        SignedCommand(body=b"", key_id="k", issued_ms=0, expires_ms=1, seq=1)
    assert err.value.path == "$.body"


def test_command_id_finds_the_id_to_answer_a_refusal_with() -> None:
    assert command_id(REQUEST) == "raw-1"
    assert command_id(sign_command(FRAME, generate_key(), T0_MS, seq=1)) == "raw-1"
    garbage = SignedCommand(body=b"\xff", key_id="k", issued_ms=0, expires_ms=1, seq=1)
    assert command_id(garbage) == ""
    assert command_id(NodeDeath(node="gw-1", session=1, reason="x")) == ""


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_open_command_refuses_any_bytes_with_a_signature_or_message_error(frame: bytes) -> None:
    with pytest.raises((SignatureError, MessageError)):
        open_command(frame, TRUSTED, ReplayGuard(), T0_MS)


def test_the_command_sequence_grows_floors_at_the_clock_and_survives_a_damaged_file(tmp_path: Path) -> None:
    key = tmp_path / "hub.pem"
    assert next_command_seq(key, 5) == 5
    assert next_command_seq(key, 5) == 6
    assert next_command_seq(key, 1) == 7  # a clock that went back does not reuse a sequence
    assert (tmp_path / "hub.pem.seq").read_text() == "7\n"
    assert oct((tmp_path / "hub.pem.seq").stat().st_mode & 0o777) == "0o600"
    (tmp_path / "hub.pem.seq").write_text("garbage")
    assert next_command_seq(key, 1_000) == 1_000  # lost state: the clock keeps it above what was used


def test_the_command_sequence_names_a_file_it_cannot_keep(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="hub.pem.seq: cannot keep the command sequence"):
        next_command_seq(tmp_path / "missing-dir" / "hub.pem", 1)


# ---------------------------------------------------------------- the node's own gateways


def _config(tmp_path: Path, **hub: Any) -> Any:
    return parse_config({"node": {"name": "hub-1"}, "hub": {"db": str(tmp_path / "hub.db"), **hub}, "simulator": {}})


def test_a_hub_with_a_signing_key_makes_its_simulated_gateways_trust_it(tmp_path: Path) -> None:
    key_file = tmp_path / "hub.pem"
    save_private_key(HUB_KEY, key_file)
    assert _command_trust(_config(tmp_path, signing_key=str(key_file)), None, None) == TRUSTED
    assert _command_trust(_config(tmp_path, signing_key=str(key_file)), HUB_KEY, None) == TRUSTED  # already loaded
    assert _command_trust(_config(tmp_path), None, None) is None
    synced = {"other": OTHER_KEY.public_key()}  # a config-synced node's trusted_keys, with the hub's own
    assert _command_trust(_config(tmp_path, signing_key=str(key_file)), None, synced) == {**synced, **TRUSTED}
    assert _command_trust(_config(tmp_path), None, synced) == synced
    no_simulator = parse_config({"node": {"name": "hub-1"}, "hub": {"signing_key": str(key_file)}})
    assert _command_trust(no_simulator, None, None) is None
    with pytest.raises(ConfigError, match=r"\[hub\].signing_key"):
        _command_trust(_config(tmp_path, signing_key=str(tmp_path / "nope.pem")), None, None)


# ---------------------------------------------------------------- end to end, over mosquitto


class SignedGateway:
    """One durable summaries gateway that trusts the hub key, and a client that sends to it and reads its acks."""

    FLEET = "signed"
    NODE = "gw-0000"

    def __init__(
        self,
        address: BrokerAddress,
        outbox_dir: Path | None,
        client_id: str,
        trusted: Mapping[str, Ed25519PublicKey] | None = TRUSTED,
    ) -> None:
        self.clock = RealClock()  # real time: the CLI signs with the wall clock
        self.supervisor = Supervisor(self.clock)
        self.fleet = FleetSimulator(
            fleet=self.FLEET,
            devices=3,
            gateways=1,
            address=address,
            clock=self.clock,
            supervisor=self.supervisor,
            outbox_dir=outbox_dir,
            uplink="summaries",
            summary_window_s=60.0,
            trusted_keys=trusted,
        )
        self.client = RawClient(address, client_id, (topics.up(self.FLEET, self.NODE, "ack"),))
        self.fleet.start()
        wait_for(lambda: any(s["connected"] for s in self.fleet.statuses()), what="the gateway to connect")

    @property
    def topic(self) -> str:
        return topics.command(self.FLEET, self.NODE, "raw.request")

    def ask(self, frame: bytes) -> CommandAck:
        self.client.publish(self.topic, frame)
        (ack,) = self.client.take(1, CommandAck, what="the gateway's answer")
        return ack  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        (status,) = self.fleet.statuses()
        return status

    def close(self) -> None:
        self.client.close()
        self.fleet.stop()
        self.supervisor.stop_all()
        self.clock.stop()


@pytest.fixture
def gateway(broker_address: BrokerAddress, tmp_path: Path) -> Iterator[SignedGateway]:
    gw = SignedGateway(broker_address, tmp_path / "outbox", "signed-test")
    try:
        yield gw
    finally:
        gw.close()


def _request(gw: SignedGateway, request_id: str) -> bytes:
    now = gw.clock.now_ms()
    return encode(RawRequest(id=request_id, from_ms=now - 3_600_000, to_ms=now + 60_000, ts_ms=now))


@pytest.mark.needs_mosquitto
def test_a_gateway_with_trusted_keys_refuses_unsigned_serves_signed_and_refuses_a_replay(
    gateway: SignedGateway,
) -> None:
    unsigned = gateway.ask(_request(gateway, "plain-1"))
    signed = encode(sign_command(_request(gateway, "signed-1"), HUB_KEY, gateway.clock.now_ms(), seq=1))
    served = gateway.ask(signed)
    replayed = gateway.ask(signed)
    forged = gateway.ask(encode(sign_command(_request(gateway, "other-1"), generate_key(), gateway.clock.now_ms(), 2)))
    assert (unsigned.id, unsigned.status) == ("plain-1", "refused") and unsigned.detail.startswith("unsigned:")
    assert (served.id, served.status) == ("signed-1", "ok") and set(served.result) == {"frames", "readings"}
    assert (replayed.id, replayed.status) == ("signed-1", "refused") and replayed.detail.startswith("replayed:")
    assert (forged.id, forged.status) == ("other-1", "refused") and forged.detail.startswith("unknown_key:")
    assert gateway.status()["refused_commands"] == 3


@pytest.mark.needs_mosquitto
def test_a_signed_frame_whose_body_is_no_control_command_is_refused_as_invalid(gateway: SignedGateway) -> None:
    death = encode(NodeDeath(node="gw-1", session=1, reason="shutdown"))
    now = gateway.clock.now_ms()
    env = sign({BODY_KEY: death}, HUB_KEY, issued_ms=now, expires_ms=now + 60_000, seq=1)
    frame = SignedCommand(
        body=death, key_id=env.key_id, issued_ms=now, expires_ms=now + 60_000, seq=1, signature=env.signature
    )
    ack = gateway.ask(encode(frame))
    assert (ack.id, ack.status) == ("", "refused") and ack.detail.startswith("invalid: ")


@pytest.mark.needs_mosquitto
@pytest.mark.parametrize("trusted", [TRUSTED, None], ids=["trusting", "without-keys"])
def test_an_in_memory_gateway_opens_signed_commands_only_when_it_trusts_keys(
    broker_address: BrokerAddress, trusted: Mapping[str, Ed25519PublicKey] | None
) -> None:
    """Without trusted keys a gateway behaves as before: unsigned requests served, signed ones not acted on."""
    gw = SignedGateway(broker_address, None, f"in-memory-{trusted is None}", trusted)
    try:
        gw.client.publish(gw.topic, encode(sign_command(_request(gw, "signed"), HUB_KEY, gw.clock.now_ms(), seq=1)))
        if trusted is None:  # in order on one connection: the plain one's answer comes first if the signed got none
            gw.client.publish(gw.topic, _request(gw, "plain"))
        (first,) = gw.client.take(1, CommandAck, what="the first answer")
    finally:
        gw.close()
    assert first.id == ("plain" if trusted is None else "signed")
    assert first.status == "refused" and "keeps no raw tier" in first.detail  # served: in memory, nothing kept


@pytest.mark.needs_mosquitto
def test_a_restarted_durable_gateway_still_refuses_a_replay(broker_address: BrokerAddress, tmp_path: Path) -> None:
    gw = SignedGateway(broker_address, tmp_path / "outbox", "signed-restart-1")
    try:
        signed = encode(sign_command(_request(gw, "before"), HUB_KEY, gw.clock.now_ms(), seq=7))
        assert gw.ask(signed).status == "ok"
    finally:
        gw.close()
    again = SignedGateway(broker_address, tmp_path / "outbox", "signed-restart-2")
    try:
        replayed = again.ask(signed)
        newer = again.ask(encode(sign_command(_request(again, "after"), HUB_KEY, again.clock.now_ms(), seq=8)))
    finally:
        again.close()
    assert replayed.status == "refused" and replayed.detail.startswith("replayed:")
    assert (newer.id, newer.status) == ("after", "ok")


@pytest.mark.needs_mosquitto
def test_pub_sign_key_publishes_a_command_the_gateway_serves_once(
    gateway: SignedGateway, broker_address: BrokerAddress, tmp_path: Path
) -> None:
    key_file = tmp_path / "hub.pem"
    save_private_key(HUB_KEY, key_file)
    now = gateway.clock.now_ms()
    data = f'{{"id": "cli-1", "from_ms": {now - 3_600_000}, "to_ms": {now + 60_000}, "ts_ms": {now}}}'
    broker = f"mqtt://{broker_address.host}:{broker_address.port}"
    args = ["pub", "--topic", gateway.topic, "--broker", broker, "--tag", "raw.request.v1", "--data", data]
    first = CliRunner().invoke(app, [*args, "--sign-key", str(key_file)])
    (served,) = gateway.client.take(1, CommandAck, what="the gateway's answer to the CLI's command")
    seq = int((tmp_path / "hub.pem.seq").read_text())
    second = CliRunner().invoke(app, [*args, "--sign-key", str(key_file)])  # the same command, a new sequence
    (again,) = gateway.client.take(1, CommandAck, what="the answer to the second one")
    unsigned = CliRunner().invoke(app, args)
    (refused,) = gateway.client.take(1, CommandAck, what="the answer to the unsigned one")
    assert first.exit_code == second.exit_code == unsigned.exit_code == 0, first.output + second.output
    assert f"signed as command.signed.v1 by key {next(iter(TRUSTED))}, seq {seq}" in first.output
    assert seq >= now and f"seq {int((tmp_path / 'hub.pem.seq').read_text())}" in second.output
    assert int((tmp_path / "hub.pem.seq").read_text()) > seq
    assert (served.id, served.status) == (again.id, again.status) == ("cli-1", "ok")
    assert refused.status == "refused" and refused.detail.startswith("unsigned:")


def test_pub_sign_key_names_a_key_it_cannot_use(tmp_path: Path) -> None:
    bad = tmp_path / "open.pem"
    save_private_key(Ed25519PrivateKey.generate(), bad)
    os.chmod(bad, 0o644)
    data = f'{{"id": "cli-1", "from_ms": {T0_MS}, "to_ms": {T0_MS + 1}, "ts_ms": {T0_MS}}}'
    args = ["pub", "--topic", "pm/v1/x/gw/down/cmd/raw.request", "--tag", "raw.request.v1", "--data", data]
    result = CliRunner().invoke(app, [*args, "--sign-key", str(bad)])
    assert result.exit_code == 2
    assert "--sign-key" in result.output and "readable by others" in result.output
