"""MQTT for PyMonitor: topics, broker URLs, the paho bridge and brokers it can start.

Errors: :class:`TopicError` (a bad topic or name), :class:`BrokerUrlError` (a bad broker URL),
:class:`BrokerStartError` (a broker this process tried to start did not come up).
"""

from .bridge import BridgeCounters, BridgeOptions, MqttBridge
from .embedded import BrokerStartError, EmbeddedBroker, MosquittoBroker, RunningBroker, free_port, start_broker
from .netloop import NetworkLoop
from .topics import Topic, TopicError
from .url import BrokerAddress, BrokerUrlError, parse_broker_url

__all__ = [
    "BridgeCounters",
    "BridgeOptions",
    "BrokerAddress",
    "BrokerStartError",
    "BrokerUrlError",
    "EmbeddedBroker",
    "MosquittoBroker",
    "MqttBridge",
    "NetworkLoop",
    "RunningBroker",
    "Topic",
    "TopicError",
    "free_port",
    "parse_broker_url",
    "start_broker",
]
