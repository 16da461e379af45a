"""Kafka protocol messages kafka-python does not ship, declared from the protocol definition.

kafka-python 3.x builds each message class from a JSON description of its fields (the format Apache
Kafka's protocol definition is written in): `class X(ApiMessage, load_json=<package>)` reads `X.json`
from that package. The files here describe only what the control plane sends.

- UnregisterBroker (API key 64, KIP-631): removes a broker's registration from a KRaft cluster, as
  `kafka-cluster.sh unregister` does. A broker that was stopped for good otherwise stays registered,
  fenced, and the controller checks every registration when feature levels are finalized.
"""

from kafka.protocol.api_message import ApiMessage


class UnregisterBrokerRequest(ApiMessage, load_json=__name__):
    pass


class UnregisterBrokerResponse(ApiMessage, load_json=__name__):
    pass
