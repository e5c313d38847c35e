"""Bytes of window summaries against raw readings, and the error of every summary function.

The same data, measured both ways in one run: PyMonitor's own zstd reading frames (``raw``) and
the ``summary.batch.v1`` frames the :class:`Summarizer` makes of them (hourly windows by default,
uplinked every ``--frame-hours``). Each summary is decoded back from its frame and compared with
the exact value computed from the raw samples: min, max, count, first and last must be exact;
sum, avg and stddev are reported as the largest relative error; quantiles p50/p90/p99 as the
largest relative error against the exact lower quantile (rank ``floor(q (n-1))``), which the
sketch keeps within its alpha. Data: the simulator's fleet and, when ``--data`` exists, NAB.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pymonitor.actors.summary.summarizer import HOUR_MS, Summarizer, to_summaries
from pymonitor.actors.summary.summary import Summary
from pymonitor.messages import ReadingBatch, SummaryBatch, decode_unpacked, encode_packed

from .common import emit_result, progress, python_version
from .uplink import fleet_batches, nab_batches

QUANTILES = (0.5, 0.9, 0.99)
REDUCTION_TARGET = 0.75
Key = tuple[str, str, int]  # device, metric, window start


def summarize(
    batches: list[ReadingBatch], window_ms: int, frame_windows: int, unsketched: frozenset[str] = frozenset()
) -> tuple[list[SummaryBatch], float, int]:
    """Summary frames of the batches (one summarizer per node session), seconds spent, samples folded.

    ``unsketched``: metrics whose config asks no quantile (their windows carry no sketch).
    """
    cores: dict[tuple[str, int], Summarizer] = {}
    frames: list[SummaryBatch] = []
    spent = 0.0
    for batch in batches:
        core = cores.setdefault(
            (batch.node, batch.session),
            Summarizer(
                node=batch.node,
                session=batch.session,
                window_ms=window_ms,
                min_rows=frame_windows,
                unsketched=unsketched,
            ),
        )
        t0 = time.perf_counter()
        out = core.add(batch, 2**62)  # replayed data: sample time is the only clock
        spent += time.perf_counter() - t0
        frames += [out] if out is not None else []
    for core in cores.values():
        t0 = time.perf_counter()
        out = core.flush()
        spent += time.perf_counter() - t0
        frames += [out] if out is not None else []
    return frames, spent, sum(c.counters.samples for c in cores.values())


def exact_windows(batches: list[ReadingBatch], window_ms: int) -> dict[Key, dict[str, float]]:
    """Exact functions of every (device, metric, window) from the raw samples (vectorised per metric)."""
    out: dict[Key, dict[str, float]] = {}
    by_session: dict[tuple[str, int], list[ReadingBatch]] = {}
    for b in batches:
        by_session.setdefault((b.node, b.session), []).append(b)
    for group in by_session.values():
        devices = group[0].devices
        cols = [b.columns() for b in group]
        ts = np.concatenate([np.asarray(c.ts_ms, dtype=np.int64) for c in cols])
        dev = np.concatenate([np.asarray(c.device_index, dtype=np.int64) for c in cols])
        for m, metric in enumerate(group[0].metrics):
            v = np.concatenate([np.asarray(c.values[m], dtype=np.float64) for c in cols])
            ok = ~np.isnan(v)
            t, d, x = ts[ok], dev[ok], v[ok]
            start = t - t % window_ms
            order = np.lexsort((t, start, d))
            t, d, x, start = t[order], d[order], x[order], start[order]
            change = np.ones(x.size, dtype=bool)
            change[1:] = (d[1:] != d[:-1]) | (start[1:] != start[:-1])
            first = np.flatnonzero(change)
            last = np.append(first[1:], x.size) - 1
            n = last - first + 1
            sums = np.add.reduceat(x, first)
            mean = sums / n
            dev2 = np.add.reduceat((x - np.repeat(mean, n)) ** 2, first)
            group_id = np.cumsum(change) - 1
            sorted_x = x[np.lexsort((x, group_id))]
            stats: dict[str, npt.NDArray[Any]] = {
                "count": n, "min": np.minimum.reduceat(x, first), "max": np.maximum.reduceat(x, first),
                "first": x[first], "last": x[last], "sum": sums, "avg": mean, "stddev": np.sqrt(dev2 / n),
            }  # fmt: skip
            for q in QUANTILES:
                stats[f"p{round(q * 100)}"] = sorted_x[first + np.floor(q * (n - 1)).astype(np.int64)]
            lists = {name: col.tolist() for name, col in stats.items()}
            for i, (dd, s) in enumerate(zip(d[first].tolist(), start[first].tolist(), strict=True)):
                out[(devices[dd], metric, s)] = {name: col[i] for name, col in lists.items()}
    return out


def _relative(estimate: float, exact: float) -> float:
    return abs(estimate - exact) / abs(exact) if exact else abs(estimate)


def errors(frames: list[SummaryBatch], exact: dict[Key, dict[str, float]], alpha: float) -> dict[str, Any]:
    """Mismatches of the exact functions and the largest relative errors of the others, over all windows."""
    got: dict[Key, Summary] = {}
    for frame in frames:
        back = decode_unpacked(encode_packed(frame))  # what the hub reads
        assert isinstance(back, SummaryBatch)
        for device, metric, s in to_summaries(back):
            got[(device, metric, s.start_ms)] = s
    mismatches = dict.fromkeys(("count", "min", "max", "first", "last"), 0)
    worst = dict.fromkeys(("sum", "avg", "stddev", *(f"p{round(q * 100)}" for q in QUANTILES)), 0.0)
    for key, truth in exact.items():
        s = got[key]
        for name in mismatches:
            mismatches[name] += int(s.value(name) != truth[name])
        for name in worst:
            value = s.value(name)
            assert value is not None
            worst[name] = max(worst[name], _relative(float(value), truth[name]))
    quantile_errors = [worst[f"p{round(q * 100)}"] for q in QUANTILES]
    return {
        "windows": len(exact),
        "windows_in_frames": len(got),
        "mismatches": mismatches,
        "max_relative_error": {k: float(f"{v:.3g}") for k, v in worst.items()},
        "quantiles_within_alpha": max(quantile_errors) <= alpha * (1 + 1e-9),
    }


def measure(batches: list[ReadingBatch], window_ms: int, frame_windows: int) -> dict[str, Any]:
    raw = sum(len(encode_packed(b)) for b in batches)
    readings = sum(b.reading_count() for b in batches)
    frames, spent, samples = summarize(batches, window_ms, frame_windows)
    hourly, _, _ = summarize(batches, window_ms, 1)  # every closed window sent at once
    metrics = frozenset(m for b in batches for m in b.metrics)
    plain, _, _ = summarize(batches, window_ms, 1, unsketched=metrics)  # and no quantile asked
    summary_bytes = sum(len(encode_packed(f)) for f in frames)
    hourly_bytes = sum(len(encode_packed(f)) for f in hourly)
    plain_bytes = sum(len(encode_packed(f)) for f in plain)
    rows = sum(f.rows for f in frames)
    result: dict[str, Any] = {
        "readings": readings,
        "raw_bytes": raw,
        "raw_frames": len(batches),
        "summary_bytes": summary_bytes,
        "summary_frames": len(frames),
        "summary_rows": rows,
        "bytes_per_window": round(summary_bytes / rows, 2) if rows else None,
        "raw_bytes_per_reading": round(raw / readings, 3),
        "reduction": round(1 - summary_bytes / raw, 4),
        "reduction_frame_per_close": round(1 - hourly_bytes / raw, 4),
        "reduction_frame_per_close_without_quantiles": round(1 - plain_bytes / raw, 4),
        "points_per_s": round(samples / spent),
    }
    result.update(errors(frames, exact_windows(batches, window_ms), frames[0].alpha if frames else math.nan))
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure both data sets; exit 1 if a reduction is below 0.75 or an exact function differs."""
    p = argparse.ArgumentParser(prog="pymonitor bench summarize", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="NAB folder (../shared/data/nab); skipped if absent")
    p.add_argument("--devices", type=int, default=100, help="simulated devices behind the gateway (default 100)")
    p.add_argument("--days", type=float, default=7.0, help="simulated days of data (default 7)")
    p.add_argument("--interval", type=float, default=60.0, help="s between samples of a device (default 60)")
    p.add_argument("--window-min", type=int, default=60, help="summary window in minutes (default 60)")
    p.add_argument("--frame-hours", type=float, default=12.0, help="hours of windows per uplinked frame (default 12)")
    p.add_argument(
        "--nab-window-min", type=int, default=1440,
        help="NAB window in minutes (default 1440: a day holds 288 of its 5-minute samples; an hour only 12)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    ns = p.parse_args(argv)
    if min(ns.devices, ns.days, ns.interval, ns.window_min, ns.frame_hours, ns.nab_window_min) <= 0:
        p.error("--devices, --days, --interval, --window-min, --nab-window-min and --frame-hours must be positive")
    window_ms = ns.window_min * 60_000
    per_frame = max(1, round(ns.frame_hours * HOUR_MS / window_ms))  # windows of one series per frame
    result: dict[str, Any] = {"bench": "summarize", "python": python_version(), "window_ms": window_ms,
                              "frame_hours": ns.frame_hours}  # fmt: skip
    batches = fleet_batches(ns.devices, ns.days * 24, ns.interval, ns.seed)
    fleet = measure(batches, window_ms, per_frame * ns.devices * len(batches[0].metrics))
    fleet.update(devices=ns.devices, days=ns.days, interval_s=ns.interval)
    progress(f"fleet  {fleet['readings']:,} readings, {fleet['raw_bytes']:,} B raw -> {fleet['summary_bytes']:,} B "
             f"of summaries: reduction {fleet['reduction']} ({fleet['reduction_frame_per_close']} sending each "
             f"hour's windows at once); {fleet['points_per_s']:,} points/s")  # fmt: skip
    result["fleet"] = fleet
    if ns.data is not None and (ns.data / "data").is_dir():
        series = nab_batches(ns.data)
        nab_window_ms = ns.nab_window_min * 60_000
        nab = measure(series, nab_window_ms, max(1, round(ns.frame_hours * HOUR_MS / nab_window_ms)))
        hourly_nab, _, _ = summarize(series, window_ms, per_frame)
        nab.update(window_ms=nab_window_ms, reduction_hourly_windows=round(
            1 - sum(len(encode_packed(f)) for f in hourly_nab) / nab["raw_bytes"], 4))  # fmt: skip
        progress(f"nab    {nab['readings']:,} readings, {nab['raw_bytes']:,} B raw -> {nab['summary_bytes']:,} B: "
                 f"reduction {nab['reduction']} ({ns.nab_window_min} min windows; "
                 f"{nab['reduction_hourly_windows']} hourly)")  # fmt: skip
        result["nab"] = nab
    else:
        result["nab"] = None
        progress(f"nab    skipped: no NAB data at {ns.data}")
    result["reduction"] = min(d["reduction"] for d in (fleet, result["nab"]) if d)
    result["points_per_s"] = fleet["points_per_s"]
    result["quantiles_within_alpha"] = all(d["quantiles_within_alpha"] for d in (fleet, result["nab"]) if d)
    exact_ok = all(not any(d["mismatches"].values()) for d in (fleet, result["nab"]) if d)
    result["exact_functions_exact"] = exact_ok
    result["numpy"] = np.__version__
    emit_result(result, out=ns.out)
    return 0 if result["reduction"] >= REDUCTION_TARGET and exact_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
