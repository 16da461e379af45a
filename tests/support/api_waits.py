"""Waiting on the REST API as a user's script does: poll a cluster or an operation until it is done.

The end-to-end tests (local, Kubernetes, vm) ask for a cluster or an operation, get a 202, and then
poll; these helpers are that loop, in one place.
"""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from tests.support.apache_kafka import wait_for

# What a cluster can end its provisioning as, and an operation its run as.
CLUSTER_SETTLED = ("running", "failed")
OPERATION_ENDED = ("succeeded", "failed", "cancelled")


def wait_until_provisioned(
    client: APIClient, cluster_url: str, *, timeout: float, interval: float = 1
) -> Any:
    """GET `cluster_url` until the cluster leaves provisioning (running or failed); its last body."""
    return wait_for(
        lambda: (body := client.get(cluster_url).json())["status"] in CLUSTER_SETTLED and body,
        timeout,
        interval=interval,
        what="the cluster to leave provisioning",
    )


def wait_until_ended(
    client: APIClient, operation_url: str, *, timeout: float, interval: float = 1, what: str = "the operation"
) -> Any:
    """GET `operation_url` until the operation has ended (succeeded, failed or cancelled); its last body."""
    return wait_for(
        lambda: (body := client.get(operation_url).json())["state"] in OPERATION_ENDED and body,
        timeout,
        interval=interval,
        what=f"{what} to end",
    )
