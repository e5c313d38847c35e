"""Retention at the hub, the pure part: which windows a pass may roll up, what has aged out, what to drop.

Tiers: raw ``readings`` roll up into 1-minute summaries, minutes into hours, hours into days
(:data:`ROLLUP_TIERS`). Each tier keeps its own days; the defaults are the hub's share of
:data:`pymonitor.actors.summary.retention.DEFAULT_TIERS` (raw 7 days, 1m 90, 1h 365 — twelve months
of summaries — 1d five years). A tier keeps its rows past their age until the next tier has rolled
them up, so a pass that falls behind never loses data to age.

Budget (bytes of the main DB file in use: ``(page_count - freelist_count) * page_size``): when in
use passes ``high_water`` of the budget, a pass drops the oldest rows, in :data:`DROP_ORDER`, until
it is under ``low_water``: first what a coarser tier already holds (raw, then node summaries, then
1m, then 1h), then 1d, and last raw not yet rolled up (counted as ``unrolled``). Freed pages are
reused by later inserts, so the file stops growing near the budget; see docs/summaries.md.

No clock reads and no SQL here: ``store/hub_retention.py`` carries the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymonitor.actors.summary.retention import DAY_MS, DEFAULT_TIERS

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class RollupTier:
    name: str
    code: int  # rollups.tier
    window_ms: int
    source: str  # "raw" or the name of the finer tier


ROLLUP_TIERS: tuple[RollupTier, ...] = (
    RollupTier("1m", 1, MINUTE_MS, "raw"),
    RollupTier("1h", 2, HOUR_MS, "1m"),
    RollupTier("1d", 3, DAY_MS, "1h"),
)
TIER_BY_NAME = {t.name: t for t in ROLLUP_TIERS}

DROP_ORDER: tuple[tuple[str, bool], ...] = (
    ("raw", True),  # (tier, only rows a coarser tier already holds)
    ("node", True),  # window_summaries nodes sent: their own tier, kept as their window's tier
    ("1m", True),
    ("1h", True),
    ("1d", False),
    ("raw", False),
)
"""Budget drops, lowest value first; True: only what is already rolled up into the next tier."""

_DEFAULT_DAYS = {t.name: t.keep_days for t in DEFAULT_TIERS}


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    raw_days: float = _DEFAULT_DAYS["raw"]
    minute_days: float = _DEFAULT_DAYS["1m"]
    hour_days: float = _DEFAULT_DAYS["1h"]
    day_days: float = _DEFAULT_DAYS["1d"]
    storage_budget_mb: float = 0.0  # 0: no budget
    interval_s: float = 300.0  # between passes, clock time
    rows_per_tx: int = 5_000  # source rows per transaction (rollups, late rows, expiry): ingest waits <= ~0.3 s
    tx_per_pass: int = 200  # transactions per tier and step in one pass (the rest waits for the next pass)
    settle_ms: int = 2 * MINUTE_MS  # a minute is rolled up this long after it ends (late readings after: re-rolled)
    high_water: float = 0.9  # of the budget: start dropping
    low_water: float = 0.8  # of the budget: stop dropping

    def __post_init__(self) -> None:
        for name in ("raw_days", "minute_days", "hour_days", "day_days", "storage_budget_mb"):
            if getattr(self, name) < 0:
                raise ValueError(f"retention at {name}: expected >= 0, got {getattr(self, name)}")
        for name in ("rows_per_tx", "tx_per_pass"):
            if getattr(self, name) < 1:
                raise ValueError(f"retention at {name}: expected >= 1, got {getattr(self, name)}")
        if not 0 < self.low_water <= self.high_water <= 1:
            raise ValueError(f"retention at low_water/high_water: expected 0 < low <= high <= 1, got "
                             f"{self.low_water}/{self.high_water}")  # fmt: skip

    @property
    def budget_bytes(self) -> int:
        return round(self.storage_budget_mb * 1024 * 1024)

    def keep_ms(self, tier: str) -> int:
        days = {"raw": self.raw_days, "1m": self.minute_days, "1h": self.hour_days, "1d": self.day_days}[tier]
        return round(days * DAY_MS)


def floor_to(ts_ms: int, window_ms: int) -> int:
    return ts_ms // window_ms * window_ms


def rollup_limit(tier: RollupTier, now_ms: int, settle_ms: int, source_mark: int | None) -> int | None:
    """End (exclusive) of the windows of ``tier`` that may be rolled up now: closed and settled
    (1m), or fully rolled up in the source tier, whose watermark is ``source_mark`` (1h, 1d; None
    while the source tier has rolled up nothing)."""
    if tier.source == "raw":
        return floor_to(now_ms - settle_ms, tier.window_ms)
    if source_mark is None:
        return None
    return floor_to(source_mark, tier.window_ms)


def chunk_end(mark: int, limit: int, window_ms: int, nth_ts: int | None) -> int:
    """End of this pass's chunk from ``mark``: the window holding the source's ``rows_per_tx``-th
    row (``nth_ts``, None when fewer rows wait), at least one window, never past ``limit``."""
    if nth_ts is None:
        return limit
    return min(limit, max(floor_to(nth_ts, window_ms), mark + window_ms))


def age_cutoff(now_ms: int, keep_ms: int, next_mark: int | None) -> int:
    """Rows of a tier starting before this are old enough to go; held back to the next tier's
    watermark (None for the last tier: no holding back)."""
    cutoff = now_ms - keep_ms
    if next_mark is None:
        return cutoff
    return min(cutoff, next_mark)


def over_budget(used_bytes: int, settings: RetentionSettings) -> int:
    """Bytes to free to get under the low-water mark, 0 when under the high-water mark (or no budget)."""
    budget = settings.budget_bytes
    if budget <= 0 or used_bytes <= budget * settings.high_water:
        return 0
    return max(0, used_bytes - round(budget * settings.low_water))


def node_summary_keep_ms(window_ms: int, settings: RetentionSettings) -> int:
    """A summary a node sent is kept as long as the hub tier its window matches (or the next finer one)."""
    if window_ms >= DAY_MS:
        return settings.keep_ms("1d")
    if window_ms >= HOUR_MS:
        return settings.keep_ms("1h")
    return settings.keep_ms("1m")


@dataclass
class RetentionCounters:
    """Passes of the hub's retention (kept across actor restarts, shown by ``pymonitor stats``)."""

    passes: int = 0
    failures: int = 0  # passes that raised; logged, ingest goes on
    skipped: int = 0  # ticks that found the previous pass still running
    rolled: int = 0  # rollup windows written
    late: int = 0  # late raw rows re-rolled
    dropped: int = 0  # rows dropped, all tiers and reasons (per tier: retention_drops)
    last_pass_ms: int = 0  # clock time of the last pass that finished
    last_pass_s: float = 0.0  # how long it took
    used_bytes: int = 0
    file_bytes: int = 0
