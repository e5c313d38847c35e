"""Device clock reconciliation against ground truth: drifting clocks, reboots, delayed and late samples."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from numpy.typing import NDArray

from pymonitor.actors.hub.clocks import BUCKETS_KEPT, SUSPECT_CONFIRM, ClockReconciler

DAY_MS = 86_400_000
MINUTE_MS = 60_000
START_MS = 1_767_225_600_000
I64 = NDArray[np.int64]


def arr(values: list[int] | range) -> I64:
    return np.asarray(values, dtype=np.int64)


def feed(r: ClockReconciler, device: str, ts: I64, received: I64) -> I64:
    """One frame of one device's rows."""
    return r.reconcile([device], np.zeros(ts.size, dtype=np.uint32), ts, received)


def simulate(seed: int, *, devices: int = 30, days: float = 3) -> tuple[float, int, int]:
    """Fraction of corrected timestamps within 1 s of the truth, resets found, reboots made.

    Each device samples once a minute. Its clock starts up to 2 min off and drifts up to +-100 ppm;
    it may reboot (clock steps up to +-10 min, nothing else tells). Samples arrive after a radio
    delay (exponential, mean 300 ms); 5 % wait in a buffer for up to 10 min more. The gateway
    forwards what it received each minute as one frame, in receipt order.
    """
    rng = np.random.default_rng(seed)
    n = int(days * DAY_MS / MINUTE_MS)
    names, dev, true, device_ts, arrival = [], [], [], [], []
    reboots = 0
    for d in range(devices):
        t = START_MS + rng.integers(0, MINUTE_MS) + np.arange(n, dtype=np.int64) * MINUTE_MS
        offset = np.full(n, rng.uniform(-120_000, 120_000))
        for reboot in rng.choice(n, size=rng.integers(0, 3), replace=False):
            offset[reboot:] += rng.uniform(-600_000, 600_000)
            reboots += 1
        drift = rng.uniform(-100, 100) * 1e-6 * (t - START_MS)
        delay = rng.exponential(300, n) + (rng.random(n) < 0.05) * rng.uniform(1_000, 600_000, n)
        names.append(f"dev-{d}")
        dev.append(np.full(n, d, dtype=np.uint32))
        true.append(t)
        device_ts.append((t + offset + drift).astype(np.int64))
        arrival.append(t + delay.astype(np.int64))
    dev_a, true_a, ts_a, arr_a = (np.concatenate(c) for c in (dev, true, device_ts, arrival))
    order = np.argsort(arr_a, kind="stable")
    frame_of = (arr_a[order] - START_MS) // MINUTE_MS
    r = ClockReconciler()
    within = 0
    for rows in np.split(order, np.flatnonzero(np.diff(frame_of)) + 1):
        corrected = r.reconcile(names, dev_a[rows], ts_a[rows], arr_a[rows])
        within += int(np.count_nonzero(np.abs(corrected - true_a[rows]) <= 1_000))
    return within / true_a.size, r.resets, reboots


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_at_least_99_percent_of_corrected_timestamps_land_within_a_second(seed: int) -> None:
    fraction, resets, reboots = simulate(seed)
    assert fraction >= 0.99, fraction
    assert reboots > 0 and resets >= reboots * 0.8  # reboots are found from the clock step alone


def test_a_constant_offset_is_recovered_exactly_from_zero_delay_samples() -> None:
    r = ClockReconciler()
    true = arr(range(START_MS, START_MS + 100 * MINUTE_MS, MINUTE_MS))
    corrected = feed(r, "d", true - 42_000, true)  # clock 42 s behind, no delay
    assert np.array_equal(corrected, true)
    assert r.correct("d", START_MS + 200 * MINUTE_MS - 42_000) == START_MS + 200 * MINUTE_MS


def test_drift_is_followed_over_a_day() -> None:
    r = ClockReconciler()
    ppm = 80e-6
    for k in range(24 * 60):
        true = START_MS + k * MINUTE_MS
        feed(r, "d", arr([int(true + ppm * (true - START_MS))]), arr([true]))
    later = START_MS + 25 * 3_600_000
    assert abs(r.correct("d", int(later + ppm * (later - START_MS))) - later) <= 50


def test_an_unknown_device_is_left_as_it_is() -> None:
    assert ClockReconciler().correct("never-seen", 123) == 123


