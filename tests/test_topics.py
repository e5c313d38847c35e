"""MQTT topics (the only place they are built or parsed) and broker URLs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymonitor.broker import topics
from pymonitor.broker.topics import NAME_PATTERN, ROOT, UP_KINDS, Topic, TopicError
from pymonitor.broker.url import DEFAULT_PORT, DEFAULT_TLS_PORT, BrokerAddress, BrokerUrlError, parse_broker_url

BAD_NAMES = ["", "+", "#", "/", " ", "a b", "a/b", "a+", "a#", "x" * 65, "-lead", "_lead", ".lead", "é", "a\tb"]

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}", fullmatch=True)


# ---------------------------------------------------------------- builders and parse


@pytest.mark.parametrize("kind", UP_KINDS)
def test_up_topic_round_trips_through_parse(kind: str) -> None:
    topic = topics.up("field", "gw-3", kind)
    assert topic == f"pm/v1/field/gw-3/up/{kind}"
    assert topics.parse(topic) == Topic("field", "gw-3", "up", kind)


def test_state_topic_round_trips_through_parse() -> None:
    assert topics.state("field", "gw-3") == "pm/v1/field/gw-3/state"
    assert topics.parse(topics.state("field", "gw-3")) == Topic("field", "gw-3", "state", "state")


def test_command_topic_round_trips_through_parse() -> None:
    topic = topics.command("field", "gw-3", "set-interval")
    assert topic == "pm/v1/field/gw-3/down/cmd/set-interval"
    assert topics.parse(topic) == Topic("field", "gw-3", "down", "cmd", "set-interval")


def test_config_and_delivery_ack_topics_round_trip_through_parse() -> None:
    assert topics.config("f", "n") == "pm/v1/f/n/down/config"
    assert topics.parse(topics.config("f", "n")) == Topic("f", "n", "down", "config")
    assert topics.delivery_ack("f", "n") == "pm/v1/f/n/down/ack"
    assert topics.parse(topics.delivery_ack("f", "n")) == Topic("f", "n", "down", "ack")


def test_up_ack_and_down_ack_are_told_apart() -> None:
    assert topics.parse(topics.up("f", "n", "ack")).direction == "up"
    assert topics.parse(topics.delivery_ack("f", "n")).direction == "down"


def test_node_inbox_is_a_filter_for_everything_sent_down() -> None:
    assert topics.node_inbox("f", "n") == "pm/v1/f/n/down/#"
    with pytest.raises(TopicError):
        topics.parse(topics.node_inbox("f", "n"))


def test_unknown_up_kind_is_refused_by_the_builder() -> None:
    with pytest.raises(TopicError, match="unknown up kind 'cmd'"):
        topics.up("f", "n", "cmd")


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize(
    ("what", "build"),
    [
        ("fleet", lambda name: topics.up(name, "n", "readings")),
        ("node", lambda name: topics.up("f", name, "readings")),
        ("fleet", lambda name: topics.state(name, "n")),
        ("node", lambda name: topics.config("f", name)),
        ("node", lambda name: topics.delivery_ack("f", name)),
        ("node", lambda name: topics.node_inbox("f", name)),
        ("command", lambda name: topics.command("f", "n", name)),
        ("fleet", lambda name: topics.fleet_filter(name, "readings")),
        ("share group", lambda name: topics.fleet_filter("f", "readings", share_group=name)),
    ],
)
def test_invalid_name_is_refused_naming_the_part(what: str, build: object, bad: str) -> None:
    with pytest.raises(TopicError) as info:
        build(bad)  # type: ignore[operator]
    assert f"{what} name {bad!r} is invalid" in str(info.value)


def test_longest_valid_name_is_64_characters() -> None:
    name = "x" * 64
    assert topics.parse(topics.up(name, name, "events")) == Topic(name, name, "up", "events")


@pytest.mark.parametrize("not_a_str", [None, 7, b"node"])
def test_name_that_is_not_a_str_is_refused(not_a_str: object) -> None:
    with pytest.raises(TopicError, match="node name"):
        topics.state("f", not_a_str)  # type: ignore[arg-type]


def test_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(TopicError):
        topics.state("f", "node\n")


@pytest.mark.parametrize(
    "topic",
    ["", "pm", "pm/v1", "pm/v1/f/n", "pm/v2/f/n/state", "xx/v1/f/n/state", "PM/v1/f/n/state", "/pm/v1/f/n/state",
     "v1/pm/f/n/state"],
)  # fmt: skip
def test_parse_refuses_foreign_roots(topic: str) -> None:
    with pytest.raises(TopicError, match=f"is not under {ROOT}/<fleet>/<node>/"):
        topics.parse(topic)


@pytest.mark.parametrize(
    "topic",
    ["pm/v1/f/n/up/unknown", "pm/v1/f/n/up", "pm/v1/f/n/down/cmd", "pm/v1/f/n/down/cmd/a/b", "pm/v1/f/n/down/readings",
     "pm/v1/f/n/up/readings/extra", "pm/v1/f/n/state/x", "pm/v1/f/n/sideways/readings", "pm/v1/f/n/up/",
     "pm/v1/f/n/down/#"],
)  # fmt: skip
def test_parse_refuses_unknown_kinds(topic: str) -> None:
    with pytest.raises(TopicError, match="unknown kind"):
        topics.parse(topic)


@pytest.mark.parametrize(
    ("topic", "what"),
    [("pm/v1/+/n/state", "fleet"), ("pm/v1/f/+/up/readings", "node"), ("pm/v1//n/state", "fleet"),
     ("pm/v1/f/n/down/cmd/+", "command"), ("pm/v1/f/n/down/cmd/", "command"), ("pm/v1/f/#/state", "node")],
)  # fmt: skip
def test_parse_refuses_wildcards_and_empty_levels_naming_the_part(topic: str, what: str) -> None:
    with pytest.raises(TopicError, match=f"{what} name"):
        topics.parse(topic)


def test_fleet_filter_matches_every_node_of_a_fleet() -> None:
    assert topics.fleet_filter("f", "readings") == "pm/v1/f/+/up/readings"
    assert topics.fleet_filter("f", "state") == "pm/v1/f/+/state"


def test_fleet_filter_with_share_group_is_a_shared_subscription() -> None:
    assert topics.fleet_filter("f", "readings", share_group="g") == "$share/g/pm/v1/f/+/up/readings"
    assert topics.fleet_filter("f", "state", share_group="hubs") == "$share/hubs/pm/v1/f/+/state"


@pytest.mark.parametrize("kind", ["cmd", "config", "", "#"])
def test_fleet_filter_refuses_unknown_kinds(kind: str) -> None:
    with pytest.raises(TopicError, match="unknown kind"):
        topics.fleet_filter("f", kind)


@given(names, names, names, st.sampled_from(UP_KINDS))
@settings(max_examples=200, deadline=None)
def test_any_valid_names_round_trip(fleet: str, node: str, command: str, kind: str) -> None:
    assert all(NAME_PATTERN.match(name) for name in (fleet, node, command))
    assert topics.parse(topics.up(fleet, node, kind)) == Topic(fleet, node, "up", kind)
    assert topics.parse(topics.state(fleet, node)) == Topic(fleet, node, "state", "state")
    assert topics.parse(topics.command(fleet, node, command)) == Topic(fleet, node, "down", "cmd", command)
    assert topics.parse(topics.config(fleet, node)) == Topic(fleet, node, "down", "config")
    assert topics.parse(topics.delivery_ack(fleet, node)) == Topic(fleet, node, "down", "ack")


def parse_or_refuse(text: str) -> None:
    try:
        topic = topics.parse(text)
    except TopicError:
        return  # refused, as it should be: anything else propagates and fails the test
    assert isinstance(topic, Topic)
    assert all(NAME_PATTERN.match(name) for name in (topic.fleet, topic.node))
    assert not set(text) & {"+", "#"}


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_parse_of_arbitrary_text_returns_a_topic_or_raises_topic_error(text: str) -> None:
    parse_or_refuse(text)


levels = st.sampled_from(
    ["pm", "v1", "f", "n", "up", "down", "cmd", "state", "config", "ack", "readings", "+", "#", ""]
)


@given(st.lists(levels | st.text(max_size=6), max_size=8).map("/".join))
@settings(max_examples=300, deadline=None)
def test_parse_of_topic_like_text_returns_a_topic_or_raises_topic_error(text: str) -> None:
    parse_or_refuse(text)


# ---------------------------------------------------------------- broker URLs


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.local", "broker.local", DEFAULT_PORT, False),
        ("mqtts://broker.local", "broker.local", DEFAULT_TLS_PORT, True),
        ("mqtt://broker.local:11883", "broker.local", 11883, False),
        ("mqtts://broker.local:443/", "broker.local", 443, True),
        ("tcp://10.0.0.2", "10.0.0.2", DEFAULT_PORT, False),
        ("ssl://10.0.0.2", "10.0.0.2", DEFAULT_TLS_PORT, True),
        ("mqtt://[::1]:1884", "::1", 1884, False),
        ("mqtt://h:65535", "h", 65535, False),
        ("mqtt://h:1", "h", 1, False),
    ],
)
def test_broker_url_gives_host_port_and_tls(url: str, host: str, port: int, tls: bool) -> None:
    address = parse_broker_url(url)
    assert (address.host, address.port, address.tls) == (host, port, tls)
    assert address.username is None
    assert address.password is None


def test_broker_url_reads_user_and_percent_encoded_password() -> None:
    address = parse_broker_url("mqtts://node%2D7:s3cr%40t%3Apw@broker.example:8884")
    assert address == BrokerAddress(host="broker.example", port=8884, tls=True, username="node-7", password="s3cr@t:pw")


def test_str_of_broker_address_hides_the_password() -> None:
    address = parse_broker_url("mqtt://hub:hunter2@broker.example")
    assert str(address) == "mqtt://hub:***@broker.example:1883"
    assert "hunter2" not in str(address)
    assert str(parse_broker_url("mqtts://broker.example")) == "mqtts://broker.example:8883"


def test_repr_of_broker_address_hides_the_password() -> None:
    assert "hunter2" not in repr(parse_broker_url("mqtt://hub:hunter2@broker.example"))


@pytest.mark.parametrize("url", ["http://broker", "ws://broker:80", "broker:1883", "//broker", "MQTTX://h"])
def test_broker_url_with_another_scheme_is_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError, match="scheme must be mqtt:// or mqtts://"):
        parse_broker_url(url)


@pytest.mark.parametrize("url", ["mqtt://h:abc", "mqtt://h:65536", "mqtt://h:-1", "mqtt://h:99999999", "mqtt://h:1.5"])
def test_broker_url_with_a_bad_port_is_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError, match="port is not a number from 1 to 65535"):
        parse_broker_url(url)


def test_broker_url_with_port_zero_is_refused() -> None:
    with pytest.raises(BrokerUrlError, match="port"):
        parse_broker_url("mqtt://h:0")


@pytest.mark.parametrize("url", ["mqtt://", "mqtt://:1883", "mqtt://user:pw@", "mqtts:///path", "mqtt:broker"])
def test_broker_url_without_a_host_is_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError, match="no host"):
        parse_broker_url(url)


@pytest.mark.parametrize("url", ["mqtt://h/topic", "mqtt://h:1883/a/b", "mqtts://h//"])
def test_broker_url_with_a_path_is_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError, match="unexpected path"):
        parse_broker_url(url)


@pytest.mark.parametrize("url", ["", None, 1883])
def test_empty_or_non_str_broker_url_is_refused(url: object) -> None:
    with pytest.raises(BrokerUrlError, match="empty"):
        parse_broker_url(url)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["mqtt://[", "mqtt://[::1", "mqtt://h]:1883", "mqtt://[not-an-ip]:1883"])
def test_broker_url_with_a_broken_ipv6_host_is_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError):
        parse_broker_url(url)


no_brackets = st.characters(exclude_characters="[]")  # brackets: see the xfail test above


@given(st.text(no_brackets, max_size=40) | st.text(no_brackets, max_size=30).map(lambda s: "mqtt://" + s))
@settings(max_examples=300, deadline=None)
def test_arbitrary_broker_url_parses_or_raises_broker_url_error(url: str) -> None:
    try:
        address = parse_broker_url(url)
    except BrokerUrlError:
        return  # refused, as it should be: anything else propagates and fails the test
    assert address.host
    assert 1 <= address.port <= 65535
