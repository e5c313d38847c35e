"""Reading NAB-format files: series CSVs (``timestamp,value``), labelled windows and cost profiles.

Strict on purpose: a CSV that is not what the scorer or detector expects fails with the file, the
line and the reason, rather than producing a score for something else.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from .errors import AnomalyError
from .nab_score import CostProfile, LabelledSeries, profiles_from_json, window_rows

HEADER = ["timestamp", "value"]


@dataclass(frozen=True, slots=True)
class Series:
    """One NAB series: timestamps (strings as written and parsed), values, and its labels."""

    name: str
    stamps: list[str]
    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]
    labels: LabelledSeries


def read_series_csv(
    path: Path, *, strict_order: bool = False
) -> tuple[list[str], npt.NDArray[np.datetime64], npt.NDArray[np.float64], list[str]]:
    """Rows of a ``timestamp,value`` CSV, plus notes on rows out of order; AnomalyError naming the line otherwise.

    Values must be finite numbers. A repeated or earlier timestamp is kept, in file order, and
    noted (NAB itself has them: 6 of its series); ``strict_order`` makes it an error instead.
    """
    notes: list[str] = []
    stamps: list[str] = []
    values: list[float] = []
    try:
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != HEADER:
                raise AnomalyError(f"{path}:1: expected the header 'timestamp,value', got {header!r}")
            prev: np.datetime64 | None = None
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 2:
                    raise AnomalyError(f"{path}:{line_no}: expected 2 columns, got {len(row)}")
                stamp, text = row[0].strip(), row[1].strip()
                try:
                    when = np.datetime64(stamp, "us")
                except ValueError:
                    raise AnomalyError(f"{path}:{line_no}: timestamp {stamp!r} is not a date-time") from None
                try:
                    value = float(text)
                except ValueError:
                    raise AnomalyError(f"{path}:{line_no}: value {text!r} is not a number") from None
                if not math.isfinite(value):
                    raise AnomalyError(f"{path}:{line_no}: value {text!r} is not finite")
                if prev is not None and when <= prev:
                    reason = "repeats" if when == prev else "is earlier than"
                    message = f"{path}:{line_no}: timestamp {stamp!r} {reason} the previous row's"
                    if strict_order:
                        raise AnomalyError(message)
                    notes.append(message)
                prev = when
                stamps.append(stamp)
                values.append(value)
    except OSError as exc:
        raise AnomalyError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AnomalyError(f"{path}: not a text CSV ({exc})") from None
    return stamps, np.array(stamps, dtype="datetime64[us]"), np.array(values, dtype=np.float64), notes


def load_profiles(root: Path) -> dict[str, CostProfile]:
    """NAB's three cost profiles from ``root/profiles.json``."""
    return profiles_from_json(orjson.loads((root / "profiles.json").read_bytes()))


def load_corpus(root: Path) -> list[Series]:
    """Every series listed in ``root/combined_windows.json``, in name order, with its windows as rows."""
    windows = orjson.loads((root / "combined_windows.json").read_bytes())
    corpus = []
    for name in sorted(windows):
        stamps, timestamps, values, _ = read_series_csv(root / "data" / name)
        limits = [(str(a), str(b)) for a, b in windows[name]]
        labels = LabelledSeries(name, len(values), tuple(window_rows(timestamps, limits)))
        corpus.append(Series(name, stamps, timestamps, values, labels))
    return corpus
