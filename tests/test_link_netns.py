"""Kernel TCP and UDP through two network namespaces joined by veth, with tbf and nftables loss.

Skipped, with the reason, where namespaces cannot be built (not root, no iproute2/nftables,
a sandbox that forbids them). Addresses exist only inside the namespaces the test creates.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest

from pymonitor.simulators.link import LinkProfile, VethPair, netns, netns_available
from pymonitor.simulators.link.netns import NETNS_PREFIX, RIGHT_ADDR, Side, remove_stale_namespaces

AVAILABLE, REASON = netns_available()
needs_netns = pytest.mark.skipif(not AVAILABLE, reason=REASON)

SINK = """
import hashlib, socket, sys
server = socket.create_server((sys.argv[1], 7001))
print("ready", flush=True)
conn, _ = server.accept()
digest, total = hashlib.sha256(), 0
while data := conn.recv(65536):
    digest.update(data)
    total += len(data)
conn.sendall(f"{total} {digest.hexdigest()}".encode())
"""

SEND = """
import socket, sys
payload = sys.stdin.buffer.read()
sock = socket.create_connection((sys.argv[1], 7001), timeout=20)
sock.sendall(payload)
sock.shutdown(socket.SHUT_WR)
print(sock.recv(200).decode())
"""

UDP_COUNT = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind((sys.argv[1], 7002))
print("ready", flush=True)
sock.settimeout(10)
got = 0
try:
    while sock.recv(100) != b"end":
        got += 1
        sock.settimeout(0.5)  # half a second of silence after traffic: the sender is done
except TimeoutError:
    pass
print(got)
"""

UDP_SEND = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    sock.sendto(b"x" * 64, (sys.argv[1], 7002))
"""


def _start(pair: VethPair, side: Side, script: str) -> subprocess.Popen[str]:
    proc: subprocess.Popen[str] = pair.popen(
        side, [sys.executable, "-c", script, RIGHT_ADDR], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@needs_netns
def test_tcp_crosses_a_shaped_lossy_veth_intact() -> None:
    payload = os.urandom(200_000)
    with VethPair() as pair:
        pair.apply_profile(
            LinkProfile(name="lossy", rate_bps_up=4_000_000, rate_bps_down=4_000_000, delay_ms=0, loss=0.03)
        )
        sink = _start(pair, "right", SINK)
        try:
            sent = pair.run("left", [sys.executable, "-c", SEND, RIGHT_ADDR], input=payload, capture_output=True)
            assert sent.returncode == 0, sent.stderr.decode()
            assert sent.stdout.decode().strip() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
        finally:
            sink.kill()
            sink.communicate()
        stats = pair.qdisc_stats("left")
        assert "tbf" in stats and "rate 4Mbit" in stats
        sent_bytes = int(re.search(r"Sent (\d+) bytes", stats).group(1))  # type: ignore[union-attr]
        assert sent_bytes >= len(payload)  # every byte went through the shaper (retransmits on top)


@needs_netns
def test_random_loss_drops_packets_and_counts_them() -> None:
    with VethPair() as pair:
        pair.shape("left", 2_000_000)  # paced, so no queue but the loss rule can drop a packet
        pair.set_loss("left", 0.3)
        counter = _start(pair, "right", UDP_COUNT)
        try:
            pair.run("left", [sys.executable, "-c", UDP_SEND, RIGHT_ADDR, "1000"], check=True)
            out, _ = counter.communicate(timeout=20)
        finally:
            counter.kill()
        received, dropped = int(out.strip()), pair.dropped_packets("left")
        assert 0 < dropped < 1000
        assert received + dropped == 1000  # the only losses are the rule's
        assert pair.dropped_packets("right") == 0  # the other direction is clean
        pair.set_loss("left", 0)
        assert pair.dropped_packets("left") == 0  # the rule (and its counter) is gone


@needs_netns
def test_namespaces_are_gone_after_the_pair_closes() -> None:
    pair = VethPair().create()
    names = list(pair.namespaces.values())
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert all(name in listed for name in names)
    pair.close()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(name in listed for name in names)


@needs_netns
def test_namespaces_left_by_a_dead_process_are_removed() -> None:
    dead_pid = next(pid for pid in range(4_000_000, 4_100_000) if not os.path.exists(f"/proc/{pid}"))
    name = f"{NETNS_PREFIX}-{dead_pid}-0-left"
    subprocess.run(["ip", "netns", "add", name], check=True)
    assert name in remove_stale_namespaces()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert name not in listed


def test_without_root_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns_available.__wrapped__() == (False, "network namespaces need root (running as uid 1000)")


def test_without_nftables_the_reason_names_the_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda tool, path=None: None if tool == "nft" else f"/usr/sbin/{tool}")
    assert netns_available.__wrapped__() == (False, "nft not installed (apt-get install iproute2 nftables)")
