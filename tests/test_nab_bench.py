"""``pymonitor bench nab``: both detectors scored the same way; a missing data path is a clear error."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pymonitor.bench import BENCHMARKS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def test_missing_data_path_exits_non_zero_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert BENCHMARKS["nab"](["--data", str(tmp_path / "nowhere"), "--json"]) == 2
    assert "no NAB data at" in capsys.readouterr().err


@pytest.mark.skipif(not DATA.is_dir(), reason=f"NAB data not present at {DATA} (../shared/data/nab)")
def test_bench_reports_ours_and_windowed_gaussian_on_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert BENCHMARKS["nab"](["--data", str(DATA), "--json"]) == 0
    result = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["series"] == 41
    assert result["points_per_s"] > 0
    for profile in PROFILES:
        assert -100 < result[profile] <= 100
        assert -100 < result["baseline_windowed_gaussian"][profile] <= 100
        for who in ("ours", "baseline_windowed_gaussian"):
            split = result["split"][who]
            assert set(split["holdout"]) == set(PROFILES)
            assert split["holdout_at_tune_threshold"][profile] <= split["holdout"][profile] + 1e-9
    assert result["split"]["ours"]["tune_series"] + result["split"]["ours"]["holdout_series"] == 41
