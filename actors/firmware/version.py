"""Firmware versions of many vendors, parsed into keys that sort in release order.

Each scheme turns a version string into a tuple key; keys of one scheme compare in that
scheme's precedence. A :class:`Version` sorts by scheme name first, then key, so ordering is
total even across schemes (comparing across schemes is meaningless but never crashes a sort).

Schemes shipped (see :data:`DEFAULT_SCHEMES`):

- ``semver``: Semantic Versioning 2.0 (``1.4.3-rc.1+build.7``), precedence per spec §11:
  pre-releases sort before the release, identifiers compare numerically when numeric, ASCII
  otherwise, numeric below alphanumeric, a longer identifier list wins a tie; build metadata
  is ignored (kept in the text only).
- ``vbuild``: ``v2.3.1-b45``, a release plus a vendor build number compared numerically
  (semver would compare ``b9`` > ``b45`` as text, hence its own scheme).
- ``calver``: ``2023.04.1``, year.month.micro with a real month.
- ``underscore``: ``FW_1_2_10``.
- ``revision``: ``R12A``: a revision number and a letter suffix, ``R12`` < ``R12A`` < ``R12Z`` < ``R12AA``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pymonitor.actors.firmware.errors import VersionError

Key = tuple[object, ...]
Parser = Callable[[str], Key]

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_VBUILD = re.compile(r"v(\d+)\.(\d+)\.(\d+)-b(\d+)")
_CALVER = re.compile(r"(\d{4})\.(\d{2})\.(\d+)")
_UNDERSCORE = re.compile(r"FW_(\d+)_(\d+)_(\d+)")
_REVISION = re.compile(r"R(\d+)([A-Z]*)")


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Version:
    """A parsed version: equal and ordered by (scheme, key); ``text`` is what the device reported."""

    scheme: str
    key: Key
    text: str = field(compare=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class Scheme:
    """A named version scheme: a parser that returns a key or raises ``VersionError``."""

    name: str
    parse: Parser


def _match(pattern: re.Pattern[str], text: str, scheme: str) -> re.Match[str]:
    found = pattern.fullmatch(text)
    if found is None:
        raise VersionError(f"version {text!r}: not {scheme} (expected e.g. {_EXAMPLES[scheme]})")
    return found


def _pre_release_key(identifier: str, text: str) -> tuple[int, int, str]:
    if identifier.isdigit():
        if len(identifier) > 1 and identifier[0] == "0":
            raise VersionError(f"version {text!r}: semver pre-release identifier {identifier!r} has a leading zero")
        return (0, int(identifier), "")
    return (1, 0, identifier)


def parse_semver(text: str) -> Key:
    """Semver 2.0 precedence key: (major, minor, patch, (1,) for a release or (0, identifiers))."""
    found = _match(_SEMVER, text, "semver")
    core = (int(found[1]), int(found[2]), int(found[3]))
    if found[4] is None:
        return (*core, (1,))
    return (*core, (0, tuple(_pre_release_key(part, text) for part in found[4].split("."))))


def parse_vbuild(text: str) -> Key:
    found = _match(_VBUILD, text, "vbuild")
    return tuple(int(part) for part in found.groups())


def parse_calver(text: str) -> Key:
    found = _match(_CALVER, text, "calver")
    year, month, micro = (int(part) for part in found.groups())
    if not 1 <= month <= 12:
        raise VersionError(f"version {text!r}: calver month must be 01..12, got {found[2]}")
    return (year, month, micro)


def parse_underscore(text: str) -> Key:
    found = _match(_UNDERSCORE, text, "underscore")
    return tuple(int(part) for part in found.groups())


def parse_revision(text: str) -> Key:
    """``R12A``: number, then letters ordered by length then alphabet (``Z`` < ``AA``, like spreadsheet columns)."""
    found = _match(_REVISION, text, "revision")
    return (int(found[1]), len(found[2]), found[2])


_EXAMPLES = {
    "semver": "'1.4.3-rc.1+build.7'",
    "vbuild": "'v2.3.1-b45'",
    "calver": "'2023.04.1'",
    "underscore": "'FW_1_2_10'",
    "revision": "'R12A'",
}

DEFAULT_SCHEMES = (
    Scheme(name="vbuild", parse=parse_vbuild),
    Scheme(name="underscore", parse=parse_underscore),
    Scheme(name="revision", parse=parse_revision),
    Scheme(name="calver", parse=parse_calver),
    Scheme(name="semver", parse=parse_semver),
)


class SchemeRegistry:
    """Named schemes; ``parse`` uses the named one, or the first that accepts the text (registration order)."""

    def __init__(self, schemes: Iterable[Scheme] = DEFAULT_SCHEMES) -> None:
        self._schemes: dict[str, Scheme] = {}
        for scheme in schemes:
            self.register(scheme)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._schemes)

    def register(self, scheme: Scheme) -> None:
        if scheme.name in self._schemes:
            raise VersionError(f"scheme {scheme.name!r}: already registered")
        self._schemes[scheme.name] = scheme

    def parse(self, text: str, scheme: str | None = None) -> Version:
        """The version of ``text`` under ``scheme`` (or the first scheme that accepts it); ``VersionError`` if none."""
        if scheme is not None:
            if scheme not in self._schemes:
                raise VersionError(f"version {text!r}: unknown scheme {scheme!r} (known: {', '.join(self.names)})")
            return Version(scheme=scheme, key=self._schemes[scheme].parse(text), text=text)
        for candidate in self._schemes.values():
            try:
                return Version(scheme=candidate.name, key=candidate.parse(text), text=text)
            except VersionError:
                continue
        raise VersionError(f"version {text!r}: no scheme matches (tried {', '.join(self.names)})")


DEFAULT_REGISTRY = SchemeRegistry()


def parse_version(text: str, scheme: str | None = None) -> Version:
    """Parse with the default registry."""
    return DEFAULT_REGISTRY.parse(text, scheme)
