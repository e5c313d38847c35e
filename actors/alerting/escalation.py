"""Escalation chains: who is told next when nobody acknowledges, or when a channel fails.

A chain is a list of levels (receivers and how long they have to acknowledge). An unacknowledged
alert moves down the levels; after the last one it runs the chain again ``repeat`` more times, then
continues in the chain named by ``then`` (if any), then stops: escalation is bounded, so a
forgotten alert cannot page forever. ``then`` links may not loop back (a -> b -> a): that would
page forever, and the config is refused naming the cycle. A failed delivery does not wait for the
ack timeout: the level's ``fallback`` receivers are told at once, or, when there are none (or they
failed too), the next level is. Chains can differ in and out of business hours: the hours at
``start`` pick the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chains import EscalationChain, EscalationLevel, EscalationPolicy, chain_named
from .schedule import BusinessHours

EXHAUSTED = "exhausted"
"""The reason of the last step of an escalation nobody acknowledged; it has no receivers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationStep:
    """Tell ``receivers`` about the alert ``fingerprint`` now; ``reason`` says why this step happens."""

    fingerprint: str
    chain: str
    level: int  # index in the chain's levels
    loop: int  # 0 on the first run of the chain, 1 on the first repeat...
    receivers: tuple[str, ...]  # empty on the final EXHAUSTED step
    at_ms: int
    reason: str


@dataclass(slots=True, kw_only=True)
class _Run:
    fingerprint: str
    chain: EscalationChain
    level: int
    loop: int
    deadline_ms: int
    fallback_sent: bool = False

    @property
    def current(self) -> EscalationLevel:
        return self.chain.levels[self.level]

    def step(self, at_ms: int, reason: str, receivers: tuple[str, ...] | None = None) -> EscalationStep:
        return EscalationStep(
            fingerprint=self.fingerprint,
            chain=self.chain.name,
            level=self.level,
            loop=self.loop,
            receivers=self.current.receivers if receivers is None else receivers,
            at_ms=at_ms,
            reason=reason,
        )


class Escalator:
    """Escalations in progress, one per alert fingerprint; ``due(now_ms)`` says who to tell now."""

    def __init__(self, policy: EscalationPolicy, hours: BusinessHours | None = None) -> None:
        self._policy = policy
        self._hours = hours
        self._runs: dict[str, _Run] = {}
        self._pending: list[EscalationStep] = []

    @property
    def active(self) -> int:
        return len(self._runs)

    def level_of(self, fingerprint: str) -> tuple[str, int, int] | None:
        """(chain, level, loop) of a running escalation, None when there is none."""
        run = self._runs.get(fingerprint)
        return None if run is None else (run.chain.name, run.level, run.loop)

    def start(self, fingerprint: str, now_ms: int, *, chain: str | None = None) -> bool:
        """Begin escalating (level 0 is told at the next ``due``); False if it already escalates."""
        if fingerprint in self._runs:
            return False
        if chain is None:
            open_now = self._hours is None or self._hours.in_hours(now_ms)
            chain = self._policy.in_hours if open_now else self._policy.off_hours
        first = self._policy.chains[chain_named(chain, "escalation", self._policy.chains)]
        run = _Run(fingerprint=fingerprint, chain=first, level=0, loop=0, deadline_ms=now_ms)
        run.deadline_ms = now_ms + run.current.ack_timeout_ms
        self._runs[fingerprint] = run
        self._pending.append(run.step(now_ms, "start"))
        return True

    def ack(self, fingerprint: str, by: str, now_ms: int) -> bool:
        """Someone (``by``) took it: stop escalating. False if nothing was escalating."""
        return self.stop(fingerprint)

    def stop(self, fingerprint: str) -> bool:
        """Stop without an ack (the alert resolved)."""
        self._pending = [s for s in self._pending if s.fingerprint != fingerprint]
        return self._runs.pop(fingerprint, None) is not None

    def delivery_failed(self, fingerprint: str, channel: str, now_ms: int) -> bool:
        """Delivery to ``channel`` (a receiver of the current level) failed: fall back or escalate now.

        False when there is no escalation or ``channel`` is not the current level's (a late report
        about a level already escalated past changes nothing).
        """
        run = self._runs.get(fingerprint)
        if run is None or (channel not in run.current.receivers and channel not in run.current.fallback):
            return False
        if run.current.fallback and not run.fallback_sent and channel not in run.current.fallback:
            run.fallback_sent = True
            run.deadline_ms = now_ms + run.current.ack_timeout_ms
            self._pending.append(run.step(now_ms, f"delivery to {channel} failed: fallback", run.current.fallback))
            return True
        self._advance(run, now_ms, f"delivery to {channel} failed")
        return True

    def next_due_ms(self) -> int | None:
        if self._pending:
            return min(s.at_ms for s in self._pending)
        return min((r.deadline_ms for r in self._runs.values()), default=None)

    def due(self, now_ms: int) -> list[EscalationStep]:
        """Steps to carry out now, in time order: starts, fallbacks, and ack timeouts that ran out."""
        out = [s for s in self._pending if s.at_ms <= now_ms]
        self._pending = [s for s in self._pending if s.at_ms > now_ms]
        for run in list(self._runs.values()):
            while run.fingerprint in self._runs and run.deadline_ms <= now_ms:
                self._advance(run, run.deadline_ms, "ack timeout")
        out += [s for s in self._pending if s.at_ms <= now_ms]
        self._pending = [s for s in self._pending if s.at_ms > now_ms]
        return sorted(out, key=lambda s: s.at_ms)

    def _advance(self, run: _Run, at_ms: int, reason: str) -> None:
        run.fallback_sent = False
        run.level += 1
        if run.level == len(run.chain.levels):
            run.level = 0
            if run.loop < run.chain.repeat:
                run.loop += 1
                reason += f": repeat {run.loop} of {run.chain.repeat}"
            elif run.chain.then is not None:
                run.chain, run.loop = self._policy.chains[run.chain.then], 0
                reason += f": then chain {run.chain.name!r}"
            else:
                del self._runs[run.fingerprint]
                self._pending.append(
                    EscalationStep(
                        fingerprint=run.fingerprint,
                        chain=run.chain.name,
                        level=len(run.chain.levels) - 1,
                        loop=run.loop,
                        receivers=(),
                        at_ms=at_ms,
                        reason=EXHAUSTED,
                    )
                )
                return
        run.deadline_ms = at_ms + run.current.ack_timeout_ms
        self._pending.append(run.step(at_ms, reason))
