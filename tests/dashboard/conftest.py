"""Shared setup for the dashboard tests: clusters created the way the API creates them."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api.serializers import ClusterCreateSerializer
from controlplane.audit.actions import Actor
from controlplane.clusters.actions import request_cluster_create
from controlplane.clusters.models import Cluster
from tests.support.tenants import Tenant


def create_cluster(tenant: Tenant, **body: Any) -> Cluster:
    """A cluster as an admin's API request would record it; no worker runs, so it stays requested.

    Backend validation is not applied, so layouts the development backend refuses (several brokers
    without KAFKA_HOME) can still be shown.
    """
    serializer = ClusterCreateSerializer(data={"name": "orders", "brokers": 1, **body})
    serializer.is_valid(raise_exception=True)
    cluster, _ = request_cluster_create(
        organization=tenant.organization, spec=serializer.validated_data, actor=Actor(user=tenant.admin)
    )
    return cluster


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return create_cluster(tenant, brokers=6, racks=["eu-west-1a", "eu-west-1b", "eu-west-1c"])