def test_rows_come_back_in_the_order_given_whatever_the_device_order() -> None:
    r = ClockReconciler()
    ts = arr([START_MS + 5_000, START_MS, START_MS + 1_000, START_MS + 6_000])
    received = ts + arr([10_000, -3_000, 10_000, -3_000])  # device a 10 s slow, device b 3 s fast
    corrected = r.reconcile(["a", "b"], np.array([0, 1, 0, 1], dtype=np.uint32), ts, received)
    assert corrected.tolist() == received.tolist()


def test_a_clock_stepped_forward_is_followed_after_a_few_samples() -> None:
    r = ClockReconciler()
    true = arr(range(START_MS, START_MS + 60 * MINUTE_MS, MINUTE_MS))
    feed(r, "d", true, true + 100)
    after = true[-1] + MINUTE_MS * arr(range(1, SUSPECT_CONFIRM + 3))
    corrected = [int(feed(r, "d", arr([t + 300_000]), arr([t + 100]))[0]) for t in after]  # rebooted, 5 min ahead
    assert r.resets == 1
    assert np.abs(arr(corrected[SUSPECT_CONFIRM - 1 :]) - after[SUSPECT_CONFIRM - 1 :]).max() <= 100


def test_a_clock_stepped_back_is_believed_only_when_samples_agree() -> None:
    r = ClockReconciler()
    true = arr(range(START_MS, START_MS + 60 * MINUTE_MS, MINUTE_MS))
    feed(r, "d", true, true + 100)
    t = int(true[-1])
    for buffered in (200_000, 450_000):  # two buffered samples far above the line: no step
        t += MINUTE_MS
        feed(r, "d", arr([t - buffered]), arr([t]))
    assert r.resets == 0
    late = []
    for _ in range(SUSPECT_CONFIRM + 2):  # then the clock really goes back 7 min
        t += MINUTE_MS
        late.append(int(feed(r, "d", arr([t - 420_000]), arr([t + 100]))[0]) - t)
    assert r.resets == 1
    assert all(abs(err) <= 200 for err in late[SUSPECT_CONFIRM - 1 :]), late


def test_late_samples_from_before_a_reboot_are_corrected_by_the_old_line() -> None:
    r = ClockReconciler()
    true = arr(range(START_MS, START_MS + 6 * 60 * MINUTE_MS, MINUTE_MS))
    old_clock = true - 30_000
    feed(r, "d", old_clock[:60], true[:60] + 100)  # an hour live, then the uplink is down for five
    feed(r, "d", true[-10:] + 200_000, true[-10:] + 100)  # back: rebooted meanwhile, 200 s ahead
    assert r.resets == 1
    backfill = feed(r, "d", old_clock[60:-10], true[60:-10] + 100)  # the outage's samples, hours late
    assert np.abs(backfill - true[60:-10]).max() <= 200


def test_a_backfill_frame_fills_the_gap_and_is_corrected_with_the_drift() -> None:
    r = ClockReconciler()
    ppm = 100e-6
    true = arr(range(START_MS, START_MS + 12 * 60 * MINUTE_MS, MINUTE_MS))
    clock = (true + 90_000 + ppm * (true - START_MS)).astype(np.int64)
    live, outage = slice(0, 120), slice(120, 600)  # two hours live, eight hours without uplink
    feed(r, "d", clock[live], true[live] + 150)
    feed(r, "d", clock[600:], true[600:] + 150)  # newest first after the outage
    corrected = feed(r, "d", clock[outage], true[outage] + 150)  # then the backlog, in one frame
    assert np.abs(corrected - true[outage]).max() <= 200
    assert r.resets == 0


def test_state_per_device_stays_bounded() -> None:
    r = ClockReconciler()
    true = arr(range(START_MS, START_MS + 2_000 * MINUTE_MS, MINUTE_MS))
    feed(r, "d", true, true + 10)
    size = r.state_nbytes()
    more = true + 2_000 * MINUTE_MS
    feed(r, "d", more, more + 10)
    assert r.state_nbytes() == size
    assert int((r._x[0] != np.iinfo(np.int64).min).sum()) == BUCKETS_KEPT


def test_ten_thousand_devices_cost_under_a_kilobyte_each() -> None:
    names = [f"dev-{i:06d}" for i in range(10_000)]
    ts = np.full(10_000, START_MS, dtype=np.int64)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    r = ClockReconciler()
    r.reconcile(names, np.arange(10_000, dtype=np.uint32), ts, ts + 500)
    r._lists.clear()  # the per-frame name-list cache is not per-device state
    per_device = (tracemalloc.get_traced_memory()[0] - before) / 10_000
    tracemalloc.stop()
    assert r.state_nbytes() / 10_000 < 700
    assert per_device < 1_024, per_device
