"""SMS text that fits: GSM 03.38 encoding and segment counts, transliteration, storm summaries, rate limits.

A single character outside GSM 03.38 (a curly quote pasted into a rule summary, "°C") switches a
whole message to UCS-2 and cuts a segment from 160 to 70 characters, so every text we send goes
through :func:`transliterate` first. Segment counts follow the carriers: 160 septets in one GSM-7
message, 153 per part of a concatenated one (the rest is the UDH), escape-table characters take
two septets and are never split from their escape; UCS-2 takes 70 UTF-16 code units, 67 per part,
and a surrogate pair (an emoji) is never split either.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Literal

from .alert import Alert
from .errors import AlertConfigError

Encoding = Literal["GSM-7", "UCS-2"]

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, less the escape code itself."""
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Reached through the escape code, so each takes two septets."""
GSM = GSM_BASIC | GSM_EXTENSION

GSM_SINGLE_SEPTETS = 160
GSM_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67
ELLIPSIS = "..."

_REPLACEMENTS = {
    **dict.fromkeys("“”„‟«»″", '"'),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2039\u203a\u2032`\u00b4", "'"),  # curly, angle quotes, prime
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),  # hyphens, en and em dashes, minus sign
    **dict.fromkeys("\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " "),
    **dict.fromkeys("\u202f\u205f\u3000", " "),
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
    "…": "...",
    "°": " deg",
    "•": "*",
    "·": ".",
    "\u00d7": "x",
    "÷": "/",
    "\u2044": "/",
    "±": "+/-",
    "µ": "u",
    "μ": "u",
    "©": "(c)",
    "®": "(R)",
    "←": "<-",
    "→": "->",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "Th",
    "œ": "oe",
    "Œ": "OE",
    "\u0131": "i",
    "ħ": "h",
    "Ħ": "H",
    "ŧ": "t",
    "Ŧ": "T",
}
_UNIT_SUFFIXES = {"°C": "C", "°F": "F"}
_SEVERITY_TAG = {"info": "INFO", "warning": "WARN", "critical": "CRIT", "emergency": "EMERG"}


def encoding(text: str) -> Encoding:
    """GSM-7 when every character is in GSM 03.38 (basic or extension table), else UCS-2."""
    return "GSM-7" if GSM.issuperset(text) else "UCS-2"


def _widths(text: str) -> Iterator[int]:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) per character, in the text's own encoding."""
    if encoding(text) == "GSM-7":
        return (2 if char in GSM_EXTENSION else 1 for char in text)
    return (2 if ord(char) > 0xFFFF else 1 for char in text)


def segments(text: str) -> int:
    """How many SMS parts the text takes; an empty text still is one message."""
    gsm = encoding(text) == "GSM-7"
    single, part = (GSM_SINGLE_SEPTETS, GSM_PART_SEPTETS) if gsm else (UCS2_SINGLE_UNITS, UCS2_PART_UNITS)
    widths = list(_widths(text))
    if sum(widths) <= single:
        return 1
    count, used = 1, 0
    for width in widths:
        if used + width > part:  # a two-unit character never straddles parts
            count, used = count + 1, 0
        used += width
    return count


@lru_cache(maxsize=4096)
def _to_gsm(char: str) -> str:
    if char in GSM:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    if unicodedata.category(char) == "Cc":
        return ""
    out = ""
    for part in unicodedata.normalize("NFKD", char):
        if part in GSM:
            out += part
        elif part in _REPLACEMENTS:
            out += _REPLACEMENTS[part]
        elif not unicodedata.combining(part):
            return "?"
    return out


def transliterate(text: str) -> str:
    """The text in GSM-7: GSM letters (é, ø, ß, Ä...) kept, other accents stripped, quotes and dashes
    made plain, anything else unknown becomes "?"; so one stray character cannot force UCS-2."""
    text = unicodedata.normalize("NFC", text)
    for unit, short in _UNIT_SUFFIXES.items():
        text = text.replace(unit, short)
    return "".join(map(_to_gsm, text))


def _budget(max_segments: int) -> int:
    if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1:
        raise AlertConfigError(f"max_segments: expected a whole number >= 1, got {max_segments!r}")
    return max_segments


def fit(text: str, max_segments: int = 1) -> str:
    """The text, cut and ended with "..." if it needs more than ``max_segments`` parts.

    The encoding is kept: transliterate first to get GSM-7's larger parts.
    """
    budget = _budget(max_segments)
    if segments(text) <= budget:
        return text
    low, high = 0, len(text)  # the longest prefix that fits with the ellipsis is in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if segments(text[:middle] + ELLIPSIS) <= budget:
            low = middle
        else:
            high = middle
    return text[:low].rstrip() + ELLIPSIS


def _septets(text: str) -> int:
    return sum(_widths(text))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _name(alert: Alert) -> str:
    return alert.rule.replace("_", " ")


