"""Reading NAB-format CSVs: every malformed line is named, never a traceback from deep inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.actors.anomaly import AnomalyError, read_series_csv

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.csv"
    path.write_text(text)
    return path


def test_reads_rows_in_file_order(tmp_path: Path) -> None:
    stamps, times, values, notes = read_series_csv(
        write(tmp_path, "timestamp,value\n2020-01-01 00:00:00,1.5\n2020-01-01 00:05:00,-2\n")
    )
    assert stamps == ["2020-01-01 00:00:00", "2020-01-01 00:05:00"]
    assert values.tolist() == [1.5, -2.0]
    assert times[1] - times[0] == np.timedelta64(5, "m")
    assert notes == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,value\n2020-01-01 00:00:00,1\n", r":1: expected the header"),
        ("", r":1: expected the header"),
        ("timestamp,value\n2020-01-01 00:00:00,abc\n", r":2: value 'abc' is not a number"),
        ("timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,nan\n", r":3: value 'nan' is not finite"),
        ("timestamp,value\n2020-01-01 00:00:00,inf\n", r":2: value 'inf' is not finite"),
        ("timestamp,value\nyesterday,1\n", r":2: timestamp 'yesterday' is not a date-time"),
        ("timestamp,value\n2020-01-01 00:00:00,1,2\n", r":2: expected 2 columns"),
    ],
)
def test_bad_input_names_line_and_reason(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(AnomalyError, match=match):
        read_series_csv(write(tmp_path, text))


def test_repeated_and_earlier_timestamps_are_kept_and_noted(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,value\n2020-01-01 00:05:00,1\n2020-01-01 00:05:00,2\n2020-01-01 00:01:00,3\n")
    _, _, values, notes = read_series_csv(path)
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert [n.split(": ", 1)[0].rsplit(":", 1)[1] for n in notes] == ["3", "4"]
    with pytest.raises(AnomalyError, match=r":3: timestamp '2020-01-01 00:05:00' repeats"):
        read_series_csv(path, strict_order=True)


def test_missing_file_is_an_anomaly_error(tmp_path: Path) -> None:
    with pytest.raises(AnomalyError, match="cannot read"):
        read_series_csv(tmp_path / "nope.csv")


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_anomaly_error(tmp_path_factory: pytest.TempPathFactory, body: str) -> None:
    path = tmp_path_factory.mktemp("h") / "s.csv"
    path.write_text("timestamp,value\n" + body)
    try:
        read_series_csv(path)
    except AnomalyError:
        pass


@pytest.mark.skipif(not DATA.is_dir(), reason=f"NAB data not present at {DATA}")
def test_whole_nab_subset_loads_with_its_86_windows() -> None:
    from pymonitor.actors.anomaly import load_corpus, load_profiles

    corpus = load_corpus(DATA)
    assert len(corpus) == 41
    assert sum(len(s.labels.windows) for s in corpus) == 86
    assert set(load_profiles(DATA)) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
