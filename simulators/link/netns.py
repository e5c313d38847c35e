"""Two network namespaces joined by a veth pair: kernel TCP over a rate-limited, lossy link.

This kernel has no netem, so delay, jitter and outages come from the userspace proxy
(:mod:`.proxy`). Rate (``tc qdisc tbf``) and random packet loss (nftables ``numgen random``)
are done here, in the kernel, where TCP sees them as a real link and retransmits. The pair's
addresses (10.231.0.1 and .2) exist only inside the two namespaces this module creates: nothing
touches the host's interfaces, routes or firewall, and deleting the namespaces removes it all.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from itertools import count
from pathlib import Path
from typing import Any, Literal, Self

from .profiles import LinkProfile

Side = Literal["left", "right"]  # left = the site (its egress is the uplink), right = the hub
NETNS_PREFIX = "pmlink"
LEFT_ADDR, RIGHT_ADDR, PREFIX_LEN = "10.231.0.1", "10.231.0.2", 30
DEVICES: dict[Side, str] = {"left": "pml0", "right": "pml1"}
TOOL_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))
COMMAND_TIMEOUT_S = 20.0
QUEUE_MS = 1000  # how much a shaped link may buffer before tbf drops: cellular links buffer a lot
LOSS_SCALE = 10_000  # loss is applied in basis points: 0.03 -> 300 of 10,000
_serial = count()


class NetnsError(RuntimeError):
    """A command that builds or uses the namespaces failed; the message has the command and its stderr."""


def _tool(name: str) -> str:
    path = shutil.which(name, path=TOOL_PATH)
    if path is None:
        raise NetnsError(f"{name} not found (apt-get install iproute2 nftables)")
    return path


def _run(argv: Sequence[str], *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            [_tool(argv[0]), *argv[1:]], input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from None
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces left by a process of this module that died before tearing down."""
    removed = []
    for line in _run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{NETNS_PREFIX}-(\d+)-\d+-(left|right)", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _run(["ip", "netns", "del", name])
            removed.append(name)
    return removed


def _other(side: Side) -> Side:
    return "right" if side == "left" else "left"


