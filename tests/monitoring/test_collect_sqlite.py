"""Collection on SQLite, the embedded default of `make run`: the collector's hand-written statements
(`monitoring.collection_sql`) must work there as they do on PostgreSQL, which the rest of the suite
uses. Runs in a child process with its own settings, on a fresh SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import django
    django.setup()
    from datetime import UTC, datetime, timedelta
    from django.core.management import call_command
    call_command("migrate", verbosity=0)

    from controlplane.clusters.choices import AnomalyState
    from controlplane.clusters.models import BrokerAnomaly, Cluster
    from controlplane.tenancy.models import Organization
    from monitoring.alerting.models import Incident
    from monitoring.collector import collect_cluster
    from monitoring.lag_state import load
    from tests.support.simulator import SimulatedKafkaCluster
    from tests.support.alerting import make_cluster

    kafka = SimulatedKafkaCluster.with_brokers(3, seed=3)
    kafka.create_topic("orders", 6, 3, {"min.insync.replicas": "2"})
    kafka.produce("orders", 0, 50)
    kafka.commit("billing", "orders", 0, 20)
    cluster = make_cluster(Organization.objects.create(name="Acme", slug="acme"))
    Cluster.objects.filter(pk=cluster.pk).update(self_healing=False)
    t0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)

    first = collect_cluster(cluster.pk, admin=kafka, now=t0)
    assert first.expected_broker_ids == {1, 2, 3}, first.expected_broker_ids
    assert first.facts.organization_id == cluster.organization_id
    kafka.fail_broker(2)
    collect_cluster(cluster.pk, admin=kafka, now=t0 + timedelta(seconds=10))
    assert BrokerAnomaly.objects.get(cluster=cluster).state == AnomalyState.OPEN
    kafka.restore_broker(2)
    kafka.advance(kafka.rejoin_delay_seconds + 1)
    third = collect_cluster(cluster.pk, admin=kafka, now=t0 + timedelta(seconds=20))
    assert third.facts.open_incidents and third.facts.open_anomalies

    groups, windows = load(cluster.pk)
    assert [(g.group_id, g.total_lag) for g in groups] == [("billing", 30)], groups
    assert len(windows["billing"][("orders", 0)].times) == 3
    assert BrokerAnomaly.objects.get(cluster=cluster).state == AnomalyState.RESOLVED
    down = Incident.objects.filter(rule_key="broker_down").values_list("subject", "state")
    assert dict(down) == {"broker:2": "resolved"}, down
    print("ok")
    """
)


def test_collection_works_on_sqlite(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "TEST_DATABASE_NAME", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'controlplane.sqlite3'}",
        CONTROLPLANE_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="controlplane.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
