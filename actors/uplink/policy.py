"""How a gateway should use the link it has: frame size, codec and bytes per tick, from a :class:`LinkEstimate`.

Pure and stateless: the same estimate always gives the same plan, so a plan can be logged and
explained. The thresholds, and why:

- **Frame size.** A frame should take about ``FRAME_AIRTIME_S`` (2 s) of airtime at the measured
  goodput, shrunk by ``1 + LOSS_WEIGHT * loss`` (5 % loss halves it): a lost frame is resent whole,
  so on a lossy link a small frame costs little airtime and finishes well inside an ack timeout.
  Rows are clamped to ``MIN_ROWS`` (64: below that the per-frame dictionary, headers and zstd frame
  overhead eat the gain of columnar packing) and ``MAX_ROWS`` (4,096: the frame format's design
  size, ~213 KB raw). Until goodput is measured, frames are sized for ``ASSUMED_GOODPUT_BYTES_PER_S``
  (EDGE, ~50 kbit/s): the worst link we plan for, so a first frame never clogs a 2G link.
- **Codec.** ``"zstd"`` unless the link is measured, at least ``BROADBAND_BYTES_PER_S`` (10 Mbit/s),
  not metered, and has no backlog that takes longer than ``BACKLOG_DRAIN_S`` to drain. zstd 9 halves
  a frame (13.2 -> 7.6 B/reading, docs/benchmarks.md) for ~5 ms of CPU per 625 KB frame; below
  10 Mbit/s those bytes are seconds of airtime, above it the link is not what limits the gateway, and
  plain CBOR frames save the gateway's CPU and the hub's inflate and can be read with ``mosquitto_sub``.
- **Send budget per tick.** ``goodput * tick_s * HEADROOM`` (1.5: the spare half probes for more
  capacity, since goodput is only measured as fast as we send), but only while less than
  ``IN_FLIGHT_MAX_S`` (4 s, several round trips of EDGE or satellite, so the pipe stays full) of the
  link's work is unacknowledged: a longer queue moves no byte faster, it only delays acks and live
  data and invites spurious resends. While the window has room the budget is at least one frame, so
  a slow link still moves whole frames; when it is full the budget is 0 and the gateway waits a tick.
  The window cannot stay shut: a frame past its ack timeout no longer counts as in flight.
  Unmeasured: up to ``PROBE_BYTES`` (32 KiB) in flight, 5 s at 50 kbit/s (half the initial 10 s ack
  timeout, so probing a 2G link causes no spurious resends); on a fast link the budget then grows
  with every tick's acks, since a burst acked in one round trip measures as a high goodput.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UplinkError
from .estimator import LinkEstimate

FRAME_AIRTIME_S = 2.0
LOSS_WEIGHT = 20.0
MIN_ROWS = 64
MAX_ROWS = 4096
BYTES_PER_ROW = 32.0
"""A compressed row of 4 metrics (7.6 B/reading in docs/benchmarks.md); pass the measured value."""
ASSUMED_GOODPUT_BYTES_PER_S = 6_000.0
BROADBAND_BYTES_PER_S = 1_250_000.0
BACKLOG_DRAIN_S = 60.0
HEADROOM = 1.5
IN_FLIGHT_MAX_S = 4.0
PROBE_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkPlan:
    """What the gateway should do until the next tick, and why."""

    max_rows_per_frame: int
    codec: str | None  # "zstd", or None for plain frames
    send_budget_bytes: int  # for Outbox.to_send(budget_bytes=...); 0: the window is full, send nothing this tick
    ack_timeout_ms: int  # resend_after_ms for Outbox.to_send
    reason: str


def plan_uplink(
    estimate: LinkEstimate,
    *,
    backlog_bytes: int,
    tick_s: float,
    bytes_per_row: float = BYTES_PER_ROW,
    metered: bool = False,
) -> UplinkPlan:
    """The plan for a link as estimated; ``backlog_bytes`` is what waits in the outbox, ``metered`` a paid link."""
    if tick_s <= 0:
        raise UplinkError(f"plan_uplink: tick_s must be > 0, got {tick_s}")
    goodput = estimate.goodput_bytes_per_s or 0.0
    measured = goodput > 0
    rate = goodput if measured else ASSUMED_GOODPUT_BYTES_PER_S
    frame_target = rate * FRAME_AIRTIME_S / (1 + LOSS_WEIGHT * estimate.loss)
    rows = int(min(MAX_ROWS, max(MIN_ROWS, frame_target / max(bytes_per_row, 1.0))))
    frame_bytes = max(1, round(rows * bytes_per_row))

    fast = measured and rate >= BROADBAND_BYTES_PER_S and backlog_bytes <= rate * BACKLOG_DRAIN_S
    codec = None if fast and not metered else "zstd"

    if measured:
        room = rate * IN_FLIGHT_MAX_S - estimate.in_flight_bytes
        per_tick = rate * tick_s * HEADROOM
        why = f"goodput {rate:.0f} B/s, loss {estimate.loss:.1%}"
    else:
        room = per_tick = PROBE_BYTES - estimate.in_flight_bytes
        why = f"not measured yet, probing with {PROBE_BYTES} B in flight, frames sized for {rate:.0f} B/s"
    budget = max(frame_bytes, int(min(per_tick, room))) if room > 0 else 0
    reason = (
        f"{why}: frames of {rows} rows (~{frame_bytes / rate:.1f} s airtime), codec {codec or 'none'},"
        f" {budget} B per {tick_s:g} s tick, ack timeout {estimate.ack_timeout_ms} ms"
    )
    return UplinkPlan(
        max_rows_per_frame=rows,
        codec=codec,
        send_budget_bytes=budget,
        ack_timeout_ms=estimate.ack_timeout_ms,
        reason=reason,
    )
