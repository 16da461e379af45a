"""`collection_sql.insert_all`, the one-statement insert of the incidents and deliveries an evaluation
opens, stores exactly what Django's `bulk_create` stores, whatever the text and JSON in the rows
(quotes, backslashes, newlines, non-ASCII, nested documents), and gives each object its id; its
`update_all` stores what `bulk_update` stores. The evaluation's other statements there build the
objects Django builds: `new` as the constructor, the open incidents as a query loads them."""

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
from monitoring.alerting.models import Delivery, Incident, NotificationChannel, Silence
from monitoring.collection_sql import insert_all, locked_open_incidents, new, update_all, update_by_pk
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


def attributes(obj: Incident | Delivery) -> dict[str, Any]:
    return {name: value for name, value in vars(obj).items() if name != "_state"}


def test_new_builds_what_the_constructor_builds(cluster: Cluster) -> None:
    values = {
        "cluster_id": cluster.pk,
        "rule_key": "consumer_lag_status",
        "subject": "group:billing",
        "dedup_key": "k",
        "sequence": 3,
        "notification_key": "k/3",
        "state": "firing",
        "first_seen_at": T0,
        "fired_at": T0,
    }
    built = new(Incident, **values)

    assert attributes(built) == attributes(Incident(**values))
    assert built._state.adding and built.pk is None
    delivery = {"channel_id": 1, "incident_id": 2, "event": "trigger", "dedup_key": "k/3", "due_at": T0}
    # `created_at` defaults to the time of the call.
    assert attributes(new(Delivery, **delivery, created_at=T0)) == attributes(
        Delivery(**delivery, created_at=T0)
    )
    with pytest.raises(TypeError, match="sumary"):
        new(Incident, **values, sumary="typo")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(text, json_values, st.floats(-1e9, 1e9)), min_size=1, max_size=5))
def test_updates_are_stored_as_bulk_update_stores_them(
    cluster: Cluster, changes: list[tuple[str, Any, float]]
) -> None:
    Incident.objects.all().delete()
    fast = [incident(cluster, n, "before", {"n": n}, n % 2 == 0) for n in range(len(changes))]
    django = [incident(cluster, n + 100, "before", {"n": n}, n % 2 == 0) for n in range(len(changes))]
    insert_all(Incident, fast + django)
    silence = Silence.objects.create(
        organization=cluster.organization, starts_at=T0, ends_at=T0 + timedelta(hours=1), comment="c"
    )
    for objs in (fast, django):
        for n, (obj, (summary, details, value)) in enumerate(zip(objs, changes, strict=True)):
            obj.summary, obj.details, obj.value, obj.values_at = summary, {"document": details}, value, T0
            obj.silenced, obj.silence_id, obj.severity = (
                n % 2 == 0,
                silence.pk if n % 2 == 0 else None,
                "info",
            )

    names = ["details", "severity", "silence", "silenced", "summary", "value", "values_at"]
    with CaptureQueriesContext(connection) as queries:
        update_all(Incident, fast, names)
    Incident.objects.bulk_update(django, names)

    assert len(queries.captured_queries) == 1
    assert strip(stored(Incident, [i.pk for i in fast])) == strip(stored(Incident, [i.pk for i in django]))


def test_updates_by_key_touch_only_the_rows_in_the_states_given(cluster: Cluster) -> None:
    rows = [incident(cluster, n, f"summary {n}", {}, fired) for n, fired in enumerate((False, True, False))]
    insert_all(Incident, rows)
    Incident.objects.filter(pk=rows[2].pk).update(state="resolved")

    fired = update_by_pk(
        Incident, [i.pk for i in rows], {"state": "firing", "fired_at": T0}, where={"state": ["pending"]}
    )

    assert fired == 1
    assert list(Incident.objects.order_by("pk").values_list("state", "fired_at")) == [
        ("firing", T0),
        ("firing", T0),
        ("resolved", None),
    ]
    assert update_by_pk(Incident, [rows[0].pk], {"last_notified_at": T0}) == 1
    assert update_by_pk(Incident, [], {"last_notified_at": T0}) == 0


def test_open_incidents_load_as_a_query_loads_them(cluster: Cluster) -> None:
    rows = [incident(cluster, n, f"summary {n}", {"n": [n, "x"]}, n % 2 == 0) for n in range(4)]
    rows[1].first_seen_at = T0 + timedelta(seconds=5)
    insert_all(Incident, rows)
    Incident.objects.filter(pk=rows[3].pk).update(state="resolved", resolved_at=T0)
    make_cluster(cluster.organization, name="other")

    loaded = locked_open_incidents(cluster.pk)

    expected = list(Incident.objects.filter(cluster=cluster, state__in=("pending", "firing", "acknowledged")))
    assert [i.pk for i in loaded] == [rows[1].pk, rows[2].pk, rows[0].pk]
    assert [attributes(i) for i in loaded] == [attributes(i) for i in expected]
    assert all(not i._state.adding and i._state.db == "default" for i in loaded)
