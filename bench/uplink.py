"""Bytes on the wire per reading: PyMonitor's packed columnar frames against per-reading encodings.

Two data sets, encoded every way in one run: the simulator's fleet data (temperature, humidity,
vibration, battery of many devices) and, when the data path is given and present, the NAB
series (one device, one metric each). "Wire" counts the MQTT PUBLISH each encoding needs: the
payload plus fixed header, topic and packet id (QoS 1); TCP/IP headers are left out because
they depend on how packets coalesce. Per-reading encodings send one PUBLISH per reading;
PyMonitor sends one per frame.

PyMonitor's frames carry values as int64 steps of each metric's resolution where it is known
(``value_scale``) and as float64 otherwise; the same frames with float64 columns are measured
beside them. A third data set, a remote site's backlog (by default 100 devices every 300 s for
14 days), is measured with PyMonitor's two encodings only.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import decimal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import orjson
import zstandard

from pymonitor.broker import topics
from pymonitor.messages import ReadingBatch, encode, encode_packed
from pymonitor.messages.columns import dequantize, pack_floats, quantize
from pymonitor.simulators.frames import block_to_batch
from pymonitor.simulators.models import METRICS, DeviceBank

from .common import emit_result, progress, python_version

TOPIC = topics.up("fleet-01", "gw-0001", "readings")
ROWS_PER_FRAME = 4096


def publish_overhead(payload_len: int) -> int:
    """MQTT 3.1.1 PUBLISH, QoS 1: fixed header (1 + remaining-length bytes), topic (2 + len), packet id (2)."""
    remaining = 2 + len(TOPIC) + 2 + payload_len
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16_384 else 3 if remaining < 2_097_152 else 4
    return 1 + length_bytes + 2 + len(TOPIC) + 2


@dataclass
class Tally:
    """Bytes of one encoding over one data set."""

    payload: int = 0
    wire: int = 0
    messages: int = 0

    def add(self, payload_len: int) -> None:
        self.payload += payload_len
        self.wire += payload_len + publish_overhead(payload_len)
        self.messages += 1


def as_float64(batch: ReadingBatch) -> ReadingBatch:
    """The same batch with float64 value columns (what every frame carried before ``value_scale``)."""
    if not batch.value_scale:
        return batch
    return dataclasses.replace(
        batch, values=[pack_floats(col) for col in batch.columns().values], value_scale=[], steps=[]
    )


def measure_frames(batches: list[ReadingBatch]) -> dict[str, Any]:
    """PyMonitor's frames as they are and with float64 values, compressed, in wire bytes per reading."""
    quantized, float64 = Tally(), Tally()
    readings = 0
    for batch in batches:
        quantized.add(len(encode_packed(batch)))
        float64.add(len(encode_packed(as_float64(batch))))
        readings += batch.reading_count()
    return {
        "readings": readings,
        "frames": len(batches),
        "bytes_per_reading": round(quantized.wire / readings, 3),
        "float64_bytes_per_reading": round(float64.wire / readings, 3),
        "ratio_to_float64": round(quantized.wire / float64.wire, 4),
    }