class VethPair:
    """Namespaces ``left`` and ``right`` joined by a veth pair; use as a context manager."""

    def __init__(self, *, mtu: int = 1500) -> None:
        base = f"{NETNS_PREFIX}-{os.getpid()}-{next(_serial)}"
        self.namespaces: dict[Side, str] = {"left": f"{base}-left", "right": f"{base}-right"}
        self.addresses: dict[Side, str] = {"left": LEFT_ADDR, "right": RIGHT_ADDR}
        self.mtu = mtu
        self._created: list[str] = []

    def create(self) -> Self:
        try:
            for ns in self.namespaces.values():
                _run(["ip", "netns", "add", ns])
                self._created.append(ns)
            left, right = self.namespaces["left"], self.namespaces["right"]
            dev_l, dev_r, mtu = DEVICES["left"], DEVICES["right"], str(self.mtu)
            # created inside ``left`` with its peer straight in ``right``: never in the host's namespace
            _run(["ip", "-n", left, "link", "add", dev_l, "type", "veth", "peer", "name", dev_r, "netns", right])
            for side in ("left", "right"):
                ns, dev = self.namespaces[side], DEVICES[side]
                # IPv4 only: no IPv6 link-local address, so no neighbour discovery chatter on the link
                _run(["ip", "-n", ns, "link", "set", dev, "mtu", mtu, "addrgenmode", "none"])
                _run(["ip", "-n", ns, "addr", "add", f"{self.addresses[side]}/{PREFIX_LEN}", "dev", dev])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                _run(["ip", "-n", ns, "link", "set", dev, "up"])
        except NetnsError:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Delete both namespaces; the veth pair, its qdiscs and nftables tables go with them."""
        while self._created:
            ns = self._created.pop()
            try:
                _run(["ip", "netns", "del", ns])
            except NetnsError:
                if ns in _run(["ip", "netns", "list"]):
                    raise

    def __enter__(self) -> Self:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def shape(self, side: Side, rate_bps: int, *, queue_ms: int = QUEUE_MS) -> None:
        """Limit what ``side`` sends to ``rate_bps`` with a token bucket filter (tbf)."""
        burst_bytes = max(2 * self.mtu, rate_bps // 8 // 100)  # at least 10 ms of traffic or two packets
        tbf = ["tbf", "rate", f"{rate_bps}bit", "burst", str(burst_bytes), "latency", f"{queue_ms}ms"]
        _run(["tc", "-n", self.namespaces[side], "qdisc", "replace", "dev", DEVICES[side], "root", *tbf])

    def set_loss(self, side: Side, loss: float) -> None:
        """Lose each packet ``side`` sends with probability ``loss`` (0 removes the rule).

        The packets are dropped as they arrive on the other side, so the sender's TCP sees a
        lost packet, not a local send error (an output drop returns EPERM to the sender).
        """
        if not 0 <= loss < 1:
            raise ValueError(f"loss: expected 0 <= loss < 1, got {loss!r}")
        threshold = round(loss * LOSS_SCALE)
        peer = _other(side)
        rule = f'iifname "{DEVICES[peer]}" numgen random mod {LOSS_SCALE} < {threshold} counter drop'
        script = (  # create, delete, recreate: one atomic transaction whether or not the table existed
            f"table inet {NETNS_PREFIX}\ndelete table inet {NETNS_PREFIX}\n"
            f"table inet {NETNS_PREFIX} {{\n chain wire {{\n  type filter hook prerouting priority -300;\n"
            f"  {rule if threshold else ''}\n }}\n}}\n"
        )
        _run(["ip", "netns", "exec", self.namespaces[peer], "nft", "-f", "-"], stdin=script)

    def dropped_packets(self, side: Side) -> int:
        """Packets sent by ``side`` that the loss rule has dropped so far."""
        ns = self.namespaces[_other(side)]
        try:
            listing = _run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", NETNS_PREFIX])
        except NetnsError:
            return 0  # no loss rule was ever set
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", listing))

    def qdisc_stats(self, side: Side) -> str:
        """``tc -s qdisc`` of ``side``'s device: what the shaper sent, dropped and held back."""
        return _run(["tc", "-s", "-n", self.namespaces[side], "qdisc", "show", "dev", DEVICES[side]])

    def apply_profile(self, profile: LinkProfile) -> None:
        """Rate and loss of a profile (up = left's egress, down = right's); delay is the proxy's job."""
        directions: tuple[tuple[Side, int | None], ...] = (
            ("left", profile.rate_bps_up),
            ("right", profile.rate_bps_down),
        )
        for side, rate in directions:
            if rate is not None:
                self.shape(side, rate)
            self.set_loss(side, profile.loss)

    def command(self, side: Side, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run inside ``side``'s namespace."""
        return [_tool("ip"), "netns", "exec", self.namespaces[side], *argv]

    def run(self, side: Side, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside ``side``'s namespace (``ip netns exec`` execs, so pids are the command's)."""
        kwargs.setdefault("timeout", COMMAND_TIMEOUT_S)
        kwargs.setdefault("check", False)
        return subprocess.run(self.command(side, argv), **kwargs)

    def popen(self, side: Side, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.command(side, argv), **kwargs)


@functools.cache
def netns_available() -> tuple[bool, str]:
    """Whether namespaces, veth, tbf and nftables all work here; when not, the reason why."""
    if os.geteuid() != 0:
        return False, f"network namespaces need root (running as uid {os.geteuid()})"
    missing = [tool for tool in ("ip", "tc", "nft") if shutil.which(tool, path=TOOL_PATH) is None]
    if missing:
        return False, f"{', '.join(missing)} not installed (apt-get install iproute2 nftables)"
    try:
        remove_stale_namespaces()
        with VethPair() as probe:
            probe.shape("left", 1_000_000)
            probe.set_loss("left", 0.01)
    except NetnsError as exc:
        return False, f"probe failed: {exc}"
    return True, "network namespaces, veth, tbf and nftables work"
