"""The crash benchmark: kill -9 a gateway node again and again while it samples, buffers and sends.

Three processes besides this one: mosquitto (persistence on), a hub node and a gateway node with
a durable outbox (``[simulator].outbox_dir``). The gateway is killed with SIGKILL at random
moments ``--kills`` times and started again each time; at the end it is stopped with SIGTERM
(it gets a few seconds to deliver), then the hub. Everything is then counted from files:

* ``generated``: readings the gateway committed to its outbox (a lifetime tally kept in the same
  transactions as the frames, so a kill cannot make it disagree with them);
* ``stored`` and ``duplicates``: readings in the hub's database, and how many of them repeat a
  (device, metric, device sequence number) already there;
* ``pending``: readings still in the outbox (not lost: they go out on the next start);
* ``lost`` = generated - stored - pending - evicted;
* ``kills_mid_ingest``: kills after which the outbox held more frames than before that run (the
  node was buffering when it died, not still starting up).
"""

from __future__ import annotations

import argparse
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymonitor.broker import MosquittoBroker, free_port
from pymonitor.store.outbox import read_status

from .common import emit_result, progress, python_version

FLEET = "crash"
NODE_CMD = [sys.executable, "-m", "pymonitor.cli.main", "node", "--config"]
HUB_READY_S = 3.0


def _write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def hub_config(work: Path, url: str, fleet: str = FLEET) -> Path:
    """A hub node storing into ``work/hub.db``, keeping raw readings (a bench counts them)."""
    return _write_config(
        work / "hub.toml",
        f'[node]\nname = "hub"\nfleet = "{fleet}"\n[broker]\nurl = "{url}"\n[hub]\ndb = "{work / "hub.db"}"\n'
        "raw_days = 3650\n",  # the benches count raw readings: none may roll up and expire under them
    )


def gateway_config(work: Path, url: str, args: argparse.Namespace) -> Path:
    return _write_config(
        work / "gateway.toml",
        f'[node]\nname = "sim"\nfleet = "{FLEET}"\n[broker]\nurl = "{url}"\n'
        f"[simulator]\ndevices = {args.devices}\ngateways = 1\ninterval_s = {args.interval}\n"
        f'seed = {args.seed}\nmax_rows_per_frame = 256\nack_timeout_s = 2.0\ncompression = "zstd"\n'
        f'outbox_dir = "{work / "outbox"}"\ndurability = "{args.durability}"\n',
    )


def hub_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        stored, distinct = conn.execute(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM (SELECT DISTINCT device_id, metric_id, device_seq FROM readings))"
            " FROM readings"
        ).fetchone()
        frames = conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    return {"stored": stored, "duplicates": stored - distinct, "hub_frames": frames}


def outbox_counts(outbox_dir: Path) -> dict[str, int]:
    files = sorted(outbox_dir.glob("*.outbox"))
    if len(files) != 1:
        raise RuntimeError(f"expected one gateway outbox in {outbox_dir}, found {[f.name for f in files]}")
    status = read_status(files[0])
    tallies = status["tallies"]
    return {
        "generated": tallies.get("readings", 0),
        "pending": sum(p["readings"] for p in status["pending"].values()),
        "evicted": sum(v for k, v in tallies.items() if k.startswith("evicted_readings_")),
        "resends": tallies.get("resends", 0),
    }


def _frames_buffered(outbox_dir: Path) -> int:
    """Frames the gateway has committed so far (0 before its first start made the file)."""
    files = sorted(outbox_dir.glob("*.outbox"))
    return read_status(files[0])["tallies"].get("frames", 0) if files else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="pm-crash-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(port=free_port()).start()
        hub = subprocess.Popen([*NODE_CMD, str(hub_config(work, broker.url))], stderr=subprocess.DEVNULL)
        gateway_cfg = gateway_config(work, broker.url, args)
        up_s: list[float] = []
        mid_ingest = 0
        started = time.monotonic()
        try:
            time.sleep(HUB_READY_S)
            buffered = 0
            for kill in range(args.kills):
                proc = subprocess.Popen([*NODE_CMD, str(gateway_cfg)], stderr=subprocess.DEVNULL)
                up = rng.uniform(args.min_up, args.max_up)
                time.sleep(up)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                up_s.append(up)
                now_buffered = _frames_buffered(work / "outbox")
                mid_ingest += now_buffered > buffered  # it had buffered frames of its own when it died
                buffered = now_buffered
                if (kill + 1) % 10 == 0 or kill + 1 == args.kills:
                    progress(f"crash: {kill + 1}/{args.kills} kills")
            proc = subprocess.Popen([*NODE_CMD, str(gateway_cfg), "--seconds", str(args.settle)])
            proc.wait(timeout=args.settle + 60)  # a clean stop after settling: it drains for a few seconds
            hub.send_signal(signal.SIGTERM)
            hub.wait(timeout=60)
        finally:
            for p in (hub,):
                if p.poll() is None:
                    p.kill()
            broker.close()
        counts = {**outbox_counts(work / "outbox"), **hub_counts(work / "hub.db")}
    distinct = counts["stored"] - counts["duplicates"]
    counts["lost"] = counts["generated"] - distinct - counts["pending"] - counts["evicted"]
    return {
        "bench": "crash",
        "kills": args.kills,
        "devices": args.devices,
        "interval_s": args.interval,
        "durability": args.durability,
        "mean_up_s": round(sum(up_s) / max(1, len(up_s)), 3),
        "kills_mid_ingest": mid_ingest,
        "wall_s": round(time.monotonic() - started, 1),
        **counts,
        "python": python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pymonitor bench crash", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs of the gateway node (100 for the record)")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples of one device")
    parser.add_argument("--min-up", type=float, default=2.0, help="shortest time a gateway runs before its kill")
    parser.add_argument("--max-up", type=float, default=5.0, help="(a node takes about 1.5 s to start sampling)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds of the last, clean run")
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: the last stdout line is JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)
    if args.kills < 0 or not 0 < args.min_up <= args.max_up:
        parser.error("--kills must be >= 0 and 0 < --min-up <= --max-up")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    emit_result(result, out=args.out)
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1
