"""Which firmware every device runs, and which changes no approved rollout explains.

The inventory keeps each device's last reported (version, image hash). A change is authorised
only when an approved rollout for the device's model goes from its previous version to exactly
the new version and image hash, and the rollout window overlaps the interval in which the change
happened (between the two reports). Anything else (an unknown image, the same version with a
new hash, a downgrade nobody rolled out) is an :class:`UnauthorisedChange` at the report that
shows it, so detection takes at most one report interval. Bad reports are counted, never raised.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pymonitor.actors.firmware.advisories import Advisory
from pymonitor.actors.firmware.errors import FirmwareError
from pymonitor.actors.firmware.version import DEFAULT_REGISTRY, SchemeRegistry, Version


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    id: str
    model: str
    site: str
    group: str = ""  # a rollout or config group; consistency is reported per (group or site, model)


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An approved firmware image of a model."""

    model: str
    version: str
    image_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollout:
    """An approved update: devices of ``model`` on one of ``from_versions`` may move to the image in the window."""

    id: str
    model: str
    from_versions: frozenset[str]
    to_version: str
    image_hash: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareReport:
    device: str
    version: str
    image_hash: str
    ts_ms: int
    update_failed: str | None = None  # target version of an update the device tried and gave up on


@dataclass(frozen=True, slots=True, kw_only=True)
class UnauthorisedChange:
    device: str
    model: str
    site: str
    ts_ms: int
    previous: str | None  # "version#hash" before, None on a device's first report
    current: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutProgress:
    rollout: str
    done: int
    pending: int
    failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConsistency:
    group: str
    model: str
    devices: int
    majority_version: str
    majority_share: float


@dataclass(slots=True)
class _State:
    version: str
    image_hash: str
    ts_ms: int
    first_version: str


