"""`collection_sql.insert_all`, the one-statement insert of the incidents and deliveries an evaluation
opens, stores exactly what Django's `bulk_create` stores, whatever the text and JSON in the rows
(quotes, backslashes, newlines, non-ASCII, nested documents), and gives each object its id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.clusters.models import Cluster
from monitoring.alerting.models import Delivery, Incident, NotificationChannel
from monitoring.collection_sql import insert_all
from tests.support.alerting import make_cluster
from tests.support.tenants import Tenant

T0 = datetime(2026, 11, 3, 12, 0, 0, 123456, tzinfo=UTC)
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


def incident(cluster: Cluster, number: int, summary: str, details: Any, fired: bool) -> Incident:
    key = f"{cluster.pk}:consumer_lag_status:group:{number}"
    return Incident(
        cluster=cluster,
        rule_key="consumer_lag_status",
        subject=f"group:{summary[:40]}",
        dedup_key=key,
        sequence=1,
        notification_key=f"{key}/1",
        state="firing" if fired else "pending",
        severity="critical",
        summary=summary,
        value=2.5,
        threshold=4.0,
        details={"document": details},
        values_at=T0,
        first_seen_at=T0 - timedelta(seconds=30),
        fired_at=T0 if fired else None,
        last_notified_at=T0 if fired else None,
    )


def stored(model: type[Incident] | type[Delivery], pks: list[int]) -> list[dict[str, Any]]:
    rows = {row.pk: model_to_dict(row) for row in model.objects.filter(pk__in=pks)}
    return [rows[pk] for pk in pks]


def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k not in ("id", "dedup_key", "notification_key", "updated_at")}
        for row in rows
    ]


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return make_cluster(tenant.organization, name="payments")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(text, json_values, st.booleans()), min_size=1, max_size=6))
def test_incidents_are_stored_as_bulk_create_stores_them(
    cluster: Cluster, rows: list[tuple[str, Any, bool]]
) -> None:
    Incident.objects.all().delete()
    fast = [incident(cluster, n, *row) for n, row in enumerate(rows)]
    django = [incident(cluster, n + 100, *row) for n, row in enumerate(rows)]

    with CaptureQueriesContext(connection) as queries:
        insert_all(Incident, fast)
    Incident.objects.bulk_create(django)

    assert len(queries.captured_queries) == 1
    assert all(i.pk is not None and not i._state.adding for i in fast)
    # Everything but the keys (which name the number) as bulk_create stored it, in the objects' order;
    # `updated_at` is the time of each insert.
    assert strip(stored(Incident, [i.pk for i in fast])) == strip(stored(Incident, [i.pk for i in django]))
    assert all(i.updated_at is not None for i in Incident.objects.all())


def test_deliveries_get_their_defaults_and_ids_in_order(cluster: Cluster, tenant: Tenant) -> None:
    channel = NotificationChannel.objects.create(
        organization=tenant.organization, name="hook", kind="webhook", config={}, created_by_name="tests"
    )
    opened = [incident(cluster, n, f"summary {n}", {"n": n}, True) for n in range(3)]
    insert_all(Incident, opened)
    rows = [
        Delivery(
            channel=channel,
            incident=i,
            event="trigger",
            dedup_key=i.notification_key,
            created_at=T0,
            due_at=T0,
            requested_by_name="system:alerting",
        )
        for i in opened
    ]

    insert_all(Delivery, rows)

    assert [(d.pk, d.incident_id) for d in rows] == list(
        Delivery.objects.order_by("pk").values_list("pk", "incident_id")
    )
    assert {(d.status, d.attempt, d.first_attempt_id, d.error) for d in Delivery.objects.all()} == {
        ("pending", 1, None, "")
    }
    assert insert_all(Delivery, []) is None
