"""Signal models of all devices behind one gateway, held as numpy arrays (never an object per device).

Pure: time comes in as int milliseconds since the Unix epoch (UTC); nothing reads a clock.

Timing: sample ``s`` (s >= 1) of device ``i`` is taken at ``start_ms + phase_ms[i] + (s - 1) * interval_ms``
with ``phase_ms`` drawn once in ``[1, interval_ms]``. So after ``sample_until(start_ms + k * interval_ms)``
every device has exactly ``k`` samples, and devices do not all sample in the same millisecond.

Clocks (opt-in, ``clock_error=True``): ``ts_ms`` is then what each device's own clock read, off by
up to 2 min, drifting up to 100 ppm and stepping up to 10 min at rare reboots; ``true_ts_ms`` is
the truth and ``received_ms`` when the gateway got the sample (radio delay, sometimes minutes in a
device buffer). A block still holds the samples *measured* by ``now_ms``: a receipt may lie after
it. Without it, ``ts_ms`` is the truth and the other two are None.

Determinism: parameters come from generators seeded with ``(seed, site_index)`` (site) and
``(seed, site_index, crc32 of the device names)`` (bank); per-sample noise is drawn from the bank's
generator in each call. Two banks built alike and fed the same sequence of ``sample_until`` calls
return identical blocks; a different split of the same time span (other ``max_rows`` or call times)
gives the same (device, seq, ts) rows but other noise.

Resolution: every value is rounded to its sensor's step (``RESOLUTION``, an ADC's least
significant bit), as a real device reports it; frames then carry the steps as int64 counts.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2
import numpy as np
from numpy.typing import NDArray

from pymonitor.messages.columns import dequantize, quantize

METRICS: tuple[str, ...] = ("temperature_c", "humidity_pct", "vibration_g", "battery_v")
RESOLUTION: dict[str, float] = {  # a sensor's step, in the metric's unit: nothing finer is measured
    "temperature_c": 0.01,
    "humidity_pct": 0.1,
    "vibration_g": 0.001,
    "battery_v": 0.001,  # 1 mV
}
VALUE_SCALE: tuple[float, ...] = tuple(RESOLUTION[m] for m in METRICS)  # per row of SampleBlock.values

DAY_MS = 86_400_000
TEMP_PEAK_HOUR_UTC = 15.0  # daily maximum mid-afternoon
WEATHER_TAU_S = 3 * 3600.0  # correlation time of the AR(1) "weather" part of temperature
WEATHER_SIGMA_C = 1.5
TEMP_NOISE_C = 0.05  # sensor noise
RH_PER_C = 3.0  # relative humidity falls ~3 %RH per degree of warming at constant moisture
RH_NOISE_PCT = 1.0
MISSING_FRACTION = 0.005  # humidity / vibration cells that were not measured (NaN)
BURSTS_PER_DAY = (0.2, 4.0)  # per device, drawn log-uniform
BURST_MEAN_S = 600.0
BATTERY_LIFE_DAYS_AT_20C = (20.0, 200.0)  # drawn log-uniform: days to months
BATTERY_Q10 = 2.0  # self-discharge and load double per +10 degC (Arrhenius-like)
V_KNEE, Q_KNEE = 2.7, 0.85  # slow linear fall until 85 % used, then a steep fall to empty
V_EMPTY = 2.0  # floor: a reading never goes below it
BATTERY_NOISE_V = 0.005
_AR_LOG_SPAN = 18.0  # chunk the AR(1) scan so a**-j stays below e**18 (no overflow, ~1e-13 error)
CLOCK_OFFSET_MAX_MS = 120_000  # device clocks start up to 2 min off...
CLOCK_DRIFT_MAX_PPM = 100.0  # ...run up to 100 ppm fast or slow (cheap crystals)...
REBOOTS_PER_DAY = 0.25  # ...and step up to 10 min when the device restarts, rarely
REBOOT_STEP_MAX_MS = 600_000
RADIO_DELAY_MEAN_MS = 300.0  # exponential: most samples arrive at once
BUFFERED_FRACTION = 0.05  # samples that wait in the device's buffer first...
BUFFERED_MAX_MS = 600_000  # ...for up to 10 min (uniform)
_CLOCK_STREAM = 1  # extra seed word: clock parameters never shift the signal parameters


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """Samples of many devices, columnar, rows ordered by true measurement time (ties by device index)."""

    device_index: NDArray[np.uint32]  # index into the bank's device list
    device_seq: NDArray[np.int64]  # per-device sample counter: 1, 2, 3, ...
    ts_ms: NDArray[np.int64]  # measurement time, as the device's clock read it
    values: NDArray[np.float64]  # shape (len(METRICS), rows), multiples of VALUE_SCALE; NaN = not measured
    true_ts_ms: NDArray[np.int64] | None = None  # with clock errors: the true measurement time
    received_ms: NDArray[np.int64] | None = None  # with clock errors: when the gateway got the sample

    @property
    def rows(self) -> int:
        return int(self.ts_ms.shape[0])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> NDArray[np.float64]:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n))


def _ar1(x0: NDArray[np.float64], z: NDArray[np.float64], a: float, b: float) -> NDArray[np.float64]:
    """x[j] = a * x[j-1] + b * z[j] down axis 0, vectorised as a^j * (x0 + b * cumsum(z[i] / a^i))."""
    if a == 0.0:
        return b * z
    if z.shape[0] == 1:  # the usual call: one new sample per device
        return a * x0 + b * z
    out = np.empty_like(z)
    chunk = max(1, int(_AR_LOG_SPAN / -math.log(a)))
    x = x0
    for c in range(0, z.shape[0], chunk):  # one pass per ~54 h of simulated time at most
        zc = z[c : c + chunk]
        p = (a ** np.arange(1, zc.shape[0] + 1, dtype=np.float64))[:, None]
        out[c : c + zc.shape[0]] = p * (x + b * np.cumsum(zc / p, axis=0))
        x = out[c + zc.shape[0] - 1]
    return out


class DeviceBank:
    """All devices behind one gateway: per-device parameters and state as flat arrays."""

    __slots__ = (
        "_ar_a", "_ar_b", "_burst_amp", "_burst_end_p", "_burst_p", "_burst_until", "_clock_drift", "_clock_offset",
        "_clock_t0", "_dq_20c", "_first_ms", "_interval_s", "_next_seq", "_reboot_p", "_rh_base", "_rng",
        "_temp_amp", "_temp_offset", "_total", "_used", "_v_full", "_vib_sigma", "_weather", "devices", "interval_ms",
        "site_base_c",
    )  # fmt: skip

    def __init__(
        self,
        devices: list[str],
        *,
        seed: int,
        start_ms: int,
        interval_s: float,
        site_index: int = 0,
        clock_error: bool = False,
    ) -> None:
        if not devices:
            raise ValueError("DeviceBank: devices must not be empty")
        if len(set(devices)) != len(devices):
            raise ValueError("DeviceBank: devices must be unique names")
        if seed < 0 or site_index < 0:
            raise ValueError(f"DeviceBank: seed and site_index must be >= 0, got {seed}, {site_index}")
        interval_ms = round(interval_s * 1000) if math.isfinite(interval_s) else 0
        if interval_ms < 1:
            raise ValueError(f"DeviceBank: interval_s must be >= 0.001 s, got {interval_s!r}")
        n = len(devices)
        self.devices = list(devices)
        self.interval_ms = interval_ms
        self._interval_s = interval_ms / 1000.0
        site = np.random.default_rng([seed, site_index])
        self.site_base_c = float(site.uniform(-5.0, 32.0))  # shared by every gateway of the site
        rh_site = float(site.uniform(35.0, 80.0))
        names_crc = zlib.crc32("\n".join(devices).encode())
        rng = self._rng = np.random.default_rng([seed, site_index, names_crc])

        self._first_ms = start_ms + rng.integers(1, interval_ms, size=n, endpoint=True, dtype=np.int64)
        self._next_seq = np.ones(n, dtype=np.int64)
        self._total = 0
        self._temp_offset = rng.normal(0.0, 1.5, n)  # shade, height, enclosure
        self._temp_amp = rng.uniform(2.0, 6.0, n)
        a = math.exp(-self._interval_s / WEATHER_TAU_S)
        self._ar_a = a if a > 1e-8 else 0.0  # samples days apart: the weather part is white noise
        self._ar_b = WEATHER_SIGMA_C * math.sqrt(1.0 - self._ar_a**2)
        self._weather = rng.normal(0.0, WEATHER_SIGMA_C, n)
        self._rh_base = rh_site + rng.normal(0.0, 5.0, n)
        self._vib_sigma = rng.uniform(0.005, 0.03, n)
        self._burst_p = -np.expm1(-_log_uniform(rng, *BURSTS_PER_DAY, n) * self._interval_s / 86_400.0)
        self._burst_end_p = min(1.0, self._interval_s / BURST_MEAN_S)
        self._burst_amp = rng.uniform(0.3, 2.0, n)
        self._burst_until = np.zeros(n, dtype=np.int64)  # in burst while seq < this
        self._v_full = rng.uniform(3.0, 3.6, n)
        self._dq_20c = self._interval_s / (_log_uniform(rng, *BATTERY_LIFE_DAYS_AT_20C, n) * 86_400.0)
        self._used = np.zeros(n, dtype=np.float64)  # fraction of capacity used
        self._clock_t0 = start_ms
        self._reboot_p = -math.expm1(-REBOOTS_PER_DAY * self._interval_s / 86_400.0)
        self._clock_offset: NDArray[np.float64] | None = None
        self._clock_drift: NDArray[np.float64] | None = None
        if clock_error:
            clock = np.random.default_rng([seed, site_index, names_crc, _CLOCK_STREAM])
            self._clock_offset = clock.uniform(-CLOCK_OFFSET_MAX_MS, CLOCK_OFFSET_MAX_MS, n)  # steps at reboots
            self._clock_drift = clock.uniform(-CLOCK_DRIFT_MAX_PPM, CLOCK_DRIFT_MAX_PPM, n) * 1e-6

    def total_samples(self) -> int:
        """Samples generated so far, summed over devices."""
        return self._total

    def next_due_ms(self) -> int:
        """Earliest measurement time not yet returned: when the gateway next has work."""
        return int((self._first_ms + (self._next_seq - 1) * self.interval_ms).min())

    def state_nbytes(self) -> int:
        """Bytes held in numpy state arrays (what grows with the device count)."""
        return sum(int(v.nbytes) for k in self.__slots__ if isinstance(v := getattr(self, k), np.ndarray))

    def snapshot(self) -> bytes:
        """Everything that changes as samples are taken (arrays, counters, noise generator), as CBOR.

        A gateway saves it with each frame it buffers, so after a power cut it carries on where its
        last committed frame ended: no sample twice, none skipped. Parameters are not saved; they
        come back from the seed.
        """
        arrays = {
            k: [v.dtype.str, list(v.shape), v.tobytes()]
            for k in self.__slots__
            if isinstance(v := getattr(self, k), np.ndarray)
        }
        return cbor2.dumps({"arrays": arrays, "total": self._total, "rng": self._rng.bit_generator.state})

    def restore(self, data: bytes) -> None:
        """Take back a :meth:`snapshot` of a bank built with the same devices, seed and interval."""
        state = cbor2.loads(data)
        for name, (dtype, shape, raw) in state["arrays"].items():
            current = getattr(self, name)
            array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
            if array.shape != current.shape:
                raise ValueError(f"DeviceBank.restore: {name} has shape {array.shape}, expected {current.shape}")
            setattr(self, name, array)
        self._total = int(state["total"])
        self._rng.bit_generator.state = state["rng"]

    def _due_through(self, t_ms: int | NDArray[np.int64]) -> NDArray[np.int64]:
        """Per device: samples with ts <= t_ms not yet returned."""
        ever = np.maximum((t_ms - self._first_ms) // self.interval_ms + 1, 0)
        return np.maximum(ever - (self._next_seq - 1), 0)

    def _take(self, now_ms: int, max_rows: int | None) -> NDArray[np.int64]:
        """How many samples each device returns now: all due, or the max_rows earliest (ties by index)."""
        if max_rows is not None and max_rows < 0:
            raise ValueError(f"sample_until: max_rows must be >= 0, got {max_rows}")
        take = self._due_through(now_ms)
        if max_rows is None or int(take.sum()) <= max_rows:
            return take
        lo, hi = self.next_due_ms() - 1, now_ms  # count(lo) = 0 <= max_rows < count(hi)
        while hi - lo > 1:  # largest t with count(t) <= max_rows: ~log2(span) vector steps
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if int(self._due_through(mid).sum()) <= max_rows else (lo, mid)
        take = self._due_through(lo)
        ties = np.flatnonzero(self._due_through(hi) > take)[: max_rows - int(take.sum())]
        take[ties] += 1
        return take

    def sample_until(self, now_ms: int, max_rows: int | None = None) -> SampleBlock:
        """Every sample due up to ``now_ms`` not returned yet, several per device if time jumped.

        ``max_rows`` caps the block to the earliest rows; the rest stays due for the next call.
        """
        take_all = self._take(now_ms, max_rows)
        active = np.flatnonzero(take_all)
        if active.size == 0:
            return _empty_block()
        # Grid of (step, device): column d holds device active[d]'s samples in seq order, then padding.
        dev: slice | NDArray[np.intp] = slice(None) if active.size == take_all.size else active
        take = take_all[dev]
        steps = np.arange(int(take.max()), dtype=np.int64)[:, None]
        full = bool((take == steps.shape[0]).all())  # the usual case: no padding, no masking
        valid = steps < take
        r = int(take.sum())
        last = (take - 1, np.arange(active.size))
        seq = self._next_seq[dev] + steps
        ts = self._first_ms[dev] + (seq - 1) * self.interval_ms

        def flat(g: NDArray[Any]) -> NDArray[Any]:
            return g.ravel() if full else g[valid]

        def grid(f: NDArray[np.float64]) -> NDArray[np.float64]:
            if full:
                return f.reshape(valid.shape)
            g = np.zeros(valid.shape)
            g[valid] = f
            return g

        rng = self._rng
        gauss = rng.standard_normal((5, r))
        unif = rng.random((4, r))

        # Temperature: site + device offset + daily cycle + AR(1) weather + sensor noise.
        hour = (ts % DAY_MS) * (24.0 / DAY_MS)
        cycle = self._temp_amp[dev] * np.cos((hour - TEMP_PEAK_HOUR_UTC) * (2.0 * math.pi / 24.0))
        weather = _ar1(self._weather[dev], grid(gauss[0]), self._ar_a, self._ar_b)
        self._weather[dev] = weather[last]
        air = cycle + weather + (self._temp_offset[dev] + self.site_base_c)

        # Humidity: same moisture, warmer air -> lower relative humidity.
        humidity = self._rh_base[dev] - RH_PER_C * (cycle + 0.7 * weather)

        # Vibration: |noise| plus bursts that start with a small probability and last a geometric time.
        starts = grid(unif[0]) < self._burst_p[dev]
        if not full:
            starts &= valid
        ends = np.zeros((valid.shape[0] + 1, valid.shape[1]), dtype=np.int64)
        ends[0] = self._burst_until[dev]
        if n_starts := int(starts.sum()):
            ends[1:][starts] = seq[starts] + rng.geometric(self._burst_end_p, n_starts)
        np.maximum.accumulate(ends, axis=0, out=ends)
        self._burst_until[dev] = ends[1:][last]
        burst = (seq < ends[1:]) * self._burst_amp[dev]

        # Battery: capacity used grows with time, faster when warm; voltage falls slowly, then steeply.
        rate = self._dq_20c[dev] * np.exp((air - 20.0) * (math.log(BATTERY_Q10) / 10.0))
        used = self._used[dev] + np.cumsum(rate if full else np.where(valid, rate, 0.0), axis=0)
        self._used[dev] = used[last]
        v_full = self._v_full[dev]
        volts = v_full - (v_full - V_KNEE) * (np.minimum(used, Q_KNEE) * (1.0 / Q_KNEE))
        tail = np.minimum(np.maximum(used - Q_KNEE, 0.0), 1.0 - Q_KNEE)
        volts -= (V_KNEE - V_EMPTY) / (1.0 - Q_KNEE) * tail

        values = np.empty((len(METRICS), r))
        values[0] = flat(air)
        values[0] += TEMP_NOISE_C * gauss[1]
        values[1] = flat(humidity)
        values[1] += RH_NOISE_PCT * gauss[2]
        np.minimum(np.maximum(values[1], 0.0, out=values[1]), 100.0, out=values[1])
        values[2] = flat(burst)
        values[2] *= 0.6 + 0.8 * unif[1]
        values[2] += flat(self._vib_sigma[dev] * np.abs(grid(gauss[3])))
        values[3] = flat(volts)
        values[3] += BATTERY_NOISE_V * gauss[4]
        np.maximum(values[3], V_EMPTY, out=values[3])
        values[1, unif[2] < MISSING_FRACTION] = np.nan
        values[2, unif[3] < MISSING_FRACTION] = np.nan
        for i, scale in enumerate(VALUE_SCALE):  # the ADC step; the same floats a quantized frame reads back
            values[i] = dequantize(quantize(values[i], scale), scale)

        device_index = active.astype(np.uint32)[
            np.tile(np.arange(active.size), steps.shape[0]) if full else valid.nonzero()[1]
        ]
        ts_flat = flat(ts)
        order = np.lexsort((device_index, ts_flat))
        self._next_seq += take_all
        self._total += r
        block = SampleBlock(
            device_index=device_index[order],
            device_seq=flat(seq)[order],
            ts_ms=ts_flat[order],
            values=values[:, order],
        )
        if self._clock_offset is None or self._clock_drift is None:
            return block
        # Device clocks: an offset that steps at reboots, plus drift; receipt after a radio delay.
        draws = rng.random((2, r))
        steps = rng.uniform(-REBOOT_STEP_MAX_MS, REBOOT_STEP_MAX_MS, r) * (draws[0] < self._reboot_p)
        offset = self._clock_offset[dev] + np.cumsum(grid(steps), axis=0)
        self._clock_offset[dev] = offset[last]
        device_ts = flat(np.rint(ts + offset + self._clock_drift[dev] * (ts - self._clock_t0)).astype(np.int64))
        delay = rng.exponential(RADIO_DELAY_MEAN_MS, r)
        delay += (draws[1] < BUFFERED_FRACTION) * rng.uniform(0.0, BUFFERED_MAX_MS, r)
        received = ts_flat + np.rint(delay).astype(np.int64)
        return dataclasses.replace(block, ts_ms=device_ts[order], true_ts_ms=block.ts_ms, received_ms=received[order])


def _empty_block() -> SampleBlock:
    return SampleBlock(
        device_index=np.empty(0, dtype=np.uint32),
        device_seq=np.empty(0, dtype=np.int64),
        ts_ms=np.empty(0, dtype=np.int64),
        values=np.empty((len(METRICS), 0), dtype=np.float64),
    )
