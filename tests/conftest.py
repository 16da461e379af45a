"""Fixtures shared by every test package live in tests/support and are loaded here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.clusters.specs import get_backend

pytest_plugins = [
    "tests.support.kafka",
    "tests.support.apache_kafka",
    "tests.support.tenants",
    "tests.support.workers",
    "tests.support.operated_kafka",
    "tests.support.http_receiver",
    "tests.support.browser",
    "tests.support.vm_hosts",
    "tests.support.kube_apiserver",
]


@pytest.fixture(autouse=True)
def development_broker_by_default(settings: Any) -> Iterator[None]:
    """`local` clusters run the development broker unless a test asks for Apache Kafka
    (`settings.LOCAL_ENGINE = "kafka"`): most tests need a Kafka-protocol endpoint, not a JVM."""
    settings.LOCAL_ENGINE = "tansu"
    get_backend.cache_clear()
    yield
    get_backend.cache_clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Every test tenant has three users; the production hasher's deliberate slowness would dominate.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
