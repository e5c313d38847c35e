"""A seeded firmware fleet: several models and vendor version schemes, approved rollouts, and injected
unauthorised changes whose device and time are recorded as truth.

Every device reports its (version, image hash) every ``REPORT_INTERVAL_MS`` at its own phase.
Approved rollouts move most eligible devices to the newest image inside their window (a few fail
and say so). Unauthorised changes, injected at random times, are of three kinds: an unapproved
version, the approved version with a foreign image hash (tampering), and a downgrade nobody rolled
out. A device changed without authorisation is left out of any later rollout, so the only change
an inventory should flag on it is the injected one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pymonitor.actors.firmware import Device, FirmwareReport, Image, Rollout

HOUR_MS = 3_600_000
REPORT_INTERVAL_MS = 15 * 60 * 1000
ROLLOUT_START_MS = 6 * HOUR_MS
ROLLOUT_END_MS = 30 * HOUR_MS
UPGRADE_SHARE = 0.8
FAIL_SHARE = 0.05
KINDS = ("unapproved version", "tampered image", "downgrade")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    name: str
    scheme: str
    ladder: tuple[str, ...]  # approved versions, oldest first; the last is the rollout target
    unapproved: str  # a version string of this scheme that no one approved


MODELS = (
    ModelSpec(name="TH-200", scheme="semver", ladder=("1.2.0", "1.3.1", "1.4.3"), unapproved="1.4.4-dev.1"),
    ModelSpec(name="GW-9", scheme="vbuild", ladder=("v2.3.1-b9", "v2.3.1-b45", "v2.4.0-b3"), unapproved="v2.4.0-b99"),
    ModelSpec(name="AQ-3", scheme="calver", ladder=("2023.04.1", "2023.10.0", "2024.02.2"), unapproved="2024.03.0"),
    ModelSpec(name="VB-1", scheme="underscore", ladder=("FW_1_2_9", "FW_1_2_10", "FW_1_3_0"), unapproved="FW_1_3_1"),
    ModelSpec(name="LX-7", scheme="revision", ladder=("R12", "R12A", "R13"), unapproved="R13B"),
)
SITES = tuple(f"site-{i:02d}" for i in range(8))


def image_hash(model: str, version: str) -> str:
    return hashlib.sha256(f"{model}:{version}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectedChange:
    device: str
    ts_ms: int
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareScenario:
    devices: tuple[Device, ...]
    approved: tuple[Image, ...]
    rollouts: tuple[Rollout, ...]
    schemes: dict[str, str]
    injected: tuple[InjectedChange, ...]  # truth
    horizon_ms: int
    report_interval_ms: int
    advisories_toml: str  # one advisory per model, on its oldest version
    # Per device: (ts_ms, version, hash, failed target or None), in time order; the first entry is at 0.
    timelines: tuple[tuple[tuple[int, str, str, str | None], ...], ...]
    phase_ms: tuple[int, ...]

    def reports(self) -> Iterator[FirmwareReport]:
        """Every device's periodic report, in time order."""
        order = sorted(range(len(self.devices)), key=self.phase_ms.__getitem__)
        cursor = [0] * len(self.devices)
        for slot_ms in range(0, self.horizon_ms, self.report_interval_ms):
            for d in order:
                ts = slot_ms + self.phase_ms[d]
                timeline = self.timelines[d]
                i = cursor[d]
                while i + 1 < len(timeline) and timeline[i + 1][0] <= ts:
                    i += 1
                cursor[d] = i
                _, version, hash_, failed = timeline[i]
                yield FirmwareReport(
                    device=self.devices[d].id, version=version, image_hash=hash_, ts_ms=ts, update_failed=failed
                )


