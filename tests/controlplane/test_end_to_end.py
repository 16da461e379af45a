"""A `local` cluster from request to deletion, through the REST API and a real Celery worker on Redis.

The broker is the development broker (Tansu, a Kafka-protocol broker) that the `local` backend runs
when no Apache Kafka distribution is configured; a real Kafka client talks to it.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.apache_kafka import wait_for
from tests.support.api_waits import wait_until_provisioned
from tests.support.tenants import Tenant, token_client
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def produce_and_consume(bootstrap: str) -> list[bytes]:
    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(3):
        producer.produce(topic, f"order-{i}".encode())
        producer.flush(10)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    received: list[bytes] = []
    deadline = time.monotonic() + 60  # the development broker's first group join is slow
    try:
        while len(received) < 3 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                received.append(message.value())
    finally:
        consumer.close()
    return received


def test_local_cluster_lifecycle(tenant: Tenant, start_worker: Callable[..., WorkerProcess]) -> None:
    start_worker(purge=True)
    client = token_client(tenant.admin)

    created = client.post(
        "/api/v1/clusters/", {"name": "orders", "backend": "local", "brokers": 1}, format="json"
    )
    assert created.status_code == 202, created.content
    cluster_url = f"/api/v1/clusters/{created.json()['id']}/"
    operation_url = f"/api/v1/operations/{created.json()['operation']['id']}/"

    cluster = wait_until_provisioned(client, cluster_url, timeout=90, interval=0.5)
    operation = client.get(operation_url).json()
    assert cluster["status"] == "running", operation
    assert operation["state"] == "succeeded"
    assert operation["progress"] == 100.0
    assert all(step["state"] == "succeeded" for step in operation["steps"])
    assert any("registered" in line["message"] for line in operation["log"])
    bootstrap = cluster["bootstrap_servers"]
    assert cluster["broker_nodes"][0]["state"] == "running"
    assert cluster["broker_nodes"][0]["endpoint"] == bootstrap

    assert produce_and_consume(bootstrap) == [b"order-0", b"order-1", b"order-2"]

    deleted = client.delete(cluster_url)
    assert deleted.status_code == 202
    assert deleted.json()["status"] == "deleting"
    wait_for(lambda: client.get(cluster_url).status_code == 404, timeout=60, what="deletion")
    assert not port_open(bootstrap), "the broker process still listens after deletion"
    assert client.get("/api/v1/clusters/").json()["results"] == []
