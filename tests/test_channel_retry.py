"""Backoff with full jitter, and the Deliverer on a simulated clock (no real sleeping)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.alerting import AlertConfigError
from pymonitor.actors.alerting.chains import EscalationPolicy
from pymonitor.actors.alerting.channels import (
    AttemptRecord,
    Deliverer,
    DeliveryResult,
    OutgoingMessage,
    RetryPolicy,
)
from pymonitor.actors.alerting.escalation import Escalator

MESSAGE = OutgoingMessage(id="n-1", recipient="ann", subject="s", text="t", fingerprints=("fp1", "fp2"))


class Scripted:
    """A channel that answers from a script, then repeats its last answer."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)
        self.calls: list[int] = []

    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        self.calls.append(now_ms)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return DeliveryResult(status=status, detail=f"said {status}", provider_id="p" if status == "sent" else "")  # type: ignore[arg-type]


class Broken:
    def send(self, message: OutgoingMessage, now_ms: int) -> DeliveryResult:
        raise RuntimeError("bug")


class SimClock:
    def __init__(self) -> None:
        self.now_ms = 1_000_000
        self.slept: list[int] = []

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, ms: int) -> None:
        self.slept.append(ms)
        self.now_ms += ms


def _deliverer(policy: RetryPolicy, clock: SimClock, **kw: object) -> Deliverer:
    return Deliverer(policy, clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_ceiling_doubles_until_the_cap() -> None:
    policy = RetryPolicy(base_delay_ms=1000, max_delay_ms=10_000, max_attempts=10)
    assert [policy.ceiling_ms(n) for n in range(1, 7)] == [1000, 2000, 4000, 8000, 10_000, 10_000]
    assert policy.ceiling_ms(10_000) == 10_000  # no overflow on absurd attempt numbers


@given(attempt=st.integers(min_value=-5, max_value=10_000), seed=st.integers())
def test_jittered_delay_stays_within_zero_and_the_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(max_attempts=20, rng=random.Random(seed))
    delay = policy.next_delay_ms(attempt)
    if attempt >= 20:
        assert delay is None
    else:
        assert delay is not None and 0 <= delay <= policy.ceiling_ms(attempt)


def test_same_seed_gives_the_same_delays_and_jitter_spreads_them() -> None:
    def delays(seed: int) -> list[int | None]:
        policy = RetryPolicy(max_attempts=8, rng=random.Random(seed))
        return [policy.next_delay_ms(n) for n in range(1, 8)]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)
    many = [RetryPolicy(rng=random.Random(s)).next_delay_ms(3) for s in range(200)]
    assert len(set(many)) > 100  # full jitter: not the same delay for everybody


def test_last_attempt_has_no_next_delay() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_delay_ms(3) is None and policy.next_delay_ms(2) is not None


def test_deliverer_retries_on_simulated_clock_and_reports_every_attempt() -> None:
    clock, records = SimClock(), []
    channel = Scripted("retry", "retry", "sent")
    deliverer = _deliverer(RetryPolicy(max_attempts=5, rng=random.Random(1)), clock, on_attempt=records.append)
    result = deliverer.deliver("ops-sms", channel, MESSAGE)
    assert (result.status, result.attempts, result.provider_id) == ("sent", 3, "p")
    assert len(clock.slept) == 2 and channel.calls[1] == channel.calls[0] + clock.slept[0]
    assert [r.status for r in records] == ["retry", "retry", "sent"]
    assert all(isinstance(r, AttemptRecord) and r.channel == "ops-sms" and r.message_id == "n-1" for r in records)
    assert [r.attempt for r in records] == [1, 2, 3]


def test_permanent_failure_is_not_retried_and_signals_escalation() -> None:
    clock, failed = SimClock(), []
    deliverer = _deliverer(RetryPolicy(), clock, on_failure=lambda fp, ch, at: failed.append((fp, ch, at)))
    result = deliverer.deliver("ops-sms", Scripted("failed"), MESSAGE)
    assert (result.status, result.attempts, result.detail) == ("failed", 1, "said failed")
    assert clock.slept == []
    assert failed == [("fp1", "ops-sms", clock.now_ms), ("fp2", "ops-sms", clock.now_ms)]
    assert deliverer.failures == 1


def test_out_of_attempts_becomes_failed_with_the_count() -> None:
    clock = SimClock()
    deliverer = _deliverer(RetryPolicy(max_attempts=4, rng=random.Random(3)), clock)
    result = deliverer.deliver("hook", Scripted("retry"), MESSAGE)
    assert result.status == "failed" and result.attempts == 4 and "gave up after 4 attempts" in result.detail
    assert len(clock.slept) == 3


def test_channel_that_raises_is_counted_and_retried_not_propagated() -> None:
    clock = SimClock()
    deliverer = _deliverer(RetryPolicy(max_attempts=2, rng=random.Random(0)), clock)
    result = deliverer.deliver("buggy", Broken(), MESSAGE)
    assert result.status == "failed" and "RuntimeError" in result.detail and deliverer.crashes == 2


def test_delivery_failure_moves_real_escalation_to_the_fallback() -> None:
    level = {"receivers": ["ops-sms"], "fallback": ["ops-mail"], "ack_timeout": "10m"}
    policy = EscalationPolicy.from_config(
        {"escalation": {"in_hours": "ops", "chains": {"ops": {"levels": [level]}}}}, receivers={"ops-sms", "ops-mail"}
    )
    escalator = Escalator(policy)
    clock = SimClock()
    escalator.start("fp1", clock.now_ms, chain="ops")
    escalator.due(clock.now_ms)
    deliverer = _deliverer(
        RetryPolicy(max_attempts=2, rng=random.Random(0)), clock, on_failure=escalator.delivery_failed
    )
    deliverer.deliver(
        "ops-sms",
        Scripted("retry"),
        OutgoingMessage(id="x", recipient="+44", subject="", text="", fingerprints=("fp1",)),
    )
    steps = escalator.due(clock.now_ms)
    assert [s.receivers for s in steps] == [("ops-mail",)]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"max_attempts": 0}, "channels.x.retry.max_attempts: expected 1-20, got 0"),
        ({"max_attempts": True}, "channels.x.retry.max_attempts: expected 1-20, got True"),
        ({"base_delay": "soon"}, "channels.x.retry.base_delay: expected a positive duration"),
        ({"base_delay": "1m", "max_delay": "1s"}, "channels.x.retry.max_delay: expected at least base_delay"),
        ({"multiplier": 0.5}, "channels.x.retry.multiplier: expected a number from 1 to 10"),
        ({"jitter": "none"}, "channels.x.retry.jitter: unknown key"),
    ],
)
def test_bad_retry_config_names_the_path(raw: dict[str, object], error: str) -> None:
    with pytest.raises(AlertConfigError, match="^" + error):
        RetryPolicy.parse(raw, "channels.x.retry")


def test_retry_config_parses_durations() -> None:
    policy = RetryPolicy.parse({"max_attempts": 3, "base_delay": "2s", "max_delay": "1m", "multiplier": 3}, "r")
    assert (policy.max_attempts, policy.base_delay_ms, policy.max_delay_ms, policy.multiplier) == (3, 2000, 60_000, 3.0)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"base_delay_ms": 10, "max_delay_ms": 5}, "retry.max_delay"),
        ({"multiplier": 0.1}, "retry.multiplier"),
    ],
)
def test_policy_built_in_code_is_checked_too(kw: dict[str, int | float], error: str) -> None:
    with pytest.raises(AlertConfigError, match=error):
        RetryPolicy(**kw)  # type: ignore[arg-type]
