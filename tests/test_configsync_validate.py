"""The one validator of config documents (hub before sending, node before applying)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymonitor.actors.configsync import ConfigValidationError
from pymonitor.actors.configsync.validate import validate, validate_change
from pymonitor.deploy.config import NodeConfig

GOOD = {"node": {"name": "gw-1"}, "broker": {"url": "mqtt://hub.example:1883"}, "hub": {"raw_days": 3.0}}


def _refusal(doc):
    with pytest.raises(ConfigValidationError) as info:
        validate(doc)
    return info.value.field, info.value.reason


def test_valid_document_gives_the_typed_node_config():
    config = validate(GOOD)
    assert isinstance(config, NodeConfig)
    assert config.node.name == "gw-1" and config.hub is not None and config.hub.raw_days == 3.0


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({**GOOD, "brokr": {}}, "brokr", "unknown key 'brokr'"),
        ({**GOOD, "hub": {"rawdays": 1.0}}, "hub.rawdays", "unknown key 'rawdays'"),
        ({**GOOD, "hub": {"raw_days": -1.0}}, "hub.raw_days", "expected float >= 0.0"),
        ({**GOOD, "hub": {"flush_interval_ms": "fast"}}, "hub.flush_interval_ms", "expected int, got str"),
        ({**GOOD, "hub": 3}, "hub", "expected object | null, got int"),
        ({"broker": {}}, "node", "missing required key 'node'"),
        ({**GOOD, "simulator": {"compression": "lz4"}}, "simulator.compression", "expected one of none, zstd, zlib"),
        ({**GOOD, "simulator": {"devices": 2, "gateways": 3}}, "simulator.gateways", "more gateways than devices"),
    ],
)
def test_invalid_values_unknown_keys_and_type_errors_name_the_field(doc, field, reason):
    got_field, got_reason = _refusal(doc)
    assert got_field == field
    assert got_reason.startswith(reason)


@pytest.mark.parametrize("url", ["mqtt://", "http://hub:80", "mqtt://hub:notaport", ""])
def test_broker_url_that_does_not_parse_is_refused(url):
    field, reason = _refusal({**GOOD, "broker": {"url": url}})
    assert field == "broker.url"
    assert "broker URL" in reason


def test_empty_node_name_is_refused_as_unreachable():
    assert _refusal({**GOOD, "node": {"name": ""}}) == (
        "node.name",
        "empty: the node would have no topic and be unreachable",
    )


def test_node_name_that_is_not_a_topic_name_is_refused():
    field, reason = _refusal({**GOOD, "node": {"name": "gw 1/#"}})
    assert field == "node.name" and "regex" in reason


def test_document_that_is_not_a_table_is_refused():
    assert _refusal([1, 2]) == ("", "expected a table of sections, got list")  # type: ignore[arg-type]


def test_error_text_names_field_and_reason():
    with pytest.raises(ConfigValidationError, match=r"^hub.raw_days: expected float >= 0.0"):
        validate({**GOOD, "hub": {"raw_days": -1.0}})


def test_remote_rename_of_the_node_is_refused():
    with pytest.raises(ConfigValidationError, match="renaming 'gw-1' to 'gw-2' remotely would make the node"):
        validate_change(GOOD, {**GOOD, "node": {"name": "gw-2"}})


def test_change_keeping_the_name_or_from_an_empty_doc_is_accepted():
    assert validate_change(GOOD, {**GOOD, "hub": {"raw_days": 1.0}}).node.name == "gw-1"
    assert validate_change({}, GOOD).node.name == "gw-1"


@given(
    st.dictionaries(
        st.sampled_from(["node", "broker", "hub", "clock", "simulator", "x"]),
        st.dictionaries(
            st.sampled_from(["name", "url", "raw_days", "speed", "devices", "y"]),
            st.none() | st.integers() | st.floats() | st.text(max_size=8) | st.booleans(),
            max_size=3,
        )
        | st.integers(),
        max_size=4,
    )
)
def test_any_document_is_accepted_or_refused_with_a_config_validation_error(doc):
    try:
        validate(doc)
    except ConfigValidationError as exc:
        assert exc.reason


def test_config_error_text_without_a_location_is_kept_whole():
    from pymonitor.actors.configsync.validate import _field

    assert _field("something else went wrong") == ("", "something else went wrong")