def generate(seed: int, *, devices: int = 10_000, hours: int = 48, injected: int = 25) -> FirmwareScenario:
    rng = np.random.default_rng(seed)
    horizon_ms = hours * HOUR_MS
    model_idx = rng.integers(0, len(MODELS), size=devices)
    site_idx = rng.integers(0, len(SITES), size=devices)
    fleet = tuple(
        Device(id=f"dev-{d:05d}", model=MODELS[m].name, site=SITES[s], group=SITES[s])
        for d, (m, s) in enumerate(zip(model_idx.tolist(), site_idx.tolist(), strict=True))
    )
    approved = tuple(Image(model=m.name, version=v, image_hash=image_hash(m.name, v)) for m in MODELS for v in m.ladder)
    rollouts = tuple(
        Rollout(
            id=f"{m.name}->{m.ladder[-1]}",
            model=m.name,
            from_versions=frozenset(m.ladder[:-1]),
            to_version=m.ladder[-1],
            image_hash=image_hash(m.name, m.ladder[-1]),
            start_ms=ROLLOUT_START_MS,
            end_ms=ROLLOUT_END_MS,
        )
        for m in MODELS
    )
    start_rung = rng.integers(0, 2, size=devices)
    upgrade_at = rng.uniform(ROLLOUT_START_MS, ROLLOUT_END_MS, size=devices).astype(np.int64)  # may be past the horizon
    fate = rng.random(devices)  # < UPGRADE_SHARE upgrades; a further FAIL_SHARE tries and fails
    victims: list[int] = rng.choice(devices, size=min(injected, devices), replace=False).tolist()
    inject_at: list[float] = rng.uniform(HOUR_MS, horizon_ms - HOUR_MS, size=len(victims)).tolist()
    kinds: list[int] = rng.integers(0, len(KINDS), size=len(victims)).tolist()
    victim_of = {v: (int(t), KINDS[k]) for v, t, k in zip(victims, inject_at, kinds, strict=True)}
    timelines = []
    truth = []
    for d in range(devices):
        spec = MODELS[int(model_idx[d])]
        version = spec.ladder[int(start_rung[d])]
        events: list[tuple[int, str, str, str | None]] = [(0, version, image_hash(spec.name, version), None)]
        inj = victim_of.get(d)
        up_ms = int(upgrade_at[d])
        if inj is None or up_ms < inj[0]:
            target = spec.ladder[-1]
            if fate[d] < UPGRADE_SHARE:
                events.append((up_ms, target, image_hash(spec.name, target), None))
            elif fate[d] < UPGRADE_SHARE + FAIL_SHARE:
                events.append((up_ms, version, image_hash(spec.name, version), target))
        if inj is not None:
            at, kind = inj
            current = events[-1][1]
            if kind == "unapproved version":
                events.append((at, spec.unapproved, f"{rng.integers(1 << 62):016x}", None))
            elif kind == "tampered image":
                events.append((at, current, f"{rng.integers(1 << 62):016x}", None))
            else:
                older = spec.ladder[0] if current != spec.ladder[0] else spec.ladder[1]  # "down" or sideways
                events.append((at, older, image_hash(spec.name, older), None))
            truth.append(InjectedChange(device=fleet[d].id, ts_ms=at, kind=kind))
        timelines.append(tuple(events))
    advisories = "\n".join(
        f'[[advisory]]\nid = "PMSA-{i}"\nmodel = "{m.name}"\nscheme = "{m.scheme}"\naffected = "<={m.ladder[0]}"\n'
        f'severity = "high"\nfixed = "{m.ladder[1]}"\n'
        for i, m in enumerate(MODELS)
    )
    return FirmwareScenario(
        devices=fleet,
        approved=approved,
        rollouts=rollouts,
        schemes={m.name: m.scheme for m in MODELS},
        injected=tuple(sorted(truth, key=lambda c: c.ts_ms)),
        horizon_ms=horizon_ms,
        report_interval_ms=REPORT_INTERVAL_MS,
        advisories_toml=advisories,
        timelines=tuple(timelines),
        phase_ms=tuple(rng.integers(0, REPORT_INTERVAL_MS, size=devices).tolist()),
    )