def measure(batches: list[ReadingBatch]) -> dict[str, Any]:
    """Every encoding of the same readings, in bytes per reading."""
    names = ("pymonitor", "pymonitor_raw", "float64", "json", "json_zstd", "cbor")
    tallies = {name: Tally() for name in names}
    zstd = zstandard.ZstdCompressor(level=9)
    readings = 0
    for batch in batches:
        tallies["pymonitor"].add(len(encode_packed(batch)))
        tallies["pymonitor_raw"].add(len(encode(batch)))
        tallies["float64"].add(len(encode_packed(as_float64(batch))))
        lines = []
        cols = batch.columns()
        for m, metric in enumerate(batch.metrics):
            for i, value in enumerate(cols.values[m]):
                if value != value:  # NaN: not measured, not a reading
                    continue
                record = {"device": batch.devices[cols.device_index[i]], "metric": metric, "ts": cols.ts_ms[i],
                          "value": value}  # fmt: skip
                line = orjson.dumps(record)
                lines.append(line)
                tallies["json"].add(len(line))
                tallies["cbor"].add(len(cbor2.dumps(record)))
        readings += len(lines)
        tallies["json_zstd"].add(len(zstd.compress(b"\n".join(lines))))  # JSON lines per frame, compressed
    per = {name: t.wire / readings for name, t in tallies.items()}
    return {
        "readings": readings,
        "frames": len(batches),
        "bytes_per_reading": round(per["pymonitor"], 3),
        "float64_bytes_per_reading": round(per["float64"], 3),
        "raw_frame_bytes_per_reading": round(per["pymonitor_raw"], 3),
        "json_bytes_per_reading": round(per["json"], 3),
        "json_zstd_bytes_per_reading": round(per["json_zstd"], 3),
        "cbor_bytes_per_reading": round(per["cbor"], 3),
        "payload_bytes_per_reading": round(tallies["pymonitor"].payload / readings, 3),
        "json_payload_bytes_per_reading": round(tallies["json"].payload / readings, 3),
        "ratio_to_json": round(per["pymonitor"] / per["json"], 4),
        "ratio_to_float64": round(per["pymonitor"] / per["float64"], 4),
        "ratio_to_json_zstd": round(per["pymonitor"] / per["json_zstd"], 4),
    }


def fleet_batches(devices: int, hours: float, interval_s: float, seed: int) -> list[ReadingBatch]:
    """One gateway's frames over ``hours`` of simulated time, as it would uplink them."""
    start = 1_767_225_600_000
    bank = DeviceBank([f"dev-{i:06d}" for i in range(devices)], seed=seed, start_ms=start, interval_s=interval_s)
    end = start + int(hours * 3_600_000)
    batches: list[ReadingBatch] = []
    seq = 0
    while True:
        block = bank.sample_until(end, ROWS_PER_FRAME)
        if block.rows == 0:
            return batches
        seq += 1
        batch, _ = block_to_batch(block, node="gw-0001", session=1, seq=seq, devices=bank.devices)
        batches.append(batch)


