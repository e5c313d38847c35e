"""Advisory files: TOML and JSON, ranges, and errors that name the entry and field."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.firmware import AdvisoryError, VersionError, load_advisories, parse_advisories, parse_range
from pymonitor.actors.firmware.advisories import vulnerable
from pymonitor.actors.firmware.version import parse_version

GOOD_TOML = """
[[advisory]]
id = "PMSA-1"
model = "TH-200"
affected = ">=1.2.0,<1.4.3"
severity = "high"
fixed = "1.4.3"

[[advisory]]
id = "PMSA-2"
model = "GW-9"
scheme = "vbuild"
affected = ["<v2.0.0-b1", "==v2.3.1-b45"]
"""


def test_toml_advisories_mark_versions_inside_the_range_vulnerable() -> None:
    advisories = parse_advisories(GOOD_TOML)
    assert [a.id for a in advisories] == ["PMSA-1", "PMSA-2"]
    assert advisories[0].severity == "high" and advisories[1].severity == "medium"
    assert advisories[0].fixed == parse_version("1.4.3")
    inside, edge, outside = parse_version("1.3.9"), parse_version("1.4.3"), parse_version("1.1.9")
    assert [a.id for a in vulnerable(advisories, "TH-200", inside)] == ["PMSA-1"]
    assert vulnerable(advisories, "TH-200", edge) == ()
    assert vulnerable(advisories, "TH-200", outside) == ()
    assert vulnerable(advisories, "GW-9", inside) == ()  # other model
    assert vulnerable(advisories, "GW-9", parse_version("v2.3.1-b45"))[0].id == "PMSA-2"
    assert vulnerable(advisories, "GW-9", parse_version("v1.9.0-b3"))[0].id == "PMSA-2"
    assert vulnerable(advisories, "GW-9", parse_version("v2.3.1-b46")) == ()


def test_json_files_load_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "adv.json"
    path.write_bytes(orjson.dumps({"advisory": [{"id": "A", "model": "M", "affected": "!=R3,>R1"}]}))
    (advisory,) = load_advisories(path)
    assert advisory.affects("M", parse_version("R2"))
    assert not advisory.affects("M", parse_version("R3"))
    toml_path = tmp_path / "adv.toml"
    toml_path.write_text(GOOD_TOML)
    assert len(load_advisories(toml_path)) == 2


def test_range_never_admits_a_version_of_another_scheme() -> None:
    assert parse_version("FW_1_0_0") not in parse_range(">=1.0.0")
    assert parse_version("1.0.0") in parse_range("<=1.0.0, >=0.9.0")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[[advisory]]\nmodel = 'M'\naffected = '<1.0.0'", r"advisory\[0\]\.id: missing"),
        ("[[advisory]]\nid = 'X'\naffected = '<1.0.0'", r"advisory\[0\] \(X\)\.model: missing"),
        ("[[advisory]]\nid = 'X'\nmodel = 3\naffected = '<1.0.0'", r"\(X\)\.model: expected a string, got int 3"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'", r"\(X\)\.affected: missing"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'\naffected = []", r"\(X\)\.affected: expected a range string"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'\naffected = [1]", r"\(X\)\.affected: expected a range string"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'\naffected = '~1.0'", r"\(X\)\.affected/fixed: range '~1.0'"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'\naffected = '<1.0.0'\nfixed = 'x'", r"\(X\)\.affected/fixed: version"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'\naffected = '<1'\nseverity = 'meh'", r"\(X\)\.severity: expected one of"),
        ("[[advisory]]\nid = 'X'\nmodel = 'M'\naffected = '<1.0.0'\nscheme = 'zz'", "unknown scheme 'zz'"),
        ("advisory = 3", "expected a list 'advisory'"),
        ("advisory = [3]", r"advisory\[0\]: expected a table, got int"),
        ("[[advisory", "not valid toml"),
        (
            "[[advisory]]\nid='A'\nmodel='M'\naffected='<1.0.0'\n[[advisory]]\nid='A'\nmodel='M'\naffected='<1.0.0'",
            r"advisory\[1\]\.id: duplicate id 'A'",
        ),
    ],
)
def test_malformed_toml_names_entry_and_field(document: str, message: str) -> None:
    with pytest.raises(AdvisoryError, match=message):
        parse_advisories(document)


def test_malformed_json_and_unknown_format_are_clear_errors() -> None:
    with pytest.raises(AdvisoryError, match="not valid json"):
        parse_advisories("{", fmt="json")
    with pytest.raises(AdvisoryError, match="expected a list 'advisory'"):
        parse_advisories("[]", fmt="json")
    with pytest.raises(AdvisoryError, match="format must be 'toml' or 'json'"):
        parse_advisories("", fmt="yaml")


def test_bad_range_is_a_version_error() -> None:
    with pytest.raises(VersionError, match="constraint '' is not <op><version>"):
        parse_range(">=1.0.0,")


@given(st.text(max_size=60))
def test_arbitrary_documents_parse_or_raise_advisory_error(text: str) -> None:
    try:
        parse_advisories(text)
    except AdvisoryError:
        pass
