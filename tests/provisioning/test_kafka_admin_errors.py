"""How `ConfluentKafkaAdmin` classifies librdkafka's errors: worth retrying later, or not.

Errors that real clusters raise only in a race are built here directly, since no cluster produces them
on demand.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from provisioning.kafka_admin.base import KafkaUnavailableError
from provisioning.kafka_admin.confluent import _translate


def test_a_request_on_a_broker_handle_the_client_dropped_is_worth_retrying() -> None:
    # librdkafka drops the handles of brokers the metadata no longer lists (the bootstrap ones, once
    # it knows the real brokers); a request still waiting on one fails with _DESTROY_BROKER, and the
    # same request sent again goes to a live handle. Seen creating a topic on a new 3.9 cluster.
    error = _translate(KafkaException(KafkaError(KafkaError._DESTROY_BROKER)), "create topic", "127.0.0.1:1")

    assert isinstance(error, KafkaUnavailableError)
