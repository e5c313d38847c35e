"""Version comparison across schemes: semver 2.0 precedence, vendor schemes, registry, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.firmware import DEFAULT_REGISTRY, Scheme, SchemeRegistry, VersionError, parse_version

# Semver spec §11 example, in precedence order.
SEMVER_SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "10.0.0",
]


def test_semver_precedence_follows_the_spec_example() -> None:
    parsed = [parse_version(v, "semver") for v in SEMVER_SPEC_ORDER]
    shuffled = parsed[5:] + parsed[:5]
    assert sorted(shuffled) == parsed
    assert all(a < b for a, b in zip(parsed, parsed[1:], strict=False))


def test_semver_build_metadata_is_ignored_for_precedence_but_kept_in_text() -> None:
    a, b = parse_version("1.2.3+build.7", "semver"), parse_version("1.2.3+other", "semver")
    assert a == b
    assert str(a) == "1.2.3+build.7"
    assert parse_version("1.2.3-rc.1+x", "semver") < parse_version("1.2.3", "semver")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("01.2.3", "not semver"),
        ("1.2", "not semver"),
        ("1.2.3-", "not semver"),
        ("1.2.3-01", "leading zero"),
        ("1.2.3-alpha..1", "not semver"),
    ],
)
def test_semver_rejects_invalid_versions_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(VersionError, match=reason):
        parse_version(text, "semver")


def test_vendor_build_numbers_compare_numerically() -> None:
    assert parse_version("v2.3.1-b9") < parse_version("v2.3.1-b45") < parse_version("v2.3.2-b1")
    assert parse_version("v2.3.1-b45").scheme == "vbuild"


def test_calver_orders_by_date_and_rejects_month_13() -> None:
    assert parse_version("2023.04.1") < parse_version("2023.10.0") < parse_version("2024.01.0")
    with pytest.raises(VersionError, match="month must be 01..12"):
        parse_version("2023.13.1", "calver")


def test_underscore_scheme_compares_fields_numerically() -> None:
    assert parse_version("FW_1_2_9") < parse_version("FW_1_2_10")


def test_revision_letters_sort_like_spreadsheet_columns() -> None:
    order = ["R12", "R12A", "R12B", "R12Z", "R12AA", "R13"]
    parsed = [parse_version(v) for v in order]
    assert all(a < b for a, b in zip(parsed, parsed[1:], strict=False))
    assert {p.scheme for p in parsed} == {"revision"}


def test_unparseable_version_names_the_schemes_tried() -> None:
    with pytest.raises(VersionError, match=r"'banana': no scheme matches \(tried vbuild, underscore"):
        parse_version("banana")


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(VersionError, match="unknown scheme 'nope'"):
        parse_version("1.0.0", "nope")


def test_explicit_scheme_rejects_other_formats() -> None:
    with pytest.raises(VersionError, match=r"not vbuild \(expected e.g. 'v2.3.1-b45'\)"):
        parse_version("1.0.0", "vbuild")


def test_registry_accepts_custom_schemes_and_refuses_duplicates() -> None:
    registry = SchemeRegistry(())
    registry.register(Scheme(name="build", parse=lambda text: (int(text.removeprefix("build")),)))
    assert registry.names == ("build",)
    assert registry.parse("build9") < registry.parse("build10")
    with pytest.raises(VersionError, match="already registered"):
        registry.register(Scheme(name="build", parse=lambda text: ()))


def test_versions_of_different_schemes_sort_by_scheme_without_crashing() -> None:
    mixed = [parse_version(v) for v in ["R3", "1.0.0", "FW_1_0_0", "v1.0.0-b1", "2023.01.1"]]
    assert [v.scheme for v in sorted(mixed)] == ["calver", "revision", "semver", "underscore", "vbuild"]


_ident = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.from_regex(r"[A-Za-z-][0-9A-Za-z-]{0,5}", fullmatch=True),
)
_semver = st.builds(
    lambda core, pre, build: (
        ".".join(map(str, core)) + (f"-{'.'.join(pre)}" if pre else "") + (f"+{'.'.join(build)}" if build else "")
    ),
    st.tuples(*[st.integers(min_value=0, max_value=50)] * 3),
    st.lists(_ident, max_size=3),
    st.lists(st.from_regex(r"[0-9A-Za-z-]{1,4}", fullmatch=True), max_size=2),
)
_any_version = st.one_of(
    _semver,
    st.from_regex(r"v[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}-b[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"20[0-9]{2}\.(0[1-9]|1[0-2])\.[0-9]{1,2}", fullmatch=True),
    st.from_regex(r"FW_[0-9]{1,3}_[0-9]{1,3}_[0-9]{1,3}", fullmatch=True),
    st.from_regex(r"R[0-9]{1,3}[A-Z]{0,2}", fullmatch=True),
)


@given(st.lists(_any_version, min_size=3, max_size=3))
def test_ordering_is_total_antisymmetric_and_transitive(texts: list[str]) -> None:
    a, b, c = (DEFAULT_REGISTRY.parse(t) for t in texts)
    assert (a < b) + (a == b) + (a > b) == 1
    assert (a <= b and b <= a) == (a == b)
    if a <= b and b <= c:
        assert a <= c


@given(_semver)
def test_every_generated_semver_parses_and_equals_itself_without_build(text: str) -> None:
    version = parse_version(text, "semver")
    assert version == parse_version(text.split("+")[0], "semver")
    assert version.text == text


@given(st.text(max_size=20))
def test_arbitrary_text_parses_or_raises_version_error(text: str) -> None:
    try:
        parse_version(text)
    except VersionError as exc:
        assert repr(text) in str(exc)
