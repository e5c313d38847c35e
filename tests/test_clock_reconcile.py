"""Device clock reconciliation against ground truth: drifting clocks, reboots, delayed samples."""

from __future__ import annotations

import numpy as np
import pytest

from pymonitor.actors.hub.clocks import ClockReconciler

DAY_MS = 86_400_000
START_MS = 1_767_225_600_000


def simulate(seed: int, *, devices: int = 30, days: float = 3, use_epochs: bool = True) -> tuple[float, int]:
    """Fraction of corrected timestamps within 1 s of the truth, and the resets seen.

    Each device samples once a minute. Its clock starts up to 2 min off and drifts up to +-100 ppm;
    it may reboot (clock jumps up to +-10 min, new epoch). Samples arrive after a radio delay
    (exponential, mean 300 ms); 5 % wait in a store-and-forward buffer for up to 10 min more.
    """
    rng = np.random.default_rng(seed)
    reconciler = ClockReconciler()
    within = total = 0
    n = int(days * DAY_MS / 60_000)
    for d in range(devices):
        true = START_MS + rng.integers(0, 60_000) + np.arange(n, dtype=np.int64) * 60_000
        offset = np.full(n, rng.uniform(-120_000, 120_000))
        drift_ppm = rng.uniform(-100, 100)
        epoch = np.zeros(n, dtype=np.int64)
        for reboot in rng.choice(n, size=rng.integers(0, 3), replace=False):
            offset[reboot:] = rng.uniform(-600_000, 600_000)
            epoch[reboot:] += 1
        device_ts = (true + offset + drift_ppm * 1e-6 * (true - START_MS)).astype(np.int64)
        delay = rng.exponential(300, n) + (rng.random(n) < 0.05) * rng.uniform(1_000, 600_000, n)
        arrival = true + delay.astype(np.int64)
        for i in np.argsort(arrival, kind="stable"):
            name = f"dev-{d}"
            reconciler.observe(name, int(device_ts[i]), int(arrival[i]), int(epoch[i]) if use_epochs else 0)
            corrected = reconciler.correct(name, int(device_ts[i]))
            within += abs(corrected - int(true[i])) <= 1_000
            total += 1
    resets = sum(c.resets for c in reconciler.devices.values())
    return within / total, resets


@pytest.mark.parametrize("seed", [11, 12])
def test_at_least_99_percent_of_corrected_timestamps_land_within_a_second(seed: int) -> None:
    fraction, _ = simulate(seed)
    assert fraction >= 0.99, fraction


def test_reboots_are_found_from_the_clock_jump_alone_when_no_epoch_is_given() -> None:
    fraction, resets = simulate(13, use_epochs=False)
    assert resets > 0
    assert fraction >= 0.97, fraction


def test_a_constant_offset_is_recovered_exactly_from_zero_delay_samples() -> None:
    r = ClockReconciler()
    for k in range(100):
        true = START_MS + k * 60_000
        r.observe("d", true - 42_000, true)  # clock 42 s behind, no delay
    assert r.correct("d", START_MS + 200 * 60_000 - 42_000) == START_MS + 200 * 60_000


def test_drift_is_followed_over_a_day() -> None:
    r = ClockReconciler()
    ppm = 80e-6
    for k in range(24 * 60):
        true = START_MS + k * 60_000
        r.observe("d", int(true + ppm * (true - START_MS)), true)
    later = START_MS + 25 * 3_600_000
    assert abs(r.correct("d", int(later + ppm * (later - START_MS))) - later) <= 50


def test_an_unknown_device_is_left_as_it_is() -> None:
    assert ClockReconciler().correct("never-seen", 123) == 123


def test_state_per_device_stays_bounded() -> None:
    r = ClockReconciler()
    for k in range(20_000):
        true = START_MS + k * 60_000
        r.observe("d", true, true + 10)
    assert len(r.devices["d"].minima) <= 36