class FirmwareInventory:
    """Per-device firmware state from reports; queries for versions, outdated, vulnerable, rollouts, consistency."""

    def __init__(
        self,
        devices: Iterable[Device],
        *,
        approved: Iterable[Image],
        rollouts: Sequence[Rollout] = (),
        schemes: Mapping[str, str] | None = None,
        registry: SchemeRegistry = DEFAULT_REGISTRY,
    ) -> None:
        self._devices = {d.id: d for d in devices}
        self._schemes = dict(schemes or {})
        self._registry = registry
        self._rollouts = tuple(rollouts)
        check_rollouts(self._rollouts)
        self._rollouts_by_model: dict[str, list[Rollout]] = defaultdict(list)
        for rollout in self._rollouts:
            self._rollouts_by_model[rollout.model].append(rollout)
        self._approved = {(i.model, i.version, i.image_hash) for i in approved}
        self._approved |= {(r.model, r.to_version, r.image_hash) for r in self._rollouts}
        self._parsed: dict[tuple[str, str], Version] = {}
        self._newest: dict[str, Version] = {}
        for model, version, _ in self._approved:
            parsed = self.version_of(model, version)  # approved versions must parse: a config error otherwise
            if model not in self._newest or parsed > self._newest[model]:
                self._newest[model] = parsed
        self._state: dict[str, _State] = {}
        self._failed: set[tuple[str, str]] = set()
        self.rejected: Counter[str] = Counter()

    def version_of(self, model: str, text: str) -> Version:
        """The parsed version (cached); ``VersionError`` if the model's scheme rejects it."""
        key = (model, text)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = self._registry.parse(text, self._schemes.get(model))
        return parsed

    def observe(self, report: FirmwareReport) -> UnauthorisedChange | None:
        """Fold one report in; the unauthorised change it reveals, if any. Bad reports are counted in ``rejected``."""
        device = self._devices.get(report.device)
        if device is None:
            self.rejected["unknown_device"] += 1
            return None
        try:
            self.version_of(device.model, report.version)
        except FirmwareError:
            self.rejected["bad_version"] += 1
            return None
        if not report.image_hash:
            self.rejected["missing_hash"] += 1
            return None
        state = self._state.get(report.device)
        if report.update_failed is not None:
            self._failed.add((report.device, report.update_failed))
        if state is None:
            self._state[report.device] = _State(report.version, report.image_hash, report.ts_ms, report.version)
            if (device.model, report.version, report.image_hash) in self._approved:
                return None
            return self._event(device, report, None, "first report shows an image that is not approved")
        if report.ts_ms < state.ts_ms:
            self.rejected["out_of_order"] += 1
            return None
        if report.version == state.version and report.image_hash == state.image_hash:
            state.ts_ms = report.ts_ms
            return None
        previous = f"{state.version}#{state.image_hash}"
        explained = self._explained(device.model, state, report)
        state.version, state.image_hash, state.ts_ms = report.version, report.image_hash, report.ts_ms
        if explained:
            return None
        return self._event(device, report, previous, "no approved rollout explains the change")

    def _explained(self, model: str, state: _State, report: FirmwareReport) -> bool:
        return any(
            state.version in r.from_versions
            and r.to_version == report.version
            and r.image_hash == report.image_hash
            and r.start_ms <= report.ts_ms
            and r.end_ms >= state.ts_ms
            for r in self._rollouts_by_model.get(model, ())
        )

    @staticmethod
    def _event(device: Device, report: FirmwareReport, previous: str | None, reason: str) -> UnauthorisedChange:
        return UnauthorisedChange(
            device=device.id,
            model=device.model,
            site=device.site,
            ts_ms=report.ts_ms,
            previous=previous,
            current=f"{report.version}#{report.image_hash}",
            reason=reason,
        )

    def current(self, device: str) -> str | None:
        state = self._state.get(device)
        return None if state is None else state.version

    def versions(self) -> dict[tuple[str, str], Counter[str]]:
        """Devices per version, per (model, site)."""
        table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for device_id, state in self._state.items():
            device = self._devices[device_id]
            table[(device.model, device.site)][state.version] += 1
        return dict(table)

    def outdated(self) -> list[str]:
        """Devices behind the newest approved version of their model (a model with no approved image has none)."""
        behind = []
        for device_id, state in self._state.items():
            model = self._devices[device_id].model
            newest = self._newest.get(model)
            if newest is not None and self.version_of(model, state.version) < newest:
                behind.append(device_id)
        return sorted(behind)

    def newest_approved(self, model: str) -> Version | None:
        return self._newest.get(model)

    def vulnerable(self, advisories: Sequence[Advisory]) -> dict[str, tuple[str, ...]]:
        """Device -> ids of the advisories its current version falls under (only affected devices)."""
        found: dict[str, tuple[str, ...]] = {}
        for device_id, state in self._state.items():
            model = self._devices[device_id].model
            version = self.version_of(model, state.version)
            ids = tuple(a.id for a in advisories if a.affects(model, version))
            if ids:
                found[device_id] = ids
        return found

    def rollout_progress(self) -> list[RolloutProgress]:
        """Per rollout: devices on the target (done), still on a from-version (pending), that reported failure."""
        progress = []
        for rollout in self._rollouts:
            done = pending = failed = 0
            for device_id, state in self._state.items():
                if self._devices[device_id].model != rollout.model:
                    continue
                if state.version == rollout.to_version and state.image_hash == rollout.image_hash:
                    done += 1
                elif (device_id, rollout.to_version) in self._failed:
                    failed += 1
                elif state.version in rollout.from_versions:
                    pending += 1
            progress.append(RolloutProgress(rollout=rollout.id, done=done, pending=pending, failed=failed))
        return progress

    def consistency(self) -> list[GroupConsistency]:
        """Per (group, model): the majority version and the share of devices on it (1.0 = consistent)."""
        groups: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for device_id, state in self._state.items():
            device = self._devices[device_id]
            groups[(device.group or device.site, device.model)][state.version] += 1
        rows = []
        for (group, model), counts in sorted(groups.items()):
            version, n = counts.most_common(1)[0]
            total = sum(counts.values())
            rows.append(
                GroupConsistency(
                    group=group, model=model, devices=total, majority_version=version, majority_share=n / total
                )
            )
        return rows


def check_rollouts(rollouts: Sequence[Rollout]) -> None:
    """``FirmwareError`` naming the first rollout whose window is empty or whose from-set is empty."""
    for i, rollout in enumerate(rollouts):
        if rollout.end_ms < rollout.start_ms:
            window = f"{rollout.end_ms} < {rollout.start_ms}"
            raise FirmwareError(f"rollouts[{i}] ({rollout.id}).end_ms: before start_ms ({window})")
        if not rollout.from_versions:
            raise FirmwareError(f"rollouts[{i}] ({rollout.id}).from_versions: empty")
