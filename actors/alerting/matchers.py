"""Label matchers as Alertmanager writes them: ``site="berlin"``, ``severity=~"crit.*"``, ``env!="test"``.

Regexes are anchored (``=~"crit"`` does not match ``"critical"``), and a missing label matches as
the empty string, so ``team!="ops"`` matches alerts with no team: the Alertmanager semantics that
operators already know. Matchers see an alert's labels plus ``rule`` and ``severity``
(``alert_labels``), so a route can say ``severity="critical"`` as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .alert import Alert
from .fields import fail, items, text

Op = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


@dataclass(frozen=True, slots=True, kw_only=True)
class Matcher:
    """One condition on one label."""

    label: str
    op: Op
    value: str
    pattern: re.Pattern[str] | None = None  # compiled, anchored, for =~ and !~

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.label, "")
        if self.pattern is None:
            return (got == self.value) == (self.op == "=")
        return (self.pattern.fullmatch(got) is not None) == (self.op == "=~")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def parse_matcher(raw: object, where: str) -> Matcher:
    """``label<op>"value"``; a bad regex is refused here, with its reason, not at the first alert."""
    source = text(raw, where)
    found = _MATCHER.match(source)
    if found is None:
        raise fail(where, f'expected label="value" (or !=, =~, !~), got {source!r}')
    label, op, value = found.group(1), found.group(2), found.group(3).replace('\\"', '"')
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise fail(where, f"bad regex {value!r}: {exc}") from None
    return Matcher(label=label, op=op, value=value, pattern=pattern)  # type: ignore[arg-type]


def parse_matchers(raw: object, where: str) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(item, f"{where}[{i}]") for i, item in enumerate(items(raw, where)))


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def alert_labels(alert: Alert) -> dict[str, str]:
    """What matchers and ``group_by`` see: ``rule`` and ``severity``, then the alert's own labels (which win)."""
    return {"rule": alert.rule, "severity": alert.severity, **alert.labels}
