"""Fixtures shared by every test package live in tests/support and are loaded here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from controlplane.celery import app as celery_app
from controlplane.clusters.specs import get_backend


def _own_redis_database_per_xdist_worker() -> None:
    """Under pytest-xdist (`make test` runs the suite in several processes) each process has its own
    test database (pytest-django adds the worker's suffix) and must have its own Redis database too:
    otherwise one process's Celery worker takes tasks about another process's database. Settings are
    read before any conftest, so the URL is changed on the settings and the Celery app here."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = django_settings.CELERY_BROKER_URL
    if not worker or not url.startswith("redis://"):
        return
    base, number = re.fullmatch(r"(redis://[^/]*)(?:/(\d+))?", url).groups()  # type: ignore[union-attr]
    database = (int(number or 0) - int(worker.removeprefix("gw")) - 1) % 16
    django_settings.CELERY_BROKER_URL = django_settings.REDIS_URL = f"{base}/{database}"
    celery_app.conf.broker_url = django_settings.CELERY_BROKER_URL


_own_redis_database_per_xdist_worker()


def _quick_starting_test_brokers() -> None:
    """The suite starts Apache Kafka JVMs again and again (brokers, storage formats, quorum tools),
    each run short and lightly loaded, several at once on two cores. The JIT's quick tier and the serial
    collector, which the playbooks give Kafka's tools too (`kafka_tools_environment`), halve the CPU
    time a broker takes to become ready (measured here: 6.6-7.0 s down to 3.1-3.2 s) and while idle.
    Kafka's behaviour is the same; only how the JVM compiles and collects changes. Brokers, formats and
    tools launched by this process and its workers inherit the variable (Kafka's launchers read it);
    `make bench` and `make run` keep Kafka's defaults, and the vm backend's hosts run what the
    playbooks set."""
    os.environ.setdefault(
        "KAFKA_JVM_PERFORMANCE_OPTS", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
    )


_quick_starting_test_brokers()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests (real brokers, workers) first, those on real hosts (whole playbooks over SSH, the
    longest modules) before the others, each module's tests kept in their order: spread over several
    processes, the longest work starts at once instead of trailing behind the quick tests."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            item.get_closest_marker("real_hosts") is None,
        )
    )


pytest_plugins = [
    "tests.support.kafka",
    "tests.support.apache_kafka",
    "tests.support.tenants",
    "tests.support.workers",
    "tests.support.operated_kafka",
    "tests.support.http_receiver",
    "tests.support.smtp_receiver",
    "tests.support.browser",
    "tests.support.vm_hosts",
    "tests.support.vm_cluster",
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