def _storm_texts(alerts: Sequence[Alert]) -> Iterator[str]:
    """Ever shorter summaries of the same storm; each names the total and (but the last) every site."""
    counts = Counter(_name(alert) for alert in alerts)
    site_counts = Counter(alert.labels.get("site", "no site") for alert in alerts)
    group_sites: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for alert in alerts:
        group_sites[_name(alert)][alert.labels.get("site", "no site")] += 1
    groups = sorted(counts, key=lambda name: (-counts[name], name))
    sites = sorted(site_counts, key=lambda site: (-site_counts[site], site))
    head = f"{_plural(len(alerts), 'alert')} at {_plural(len(sites), 'site')}"

    def ranked(counter: Counter[str]) -> str:
        return ", ".join(sorted(counter, key=lambda site: (-counter[site], site)))

    yield f"{head}: " + ", ".join(f"{counts[name]}x {name} ({ranked(group_sites[name])})" for name in groups)
    for shown in _site_lists(sites):
        for kept in range(len(groups), -1, -1):
            parts = [f"{counts[name]}x {name}" for name in groups[:kept]]
            other = sum(counts[name] for name in groups[kept:])
            parts += [f"{other}x other"] if other else []
            yield f"{head} ({shown})" + (f": {', '.join(parts)}" if parts else "")
    yield head


def _site_lists(sites: list[str]) -> Iterator[str]:
    """Every site, ever shorter: in full, then a shared leading word said once ("Site 4/0/1"), then cut."""
    yield ", ".join(sites)
    first, last = min(sites), max(sites)  # their common prefix is everyone's
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first))
    shared = first[: first.rfind(" ", 0, size) + 1]
    tails = [site[len(shared) :] for site in sites]
    yield shared + "/".join(tails)
    for width in (8, 5, 3, 2, 1):
        yield shared + "/".join(tail[:width] for tail in tails)


def summarize_storm(alerts: Sequence[Alert], max_chars: int = GSM_SINGLE_SEPTETS) -> str:
    """One GSM-7 text for many alerts: "14 alerts at 3 sites: 9x battery low (Site A, Site B), ...".

    Groups by rule, most frequent first; shortens (sites out of the groups, fewer groups, shorter
    site names) until it fits ``max_chars`` septets, and cuts with "..." only if even the bare
    count does not fit.
    """
    text = ""
    for text in map(transliterate, _storm_texts(alerts) if alerts else ["0 alerts"]):
        if _septets(text) <= max_chars:
            return text
    while text and _septets(text + ELLIPSIS) > max_chars:
        text = text[:-1]
    return text + ELLIPSIS


def alert_line(alert: Alert) -> str:
    """One alert as an SMS line in GSM-7: "CRIT temp high: 95 on gw1/t1 temp_c (above 90)"."""
    tag = _SEVERITY_TAG[alert.severity] if alert.state == "firing" else "OK"
    return transliterate(f"{tag} {alert.summary}")


def batch(alerts: Sequence[Alert], max_segments: int = 1) -> list[str]:
    """Alerts packed into as few messages of at most ``max_segments`` parts as keep them whole, in order."""
    budget = _budget(max_segments)
    messages: list[str] = []
    for line in (fit(alert_line(alert), budget) for alert in alerts):
        if messages and segments(f"{messages[-1]}\n{line}") <= budget:
            messages[-1] = f"{messages[-1]}\n{line}"
        else:
            messages.append(line)
    return messages


class SmsRateLimiter:
    """A token bucket per recipient: ``burst`` messages at once, then ``per_hour`` on average."""

    def __init__(self, per_hour: float, burst: int) -> None:
        if isinstance(per_hour, bool) or not isinstance(per_hour, int | float) or not per_hour > 0:
            raise AlertConfigError(f"per_hour: expected a positive number, got {per_hour!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise AlertConfigError(f"burst: expected a whole number >= 1, got {burst!r}")
        self.per_hour = float(per_hour)
        self.burst = burst
        self.refused = 0
        self.refused_by: Counter[str] = Counter()
        self._buckets: dict[str, tuple[float, int]] = {}  # recipient -> (tokens, at ms)

    def allow(self, recipient: str, now_ms: int) -> bool:
        """Take a token for ``recipient`` if one is left; count the refusal if not."""
        tokens, at_ms = self._buckets.get(recipient, (float(self.burst), now_ms))
        tokens = min(float(self.burst), tokens + max(0, now_ms - at_ms) * self.per_hour / 3_600_000)
        at_ms = max(now_ms, at_ms)  # a clock that steps back refills nothing twice
        if tokens >= 1.0:
            self._buckets[recipient] = (tokens - 1.0, at_ms)
            return True
        self._buckets[recipient] = (tokens, at_ms)
        self.refused += 1
        self.refused_by[recipient] += 1
        return False
