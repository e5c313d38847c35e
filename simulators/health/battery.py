"""Seeded battery fleets with known depletion times: the ground truth the battery role is scored on.

Each device has a chemistry (``actors.battery.chemistry``), a site with its own climate, a reporting
interval and a radio link. Every simulated hour its state of charge falls by

    average current / usable capacity * (1 + cold_drain * max(0, 10 °C - T)) + self-discharge(T)

where the average current is a sleep current plus the charge of each uplink times its attempts
(weak links retry more, on some days more than others), usable capacity differs per cell, and
self-discharge doubles every 10 °C. The voltage is the chemistry's curve at that charge and
temperature plus a per-cell offset of a few mV; a report adds ADC noise and 5 mV quantisation.

The truth is the first moment the noise-free voltage crosses the chemistry's cutoff (interpolated
inside the hour, usually on a cold night). It is found by simulating past the history's end
(``extra_days``); a battery still alive then has depletion ``inf``. A dead device stops reporting.

Injected, and recorded in :class:`BatteryTruth`: battery swaps / recharges inside the history,
garbage readings (NaN, negative, 0 V, 65.535 V, -127 °C), devices whose ADC reads 0xFFFF forever,
devices installed in the last day and a half (too few readings), and lost uplinks.

``future_seed`` draws the weather and radio retries after the history from a stream of their own:
scenarios that differ only in it share the state at ``now_ms`` (charge, offsets, capacities, climate,
today's weather) and differ only in what no forecast can know yet. ``None`` (the default) keeps one
stream, so a seed's scenario is the same as it always was. The bench uses it to measure the ceiling
the weather puts on any forecast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pymonitor.actors.battery.chemistry import CHEMISTRIES, CHEMISTRY_NAMES
from pymonitor.actors.battery.history import FleetHistory

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
CHEMISTRY_SHARE = (0.5, 0.3, 0.2)  # lisocl2, alkaline_2aa, liion
INTERVALS_S = np.array([300, 900, 1800, 3600])
INTERVAL_SHARE = (0.2, 0.4, 0.25, 0.15)
SLEEP_MA = 0.008
ADC_NOISE_V = 0.004
ADC_QUANTUM_V = 0.005
STUCK_V = 65.535  # an ADC returning 0xFFFF mV
GARBAGE_V = (float("nan"), -0.1, 0.0, STUCK_V)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceMeta:
    """What an operator knows about each device (row-aligned with the history)."""

    devices: tuple[str, ...]
    chemistries: tuple[str, ...]
    sites: tuple[str, ...]
    locations: tuple[str, ...]  # "site-007/zone-2": where on the site a technician finds it
    criticality: NDArray[np.int64]  # 1 (nice to have) .. 3 (safety relevant)
    report_interval_s: NDArray[np.int64]
    link_loss: NDArray[np.float64]  # mean probability an uplink attempt fails


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryTruth:
    """What the scenario injected and what really happened (never shown to the forecast)."""

    depletion_ms: NDArray[np.float64]  # first cutoff crossing; inf if alive at simulated_until_ms
    simulated_until_ms: int
    soc_at_end: NDArray[np.float64]  # true state of charge when the history ends
    soc_daily: NDArray[np.float64]  # (devices, simulated days): true state of charge at each day's end
    replaced_at_ms: NDArray[np.float64]  # battery swap / recharge inside the history; NaN if none
    garbage_readings: NDArray[np.int64]  # per device, readings replaced by garbage
    stuck: NDArray[np.bool_]  # every reading is 0xFFFF
    new: NDArray[np.bool_]  # installed in the last 1.5 days of the history
    cell_offset_v: NDArray[np.float64]
    capacity_factor: NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryScenario:
    """A fleet's battery history up to ``now_ms``, its metadata, and the truth past it."""

    seed: int
    days: int
    start_ms: int
    now_ms: int  # end of the history: where a forecast is made
    history: FleetHistory
    meta: DeviceMeta
    truth: BatteryTruth

    def true_days_to_empty(self) -> NDArray[np.float64]:
        """Days from ``now_ms`` to each true depletion (negative: already dead; inf: beyond the simulation)."""
        return (self.truth.depletion_ms - self.now_ms) / DAY_MS

    def injected(self) -> dict[str, Any]:
        """A JSON-able account of what was injected."""
        t = self.truth
        dte = self.true_days_to_empty()
        return {
            "devices": len(self.meta.devices),
            "days": self.days,
            "chemistries": {c: self.meta.chemistries.count(c) for c in CHEMISTRY_NAMES},
            "replaced_in_history": int(np.isfinite(t.replaced_at_ms).sum()),
            "garbage_readings": int(t.garbage_readings.sum()),
            "stuck_devices": int(t.stuck.sum()),
            "new_devices": int(t.new.sum()),
            "lost_uplinks": int((~self.history.present).sum()),
            "dead_before_end": int((dte <= 0).sum()),
            "depleting_within_30_days": int(((dte > 0) & (dte <= 30)).sum()),
        }

    @classmethod
    def generate(
        cls,
        seed: int,
        devices: int = 10_000,
        days: int = 60,
        *,
        extra_days: int = 120,
        report_every_h: int = 4,
        devices_per_site: int = 40,
        garbage_rate: float = 0.002,
        replaced_share: float = 0.03,
        stuck_share: float = 0.003,
        new_share: float = 0.005,
        weather_sd_c: float = 1.5,
        cell_offset_sd_v: float = 0.005,
        future_seed: int | None = None,
    ) -> BatteryScenario:
        """``devices`` reporting every ``report_every_h`` hours for ``days`` days; truth to ``extra_days`` beyond."""
        rng = np.random.default_rng(seed)
        future_rng = rng if future_seed is None else np.random.default_rng([seed, future_seed])
        n = devices
        meta, climate = _fleet(rng, n, devices_per_site, weather_sd_c)
        chem_idx = np.array([CHEMISTRY_NAMES.index(c) for c in meta.chemistries])
        cap = np.array([CHEMISTRIES[c].capacity_mah for c in CHEMISTRY_NAMES])[chem_idx]
        cold = np.array([CHEMISTRIES[c].cold_drain_per_c for c in CHEMISTRY_NAMES])[chem_idx]
        selfd = np.array([CHEMISTRIES[c].self_discharge_per_year for c in CHEMISTRY_NAMES])[chem_idx]
        cap_f = np.clip(rng.normal(1.0, 0.04, n), 0.85, 1.15)
        offset = rng.normal(0.0, cell_offset_sd_v, n)
        tx_mas = 20.0 + 100.0 * meta.link_loss  # weak links use slower, costlier modulation
        interval = meta.report_interval_s.astype(np.float64)

        def drain_per_hour(temp: NDArray[np.float64], attempts: NDArray[np.float64]) -> NDArray[np.float64]:
            current_ma = SLEEP_MA + tx_mas[:, None] * attempts / interval[:, None]
            use = current_ma / (cap * cap_f)[:, None] * (1.0 + cold[:, None] * np.maximum(0.0, 10.0 - temp))
            out: NDArray[np.float64] = use + selfd[:, None] / 8760.0 * 2.0 ** ((temp - 25.0) / 10.0)
            return out

        # Initial charge: each device is given a target life so the fleet's depletions spread over the run.
        nominal = drain_per_hour(climate.mean_c[:, None], 1.0 / (1.0 - meta.link_loss[:, None]))[:, 0] * 24.0
        life_days = rng.uniform(0.4 * days, days + extra_days, n)
        replaced = rng.random(n) < replaced_share
        replaced_h = np.where(replaced, rng.integers(int(0.2 * days * 24), int(0.8 * days * 24), n), -1)
        life_days = np.where(replaced, np.maximum(life_days, replaced_h / 24.0 + 5.0), life_days)
        coldest = climate.mean_c - climate.season_c - climate.diurnal_c
        soc_cut = np.empty(n)
        for k, name in enumerate(CHEMISTRY_NAMES):
            rows = chem_idx == k
            soc_cut[rows] = CHEMISTRIES[name].soc(CHEMISTRIES[name].cutoff_v, coldest[rows])
        soc = np.minimum(1.0, soc_cut + nominal * life_days)
        new_soc = rng.uniform(0.95, 1.0, n)

        per_day = 24 // report_every_h
        phase = rng.integers(0, report_every_h, n)
        slot_hours = phase[:, None] + report_every_h * np.arange(per_day)[None, :]
        hist_v = np.empty((n, days * per_day))
        hist_t = np.empty((n, days * per_day))
        depletion = np.full(n, np.inf)
        v_prev = _voltage(chem_idx, soc[:, None], climate.at(0, rng)[:, :1], offset)[:, 0]
        soc_at_end = soc.copy()
        hours = np.arange(24)
        soc_daily = np.full((n, days + extra_days), np.nan)
        for day in range(days + extra_days):
            day_rng = rng if day < days else future_rng
            temp = climate.at(day, day_rng)
            attempts = 1.0 / (1.0 - np.clip(meta.link_loss * day_rng.lognormal(0.0, 0.3, n), 0.0, 0.9))
            path = soc[:, None] - np.cumsum(drain_per_hour(temp, attempts[:, None]), axis=1)
            rep = np.flatnonzero(replaced_h // 24 == day)
            if rep.size:
                at = replaced_h[rep] % 24
                jump = new_soc[rep] - path[rep, at]
                path[rep] += jump[:, None] * (hours[None, :] >= at[:, None])
            path = np.maximum(path, 0.0)
            volts = _voltage(chem_idx, path, temp, offset)
            _record_depletion(depletion, volts, v_prev, chem_idx, day)
            v_prev = volts[:, -1]
            soc = path[:, -1]
            soc_daily[:, day] = soc
            if day < days:
                cols = slice(day * per_day, (day + 1) * per_day)
                hist_v[:, cols] = np.take_along_axis(volts, slot_hours, axis=1)
                hist_t[:, cols] = np.take_along_axis(temp, slot_hours, axis=1)
                if day == days - 1:
                    soc_at_end = soc.copy()
            elif np.isfinite(depletion).all():
                break
        until_ms = START_MS + (day + 1) * DAY_MS

        ts = START_MS + (np.arange(days)[:, None] * 24 + slot_hours[:, None, :]).reshape(n, -1) * HOUR_MS
        ts = ts + rng.integers(0, 60_000, ts.shape)  # reports are not on the hour
        depletion_ms = START_MS + depletion * HOUR_MS
        present = (rng.random(ts.shape) >= 0.3 * meta.link_loss[:, None]) & (ts < depletion_ms[:, None])
        volts_meas = np.round((hist_v + rng.normal(0.0, ADC_NOISE_V, hist_v.shape)) / ADC_QUANTUM_V) * ADC_QUANTUM_V
        temp_meas = np.round(hist_t + rng.normal(0.0, 0.3, hist_t.shape), 1)
        new = rng.random(n) < new_share
        present &= ~new[:, None] | (ts >= START_MS + days * DAY_MS - 36 * HOUR_MS)
        stuck = rng.random(n) < stuck_share
        volts_meas[stuck] = STUCK_V
        garbage = (rng.random(ts.shape) < garbage_rate) & present & ~stuck[:, None]
        volts_meas[garbage] = rng.choice(np.array(GARBAGE_V), int(garbage.sum()))
        bad_temp = (rng.random(ts.shape) < garbage_rate / 2) & present
        temp_meas[bad_temp] = -127.0  # a 1-wire sensor's "no answer"
        history = FleetHistory(
            devices=meta.devices,
            chemistries=meta.chemistries,
            ts_ms=ts.astype(np.int64),
            voltage=volts_meas,
            temp_c=temp_meas,
            present=present,
        )
        truth = BatteryTruth(
            depletion_ms=depletion_ms,
            simulated_until_ms=until_ms,
            soc_at_end=soc_at_end,
            soc_daily=soc_daily[:, : day + 1],
            replaced_at_ms=np.where(replaced, START_MS + replaced_h * float(HOUR_MS), np.nan),
            garbage_readings=(garbage | bad_temp).sum(axis=1),
            stuck=stuck,
            new=new,
            cell_offset_v=offset,
            capacity_factor=cap_f,
        )
        return cls(
            seed=seed,
            days=days,
            start_ms=START_MS,
            now_ms=START_MS + days * DAY_MS,
            history=history,
            meta=meta,
            truth=truth,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Climate:
    """Per-device temperature: site mean, season, weather shared by a site, diurnal swing (smaller indoors)."""

    mean_c: NDArray[np.float64]
    season_c: NDArray[np.float64]
    diurnal_c: NDArray[np.float64]
    site: NDArray[np.int64]
    weather: NDArray[np.float64]  # per site, AR(1) day to day, updated in place
    weather_sd_c: float  # of the AR(1) innovation

    def at(self, day: int, rng: np.random.Generator) -> NDArray[np.float64]:
        """Hourly temperatures of every device on ``day`` (devices, 24)."""
        self.weather[:] = 0.7 * self.weather + rng.normal(0.0, self.weather_sd_c, self.weather.shape)
        t = day + np.arange(24) / 24.0
        season = np.sin(2 * np.pi * (t - 100.0) / 365.0)
        diurnal = np.sin(2 * np.pi * (np.arange(24) - 9.0) / 24.0)
        base = self.mean_c + self.weather[self.site]
        out: NDArray[np.float64] = (
            base[:, None] + self.season_c[:, None] * season[None, :] + self.diurnal_c[:, None] * diurnal[None, :]
        )
        return out


def _fleet(rng: np.random.Generator, n: int, per_site: int, weather_sd_c: float) -> tuple[DeviceMeta, _Climate]:
    sites = max(1, n // per_site)
    site = rng.integers(0, sites, n)
    site_mean = rng.uniform(-5.0, 28.0, sites)
    site_season = rng.uniform(3.0, 10.0, sites)
    indoor = rng.random(n) < 0.3
    zone = rng.integers(0, 4, n)
    chem = rng.choice(len(CHEMISTRY_NAMES), n, p=CHEMISTRY_SHARE)
    meta = DeviceMeta(
        devices=tuple(f"bat-{i:06d}" for i in range(n)),
        chemistries=tuple(CHEMISTRY_NAMES[c] for c in chem),
        sites=tuple(f"site-{s:03d}" for s in site),
        locations=tuple(f"site-{s:03d}/zone-{z}" for s, z in zip(site, zone, strict=True)),
        criticality=rng.choice(np.array([1, 2, 3]), n, p=(0.5, 0.35, 0.15)).astype(np.int64),
        report_interval_s=rng.choice(INTERVALS_S, n, p=INTERVAL_SHARE).astype(np.int64),
        link_loss=rng.beta(1.2, 8.0, n),
    )
    climate = _Climate(
        mean_c=np.where(indoor, 20.0 + rng.normal(0.0, 1.0, n), site_mean[site]),
        season_c=np.where(indoor, 1.0, site_season[site]),
        diurnal_c=np.where(indoor, 1.0, rng.uniform(3.0, 6.0, n)),
        site=site,
        weather=np.zeros(sites),
        weather_sd_c=weather_sd_c,
    )
    return meta, climate


def _voltage(
    chem_idx: NDArray[np.int64], soc: NDArray[np.float64], temp: NDArray[np.float64], offset: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Noise-free voltages (devices, hours) of each device's chemistry; ``soc`` and ``temp`` are 2-D (devices, ...)."""
    out = np.empty(np.broadcast_shapes(soc.shape, temp.shape))
    soc_b = np.broadcast_to(soc, out.shape)
    for k, name in enumerate(CHEMISTRY_NAMES):
        rows = chem_idx == k
        out[rows] = CHEMISTRIES[name].voltage(soc_b[rows], np.broadcast_to(temp, out.shape)[rows])
    return out + offset[:, None]


def _record_depletion(
    depletion: NDArray[np.float64],
    volts: NDArray[np.float64],
    v_prev: NDArray[np.float64],
    chem_idx: NDArray[np.int64],
    day: int,
) -> None:
    """Set ``depletion`` (hours since start) of devices whose voltage first crosses their cutoff today."""
    cutoff = np.array([CHEMISTRIES[c].cutoff_v for c in CHEMISTRY_NAMES])[chem_idx]
    below = volts < cutoff[:, None]
    hit = np.isinf(depletion) & below.any(axis=1)
    if not hit.any():
        return
    rows = np.flatnonzero(hit)
    h = below[rows].argmax(axis=1)
    before = np.where(h > 0, volts[rows, np.maximum(h - 1, 0)], v_prev[rows])
    after = volts[rows, h]
    frac = np.clip((before - cutoff[rows]) / np.maximum(before - after, 1e-12), 0.0, 1.0)
    depletion[rows] = day * 24 + h - 1 + frac
