"""Clusters for data-plane API tests: a running cluster record whose Kafka is the simulator (a six-broker
cluster over three racks, each broker in the rack the control plane recorded), so topic placement,
drift and every refusal can be checked without brokers. The tests on real Apache Kafka say so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from controlplane.clusters.actions import _create_certificate_authority
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import get_backend
from tests.support.alerting import make_cluster
from tests.support.simulated_backend import ADMIN_FACTORY, SIMULATION, StandInKafkaCluster
from tests.support.tenants import Tenant, token_client


@pytest.fixture
def simulated_kafka(settings: Any) -> Iterator[None]:
    settings.KAFKA_ADMIN_FACTORY = ADMIN_FACTORY
    get_backend.cache_clear()
    SIMULATION.reset()
    yield
    SIMULATION.reset()


@pytest.fixture
def cluster(tenant: Tenant, simulated_kafka: None) -> Cluster:
    cluster = make_cluster(tenant.organization, name="payments", brokers=6)
    kafka = StandInKafkaCluster(
        [(broker.node_id, broker.rack) for broker in cluster.brokers.all()], cluster_id=str(cluster.id)
    )
    kafka.create_topic("__consumer_offsets", 3, 3)  # as a cluster with a consumer group has it
    SIMULATION.clusters[str(cluster.id)] = kafka
    return cluster


@pytest.fixture
def kafka(cluster: Cluster) -> StandInKafkaCluster:
    return SIMULATION.cluster(str(cluster.id))


def secure(cluster: Cluster, *authentication: str) -> Cluster:
    """Give a cluster record client authentication, with its CA and credential, as a create with
    `client_authentication` records them."""
    Cluster.objects.filter(pk=cluster.pk).update(client_authentication=list(authentication))
    cluster.refresh_from_db()
    _create_certificate_authority(cluster)
    return cluster


@pytest.fixture
def secured(cluster: Cluster) -> Cluster:
    """The simulated cluster, with a SCRAM and an mTLS listener."""
    return secure(cluster, "scram", "mtls")


@pytest.fixture
def admin(tenant: Tenant) -> APIClient:
    return token_client(tenant.admin)


@pytest.fixture
def viewer(tenant: Tenant) -> APIClient:
    return token_client(tenant.viewer)


def topics_url(cluster: Cluster, name: str = "") -> str:
    return f"/api/v1/clusters/{cluster.id}/topics/" + (f"{name}/" if name else "")
