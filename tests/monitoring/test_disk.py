"""Disk usage per broker: read with DescribeLogDirs, stored with the cluster's health, shown by the API,
exported, and judged by the disk alert.

These tests drive `SimulatedKafkaCluster`, whose brokers' volumes can be filled at will; the same path
on real Apache Kafka, with a volume really filled, is in test_real_kafka_monitoring.py.
"""

from __future__ import annotations

from datetime import timedelta

from monitoring.alerting.choices import IncidentState
from monitoring.alerting.models import Incident
from monitoring.collector import collect_cluster
from monitoring.conditions import DISK_USAGE
from monitoring.disk import BrokerDisk, broker_disks
from monitoring.models import ClusterHealth
from provisioning.kafka_admin.base import LogDirUsage
from tests.monitoring.test_collect import T0, make_cluster
from tests.monitoring.test_exporter import scrape, value
from tests.support.alerting import make_cluster as make_alerting_cluster
from tests.support.simulator import SimulatedKafkaCluster
from tests.support.tenants import Tenant, token_client

GB = 10**9


def test_a_broker_counts_its_fullest_healthy_log_directory() -> None:
    usage = {
        1: (
            LogDirUsage(1, "/data/a", 100 * GB, 60 * GB),
            LogDirUsage(1, "/data/b", 100 * GB, 10 * GB),
            LogDirUsage(1, "/data/c", 100 * GB, 0, error="KafkaStorageError"),  # offline: not counted
        ),
        2: (LogDirUsage(2, "/data/a", None, None),),  # a broker older than Kafka 3.3
        3: (LogDirUsage(3, "/data/a", 100 * GB, 150 * GB),),  # usable over total: never below 0 %
    }

    disks = broker_disks(usage)

    assert disks == {
        1: BrokerDisk(1, "/data/b", 100 * GB, 10 * GB),
        3: BrokerDisk(3, "/data/a", 100 * GB, 150 * GB),
    }
    assert disks[1].used_percent == 90.0
    assert disks[3].used_percent == 0.0


def test_disk_usage_is_stored_shown_and_exported(tenant: Tenant) -> None:
    simulated = SimulatedKafkaCluster.with_brokers(3, disk_bytes=100 * GB)
    simulated.fill_disk(2, 90 * GB)
    cluster = make_cluster(tenant.organization, node_ids=[1, 2, 3], replication_factor=3)

    collect_cluster(cluster.pk, admin=simulated, now=T0)

    health = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/health/").json()
    assert health["disks"]["2"] == {
        "path": "/var/lib/kafka/broker-2",
        "total_bytes": 100 * GB,
        "usable_bytes": 10 * GB,
        "used_percent": 90.0,
    }
    assert health["disks"]["1"]["used_percent"] == 0.0
    samples = scrape()
    broker_2 = {"organization": "acme", "cluster": "orders", "broker": "2"}
    assert value(samples, "kafka_broker_disk_used_percent", **broker_2) == 90.0
    assert value(samples, "kafka_broker_disk_total_bytes", **broker_2) == 100 * GB
    assert value(samples, "kafka_broker_disk_usable_bytes", **broker_2) == 10 * GB

    # A broker that does not answer has no figure rather than its last one.
    simulated.fail_broker(2)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))
    assert sorted(ClusterHealth.objects.get(pk=cluster.pk).disks) == ["1", "3"]
    assert value(scrape(), "kafka_broker_disk_used_percent", **broker_2) is None


def test_a_full_disk_alerts_and_stays_open_while_its_broker_cannot_say_otherwise(tenant: Tenant) -> None:
    simulated = SimulatedKafkaCluster.with_brokers(3, disk_bytes=100 * GB)
    simulated.create_topic("orders", 3, 3, {"min.insync.replicas": "2"})
    cluster = make_alerting_cluster(tenant.organization)
    for_seconds = 300  # the rule's default

    def disk_incident() -> Incident | None:
        return Incident.objects.filter(cluster=cluster, rule_key=DISK_USAGE).order_by("-pk").first()

    collect_cluster(cluster.pk, admin=simulated, now=T0)
    simulated.fill_disk(3, 86 * GB)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10))
    assert disk_incident().state == IncidentState.PENDING
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=10 + for_seconds))

    incident = disk_incident()
    assert incident.state == IncidentState.FIRING and incident.subject == "broker:3"
    assert incident.summary == "Broker 3's data disk is 86% full (threshold 85%)."

    # Down, the broker reports no disk: that is no reason to call its disk fine.
    simulated.fail_broker(3)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=20 + for_seconds))
    assert disk_incident().state == IncidentState.FIRING

    simulated.fill_disk(3, 50 * GB)
    simulated.restore_broker(3)
    collect_cluster(cluster.pk, admin=simulated, now=T0 + timedelta(seconds=30 + for_seconds))
    assert disk_incident().state == IncidentState.RESOLVED