def _nab_rows(path: Path) -> Iterator[tuple[int, float, int]]:
    """(ts_ms, value, decimal places the CSV wrote the value with) per row."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected the header 'timestamp,value', got {header!r}")
        for line_no, row in enumerate(reader, start=2):
            try:
                stamp = datetime.datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.UTC)
                exponent = decimal.Decimal(row[1]).as_tuple().exponent
                if not isinstance(exponent, int):  # NaN or infinity: not a reading a sensor sends
                    raise ValueError(row[1])
                yield int(stamp.timestamp() * 1000), float(row[1]), max(0, -exponent)
            except (ValueError, IndexError, decimal.InvalidOperation):
                raise ValueError(f"{path}:{line_no}: expected 'YYYY-MM-DD HH:MM:SS,number', got {row!r}") from None


def series_scale(values: list[float], places: int) -> float | None:
    """The resolution a series was written with (``10**-places``), or None (keep float64) when
    int64 steps of it would not give back every value exactly."""
    scale = 1 / 10**places
    try:
        exact = np.asarray(values, dtype=np.float64)
        back = dequantize(quantize(exact, scale), scale)
    except OverflowError:
        return None
    return scale if np.array_equal(back, exact) else None


def nab_batches(data: Path) -> list[ReadingBatch]:
    """Every NAB series as one device with one metric, framed like a gateway would.

    Each series is sent in steps of the finest decimal place its CSV uses (whole counts of tweets
    are steps of 1, occupancy written as 3.06 steps of 0.01) when that gives back every value
    exactly; otherwise (rows written with 15 to 20 decimal places) as float64.
    """
    batches: list[ReadingBatch] = []
    for n, path in enumerate(sorted(data.glob("data/*/*.csv"))):
        rows = list(_nab_rows(path))
        scale = series_scale([v for _, v, _ in rows], max((p for _, _, p in rows), default=0))
        for seq, start in enumerate(range(0, len(rows), ROWS_PER_FRAME), start=1):
            chunk = rows[start : start + ROWS_PER_FRAME]
            batch = ReadingBatch.build(
                node="gw-0001",
                session=n + 1,
                seq=seq,
                devices=[path.stem],
                metrics=["value"],
                device_index=[0] * len(chunk),
                device_seq=list(range(start + 1, start + 1 + len(chunk))),
                ts_ms=[ts for ts, _, _ in chunk],
                values=[[v for _, v, _ in chunk]],
                value_scale=None if scale is None else [scale],
            )
            batches.append(batch)
    return batches


def main(argv: list[str] | None = None) -> int:
    """Encode both data sets every way; exit 1 if PyMonitor's frames exceed 0.20 of JSON."""
    p = argparse.ArgumentParser(prog="pymonitor bench uplink", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="NAB folder (../shared/data/nab); skipped if absent")
    p.add_argument("--devices", type=int, default=200, help="simulated devices behind the gateway (default 200)")
    p.add_argument("--hours", type=float, default=2.0, help="simulated hours of data (default 2)")
    p.add_argument("--interval", type=float, default=60.0, help="s between samples of a device (default 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--backlog-devices", type=int, default=100, help="remote-site backlog: devices (default 100)")
    p.add_argument("--backlog-interval", type=float, default=300.0, help="backlog: s between samples (default 300)")
    p.add_argument("--backlog-days", type=float, default=14.0, help="backlog: days of data (default 14; 0 skips)")
    p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    ns = p.parse_args(argv)
    if ns.devices <= 0 or ns.hours <= 0 or ns.interval <= 0:
        p.error("--devices, --hours and --interval must be positive")
    if ns.backlog_days < 0 or (ns.backlog_days and (ns.backlog_devices <= 0 or ns.backlog_interval <= 0)):
        p.error("--backlog-days must be >= 0, --backlog-devices and --backlog-interval positive")
    result: dict[str, Any] = {"bench": "uplink", "python": python_version(), "metrics": list(METRICS)}
    fleet = measure(fleet_batches(ns.devices, ns.hours, ns.interval, ns.seed))
    progress(f"fleet    {fleet['readings']:,} readings: {fleet['bytes_per_reading']} B/reading "
             f"(float64 {fleet['float64_bytes_per_reading']}), JSON {fleet['json_bytes_per_reading']} "
             f"({fleet['ratio_to_json']:.3f} of JSON)")  # fmt: skip
    result["fleet"] = fleet
    if ns.data is not None and (ns.data / "data").is_dir():
        batches = nab_batches(ns.data)
        nab = measure(batches)
        nab["series"] = len({b.devices[0] for b in batches})
        nab["quantized_series"] = len({b.devices[0] for b in batches if b.value_scale})
        progress(
            f"nab      {nab['readings']:,} readings: {nab['bytes_per_reading']} B/reading (float64 "
            f"{nab['float64_bytes_per_reading']}; {nab['quantized_series']} of {nab['series']} series quantized), "
            f"JSON {nab['json_bytes_per_reading']} ({nab['ratio_to_json']:.3f} of JSON)"
        )
        result["nab"] = nab
    else:
        result["nab"] = None
        progress(f"nab      skipped: no NAB data at {ns.data}")
    if ns.backlog_days:
        backlog = measure_frames(fleet_batches(ns.backlog_devices, ns.backlog_days * 24, ns.backlog_interval, ns.seed))
        backlog.update(devices=ns.backlog_devices, interval_s=ns.backlog_interval, days=ns.backlog_days)
        progress(f"backlog  {backlog['readings']:,} readings: {backlog['bytes_per_reading']} B/reading "
                 f"(float64 {backlog['float64_bytes_per_reading']})")  # fmt: skip
        result["backlog"] = backlog
    else:
        result["backlog"] = None
    # The headline keys are those of the data set that compresses worst: the claim must hold for both.
    worst = max((d for d in (fleet, result["nab"]) if d is not None), key=lambda d: d["ratio_to_json"])
    for key in ("bytes_per_reading", "json_bytes_per_reading", "ratio_to_json"):
        result[key] = worst[key]
    result["numpy"] = np.__version__
    emit_result(result, out=ns.out)
    return 0 if result["ratio_to_json"] <= 0.20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
