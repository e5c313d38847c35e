"""Health gates between waves and abort thresholds inside them: pure functions over counts.

A timeout counts as a failure by default. With ``timeout_counts_as="timeout"`` a device that
never answered is reported apart: it is neither a success nor a failure, so it leaves the success
rate's denominator and the error budget; a wave in which *nobody* answered still fails its gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RolloutSpecError

TIMEOUT_MODES = ("failed", "timeout")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatePolicy:
    """When a wave may be followed by the next one, and when the rollout stops by itself."""

    min_success_rate: float = 0.95
    """Share of a wave's answered devices that must have applied and stayed healthy."""
    max_failures: int | None = None
    """Error budget over the whole rollout; one failure more aborts it (None: no budget)."""
    soak_ms: int = 0
    """Time to wait after a wave's last answer before its gate is judged (late health failures)."""
    abort_failure_share: float = 0.5
    """Failure share over the whole rollout that aborts it at once, once ``abort_min_executed`` answered."""
    abort_min_executed: int = 10
    timeout_counts_as: str = "failed"

    def __post_init__(self) -> None:
        if not isinstance(self.min_success_rate, int | float) or not 0 <= self.min_success_rate <= 1:
            raise RolloutSpecError(f"gates.min_success_rate: expected 0..1, got {self.min_success_rate!r}")
        if self.max_failures is not None and (not isinstance(self.max_failures, int) or self.max_failures < 0):
            raise RolloutSpecError(f"gates.max_failures: expected a count >= 0 or none, got {self.max_failures!r}")
        if not isinstance(self.soak_ms, int) or self.soak_ms < 0:
            raise RolloutSpecError(f"gates.soak_ms: expected a duration >= 0 ms, got {self.soak_ms!r}")
        if not isinstance(self.abort_failure_share, int | float) or not 0 < self.abort_failure_share <= 1:
            raise RolloutSpecError(
                f"gates.abort_failure_share: expected 0 < share <= 1, got {self.abort_failure_share!r}"
            )
        if not isinstance(self.abort_min_executed, int) or self.abort_min_executed < 1:
            raise RolloutSpecError(f"gates.abort_min_executed: expected a count >= 1, got {self.abort_min_executed!r}")
        if self.timeout_counts_as not in TIMEOUT_MODES:
            raise RolloutSpecError(
                f"gates.timeout_counts_as: expected one of {', '.join(TIMEOUT_MODES)}, got {self.timeout_counts_as!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """Answers of a wave (or of the whole rollout so far)."""

    size: int
    applied: int
    failed: int
    health_failed: int
    timed_out: int

    def answered(self, policy: GatePolicy) -> int:
        """Devices whose outcome counts in the success rate."""
        timeouts = self.timed_out if policy.timeout_counts_as == "failed" else 0
        return self.applied + self.failed + self.health_failed + timeouts

    def failures(self, policy: GatePolicy) -> int:
        timeouts = self.timed_out if policy.timeout_counts_as == "failed" else 0
        return self.failed + self.health_failed + timeouts


def abort_reason(policy: GatePolicy, total: Tally) -> str | None:
    """Why the rollout must stop now (error budget spent, failure share too high), or None."""
    failures = total.failures(policy)
    if policy.max_failures is not None and failures > policy.max_failures:
        return f"error budget spent: {failures} failures, budget {policy.max_failures}"
    answered = total.answered(policy)
    if answered >= policy.abort_min_executed and failures / answered >= policy.abort_failure_share:
        return (
            f"failure share {failures}/{answered} = {failures / answered:.1%} reached the abort threshold "
            f"{policy.abort_failure_share:.1%}"
        )
    return None


def gate_reason(policy: GatePolicy, wave: int, tally: Tally) -> str | None:
    """Why wave ``wave`` may not be followed by the next one, or None when its gate passes."""
    answered = tally.answered(policy)
    if answered == 0:
        return f"wave {wave}: none of its {tally.size} devices answered"
    rate = tally.applied / answered
    if rate < policy.min_success_rate:
        return (
            f"wave {wave}: success rate {tally.applied}/{answered} = {rate:.1%} is below the gate "
            f"{policy.min_success_rate:.1%}"
        )
    return None
