"""The statements every collection of every cluster runs, written as SQL.

Hot path: a healthy cluster's collection is a handful of small statements, and building the larger of
them through the ORM (the cluster with its stored windows and four subqueries, the lease, the
lag-state upsert) took more CPU than the database took to run them: around a millisecond each, on
every cluster every ten seconds. Here each is one fixed string per database vendor, built once.

Table and column names come from the models, values are bound parameters converted by the model
fields, and the SQL is what PostgreSQL and SQLite share (`INSERT ... ON CONFLICT`, `EXISTS`), except
for the name of the string aggregate.

On PostgreSQL these statements are prepared, once per connection (`_cursor`): planning the cluster
read alone cost more of the server's CPU than running it, every collection of every cluster, and the
connections live on in each worker's pool.

Alerting's evaluation, which a collection runs when the cluster has conditions or open incidents,
reads and writes incidents and deliveries here too: compiled by the ORM, its statements cost the
workers about as much CPU as the database took to run them, and a list of keys or ids in `IN` made
a new statement for every length. Lists travel as one array (`= ANY`), rows as one JSON document;
on SQLite, where neither exists, the ORM does those statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import orjson
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import DateField, DateTimeField, Field, Max, Model
from django.db.models.expressions import Col

from controlplane.clusters.choices import AnomalyState
from controlplane.clusters.models import Broker, BrokerAnomaly, Cluster
from monitoring.alerting import models as alerting
from monitoring.alerting.choices import OPEN_STATES, DeliveryEvent
from monitoring.alerting.models import Delivery, Incident, MaintenanceWindow, RuleOverrideRecord, Silence
from monitoring.models import ClusterHealth, LagState

ModelT = TypeVar("ModelT", bound=Model)


@dataclass(frozen=True)
class ClusterFacts:
    """What the collector read along with the cluster row when the collection started, so that
    alerting and self-healing skip the queries that would find nothing: on a healthy fleet, most."""

    organization_id: int
    open_incidents: bool
    rule_overrides: bool  # for the cluster or its organization
    open_anomalies: bool
    # Whether a silence or maintenance window is in force for the cluster at the collection's time.
    mutes: bool = True


@dataclass(frozen=True)
class ClusterRow:
    """What a collection needs of a cluster, read in one statement."""

    cluster_id: uuid.UUID
    name: str
    min_insync_replicas: int
    collection_interval_seconds: int
    bootstrap_servers: str
    expected_broker_ids: frozenset[int]
    windows: bytes | None  # the stored `LagState.windows`; None before the first collection
    facts: ClusterFacts
    partition_totals: str | None = None  # the stored `ClusterHealth.partition_totals`


def read_cluster(
    cluster_id: uuid.UUID,
    statuses: Sequence[str],
    not_expected_broker_states: Sequence[str],
    now: datetime,
) -> ClusterRow | None:
    """The cluster if its status is one of `statuses`, with its expected brokers (all but those in
    `not_expected_broker_states`), its stored windows and its `ClusterFacts` at `now`."""
    sql = _read_cluster_sql(connection.vendor, len(statuses), len(not_expected_broker_states))
    moment = _value(Silence, "starts_at", now)
    params = [
        *OPEN_STATES,
        AnomalyState.OPEN,
        *[moment] * 4,
        *not_expected_broker_states,
        _value(Cluster, "id", cluster_id),
        *statuses,
    ]
    with _cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    (
        name,
        organization_id,
        min_isr,
        interval,
        servers,
        windows,
        incidents,
        overrides,
        anomalies,
        mutes,
        brokers,
        totals,
    ) = row
    return ClusterRow(
        cluster_id=cluster_id,
        name=name,
        min_insync_replicas=min_isr,
        collection_interval_seconds=interval,
        bootstrap_servers=servers,
        expected_broker_ids=frozenset(int(node_id) for node_id in brokers.split(","))
        if brokers
        else frozenset(),
        windows=windows,
        partition_totals=totals,
        facts=ClusterFacts(
            organization_id=organization_id,
            open_incidents=bool(incidents),
            rule_overrides=bool(overrides),
            open_anomalies=bool(anomalies),
            mutes=bool(mutes),
        ),
    )


def claim_lease(cluster_id: uuid.UUID, now: datetime, until: datetime) -> bool:
    """Take the cluster's collection lease unless a collection holds one that has not expired."""
    health, until_column = _table(ClusterHealth), _column(ClusterHealth, "collecting_until")
    with _cursor() as cursor:
        cursor.execute(
            f"UPDATE {health} SET {until_column} = %s WHERE {_column(ClusterHealth, 'cluster_id')} = %s "
            f"AND ({until_column} IS NULL OR {until_column} < %s)",
            [
                _value(ClusterHealth, "collecting_until", until),
                _value(ClusterHealth, "cluster_id", cluster_id),
                _value(ClusterHealth, "collecting_until", now),
            ],
        )
        return cursor.rowcount == 1


def save_lag_state(cluster_id: uuid.UUID, groups: str, windows: bytes, collected_at: datetime) -> None:
    """Insert or replace the cluster's `LagState` row."""
    columns = [_column(LagState, name) for name in ("cluster_id", "groups", "windows", "collected_at")]
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns[1:])
    with _cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(LagState)} ({', '.join(columns)}) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}",
            [
                _value(LagState, "cluster_id", cluster_id),
                groups,
                windows,
                _value(LagState, "collected_at", collected_at),
            ],
        )


def update_health(cluster_id: uuid.UUID, **values: object) -> None:
    """Set the named `ClusterHealth` fields of one cluster (values as the model takes them)."""
    names = tuple(values)
    with _cursor() as cursor:
        cursor.execute(
            _update_health_sql(names),
            [
                *(_value(ClusterHealth, name, values[name]) for name in names),
                _value(ClusterHealth, "cluster_id", cluster_id),
            ],
        )


@cache
def _update_health_sql(names: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{_column(ClusterHealth, name)} = %s" for name in names)
    return (
        f"UPDATE {_table(ClusterHealth)} SET {assignments} WHERE {_column(ClusterHealth, 'cluster_id')} = %s"
    )


def trigger_deliveries(incident_ids: Sequence[int]) -> list[tuple[int, int, int, str]]:
    """(delivery id, incident id, channel id, status) of every trigger attempt of these incidents:
    which channels to send an incident's resolve to, and which of its pages are still waiting. On
    PostgreSQL one statement whatever the number of incidents (`= ANY` of an array), so it is
    prepared once rather than once per length of an `IN` list."""
    if not incident_ids:
        return []
    if connection.vendor != "postgresql":
        return list(
            Delivery.objects.filter(incident_id__in=incident_ids, event=DeliveryEvent.TRIGGER).values_list(
                "pk", "incident_id", "channel_id", "status"
            )
        )
    columns = ", ".join(_column(Delivery, name) for name in ("id", "incident_id", "channel_id", "status"))
    with _cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {_table(Delivery)} WHERE {_column(Delivery, 'incident_id')} = ANY(%s) "
            f"AND {_column(Delivery, 'event')} = %s",
            [list(incident_ids), DeliveryEvent.TRIGGER.value],
        )
        return cursor.fetchall()


def new(model: type[ModelT], **values: object) -> ModelT:
    """`model(**values)` (attribute names, defaults for the rest) built the way Django builds the
    rows it loads, from positional values: a quarter of the CPU of the keyword path, and an
    evaluation opening incidents builds thousands of them and their deliveries."""
    args = [
        values[f.attname] if f.attname in values else f.get_default() for f in model._meta.concrete_fields
    ]
    if unknown := values.keys() - _field_names(model):
        raise TypeError(f"{model.__name__} has no fields {sorted(unknown)}")
    return model(*args)


def insert_all(model: type[Model], objs: Sequence[Model]) -> None:
    """Insert new rows in one statement and set their primary keys, as `bulk_create` does.

    On PostgreSQL the rows travel as one JSON document unpacked by `jsonb_to_recordset`: Django's
    `bulk_create` sends an array per column, which psycopg builds value by value in Python, and that
    was most of what an evaluation opening a dozen incidents and scheduling their pages cost. Values
    are the model fields' Python values (defaults and `auto_now` applied as Django would), so only
    plain ones fit: text, numbers, booleans, UUIDs, aware datetimes and JSON documents.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    plain, computed = _insert_layout(model)
    rows = [
        {
            **{column: getattr(obj, attname) for column, attname in plain},
            **{f.column: f.pre_save(obj, add=True) for f in computed},
        }
        for obj in objs
    ]
    sql = _insert_all_sql(model)
    with _cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(rows).decode()])
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def update_all(model: type[Model], objs: Sequence[Model], names: Sequence[str]) -> None:
    """Write the named fields of each object to its row, as `bulk_update` does (the attributes as they
    are: no `auto_now`). On PostgreSQL one statement per set of names, the rows travelling as
    one JSON document as in `insert_all` (same plain values only): `bulk_update` compiles a `CASE`
    per field and row, which cost more than the update itself."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, names)
        return
    fields = [model._meta.get_field(name) for name in names]
    pk = model._meta.pk.attname
    rows = [{"pk": getattr(obj, pk), **{f.column: getattr(obj, f.attname) for f in fields}} for obj in objs]
    with _cursor() as cursor:
        cursor.execute(_update_all_sql(model, tuple(names)), [orjson.dumps(rows).decode()])


def update_by_pk(
    model: type[Model],
    pks: Sequence[int],
    values: Mapping[str, object],
    where: Mapping[str, Sequence[object]] | None = None,
) -> int:
    """Set `values` (field name -> value) on the rows with these primary keys whose fields named in
    `where` hold one of the values given for them; returns the rows updated. On PostgreSQL one
    prepared statement whatever the number of rows (`= ANY` of an array), elsewhere Django's update."""
    if not pks:
        return 0
    where = where or {}
    if connection.vendor != "postgresql":
        lookups = {f"{name}__in": accepted for name, accepted in where.items()}
        return model._default_manager.filter(pk__in=pks, **lookups).update(**values)
    sql = _update_by_pk_sql(
        model, tuple(values), tuple((name, len(accepted)) for name, accepted in where.items())
    )
    params = [
        *(_value(model, name, value) for name, value in values.items()),
        list(pks),
        *(_value(model, name, value) for name, accepted in where.items() for value in accepted),
    ]
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def locked_open_incidents(cluster_id: uuid.UUID) -> list[Incident]:
    """The cluster's open incidents, newest first, locked until the caller's transaction ends
    (`FOR UPDATE`, where the database has it)."""
    with _cursor() as cursor:
        cursor.execute(
            _open_incidents_sql(connection.vendor),
            [
                _value(Incident, "cluster_id", cluster_id),
                *(_value(Incident, "state", s) for s in OPEN_STATES),
            ],
        )
        return _instances(Incident, _field_names(Incident), cursor.fetchall())


def last_sequences(cluster_id: uuid.UUID, dedup_keys: Sequence[str]) -> dict[str, int]:
    """Dedup key -> the highest sequence of the cluster's incidents with that key (absent if none)."""
    if not dedup_keys:
        return {}
    if connection.vendor != "postgresql":
        return dict(
            Incident.objects.filter(cluster_id=cluster_id, dedup_key__in=dedup_keys)
            .values("dedup_key")
            .annotate(last=Max("sequence"))
            .values_list("dedup_key", "last")
        )
    key = _column(Incident, "dedup_key")
    with _cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, MAX({_column(Incident, 'sequence')}) FROM {_table(Incident)} "
            f"WHERE {_column(Incident, 'cluster_id')} = %s AND {key} = ANY(%s) GROUP BY {key}",
            [_value(Incident, "cluster_id", cluster_id), list(dedup_keys)],
        )
        return dict(cursor.fetchall())


# What routing reads of a channel (`delivery.channels_for`); the configuration, decrypted on load,
# is left out.
ROUTING_FIELDS = ("id", "min_severity", "enabled")


def routing_channels(organization_id: int) -> list[alerting.NotificationChannel]:
    """The organization's enabled channels in their usual order, with `ROUTING_FIELDS` only."""
    with _cursor() as cursor:
        cursor.execute(
            _routing_channels_sql(),
            [
                _value(alerting.NotificationChannel, "organization_id", organization_id),
                _value(alerting.NotificationChannel, "enabled", True),
            ],
        )
        return _instances(alerting.NotificationChannel, ROUTING_FIELDS, cursor.fetchall())


@cache
def _insert_layout(model: type[Model]) -> tuple[tuple[tuple[str, str], ...], tuple[Field, ...]]:
    """(column, attribute) of the fields whose value on insert is their attribute's (`pre_save` is
    then only a getattr's cost, per field and row), and the fields whose `pre_save` computes it."""
    plain, computed = [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        auto = isinstance(f, DateField) and (f.auto_now or f.auto_now_add)
        if not auto and type(f).pre_save in (Field.pre_save, DateField.pre_save, DateTimeField.pre_save):
            plain.append((f.column, f.attname))
        else:
            computed.append(f)
    return tuple(plain), tuple(computed)


@cache
def _insert_all_sql(model: type[Model]) -> str:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    record = ", ".join(f"{connection.ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields)
    return (
        f"INSERT INTO {_table(model)} ({columns}) SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) "
        f"AS r({record}) RETURNING {connection.ops.quote_name(model._meta.pk.column)}"
    )


@cache
def _read_cluster_sql(vendor: str, statuses: int, not_expected_states: int) -> str:
    # The expected brokers' ids as one "1,2,3" string: the one aggregate both vendors have, by name.
    node_id = _column(Broker, "node_id")
    aggregate = (
        f"string_agg(CAST(b.{node_id} AS text), ',')"
        if vendor == "postgresql"
        else f"group_concat(b.{node_id}, ',')"
    )
    cluster_fields = ", ".join(
        f"c.{_column(Cluster, name)}"
        for name in (
            "name",
            "organization_id",
            "min_insync_replicas",
            "collection_interval_seconds",
            "bootstrap_servers",
        )
    )
    c_id, c_organization = _column(Cluster, "id"), _column(Cluster, "organization_id")
    return (
        f"SELECT {cluster_fields}, s.{_column(LagState, 'windows')}, "
        f"EXISTS (SELECT 1 FROM {_table(Incident)} i WHERE i.{_column(Incident, 'cluster_id')} = c.{c_id} "
        f"AND i.{_column(Incident, 'state')} IN ({_placeholders(len(OPEN_STATES))})), "
        f"EXISTS (SELECT 1 FROM {_table(RuleOverrideRecord)} r "
        f"WHERE r.{_column(RuleOverrideRecord, 'cluster_id')} = c.{c_id} "
        f"OR (r.{_column(RuleOverrideRecord, 'cluster_id')} IS NULL "
        f"AND r.{_column(RuleOverrideRecord, 'organization_id')} = c.{c_organization})), "
        f"EXISTS (SELECT 1 FROM {_table(BrokerAnomaly)} a "
        f"WHERE a.{_column(BrokerAnomaly, 'cluster_id')} = c.{c_id} "
        f"AND a.{_column(BrokerAnomaly, 'state')} = %s), "
        f"EXISTS (SELECT 1 FROM {_table(Silence)} m WHERE m.{_column(Silence, 'organization_id')} = "
        f"c.{c_organization} AND (m.{_column(Silence, 'cluster_id')} IS NULL "
        f"OR m.{_column(Silence, 'cluster_id')} = c.{c_id}) AND m.{_column(Silence, 'starts_at')} <= %s "
        f"AND m.{_column(Silence, 'ends_at')} > %s) "
        f"OR EXISTS (SELECT 1 FROM {_table(MaintenanceWindow)} w "
        f"WHERE w.{_column(MaintenanceWindow, 'cluster_id')} = c.{c_id} "
        f"AND w.{_column(MaintenanceWindow, 'starts_at')} <= %s "
        f"AND w.{_column(MaintenanceWindow, 'ends_at')} > %s), "
        f"(SELECT {aggregate} FROM {_table(Broker)} b WHERE b.{_column(Broker, 'cluster_id')} = c.{c_id} "
        f"AND b.{_column(Broker, 'state')} NOT IN ({_placeholders(not_expected_states)})), "
        f"(SELECT h.{_column(ClusterHealth, 'partition_totals')} FROM {_table(ClusterHealth)} h "
        f"WHERE h.{_column(ClusterHealth, 'cluster_id')} = c.{c_id}) "
        f"FROM {_table(Cluster)} c LEFT JOIN {_table(LagState)} s "
        f"ON s.{_column(LagState, 'cluster_id')} = c.{c_id} "
        f"WHERE c.{c_id} = %s AND c.{_column(Cluster, 'status')} IN ({_placeholders(statuses)})"
    )


@cache
def _update_all_sql(model: type[Model], names: tuple[str, ...]) -> str:
    fields = [model._meta.get_field(name) for name in names]
    pk = model._meta.pk
    assignments = ", ".join(
        f"{connection.ops.quote_name(f.column)} = r.{connection.ops.quote_name(f.column)}" for f in fields
    )
    record = ", ".join(
        [
            f"pk {pk.rel_db_type(connection)}",
            *(f"{connection.ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields),
        ]
    )
    return (
        f"UPDATE {_table(model)} AS t SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
        f"WHERE t.{connection.ops.quote_name(pk.column)} = r.pk"
    )


@cache
def _update_by_pk_sql(model: type[Model], names: tuple[str, ...], where: tuple[tuple[str, int], ...]) -> str:
    assignments = ", ".join(f"{_column(model, name)} = %s" for name in names)
    conditions = "".join(f" AND {_column(model, name)} IN ({_placeholders(count)})" for name, count in where)
    return (
        f"UPDATE {_table(model)} SET {assignments} "
        f"WHERE {connection.ops.quote_name(model._meta.pk.column)} = ANY(%s){conditions}"
    )


@cache
def _open_incidents_sql(vendor: str) -> str:
    columns = ", ".join(_column(Incident, name) for name in _field_names(Incident))
    # The ORM's order (the model's): rows are locked, and incidents handled, in that order.
    return (
        f"SELECT {columns} FROM {_table(Incident)} WHERE {_column(Incident, 'cluster_id')} = %s "
        f"AND {_column(Incident, 'state')} IN ({_placeholders(len(OPEN_STATES))}) "
        f"ORDER BY {_column(Incident, 'first_seen_at')} DESC, {_column(Incident, 'id')} DESC"
        + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    )


@cache
def _routing_channels_sql() -> str:
    channel = alerting.NotificationChannel
    columns = ", ".join(_column(channel, name) for name in ROUTING_FIELDS)
    # The model's order; the organization is the same for every row.
    return (
        f"SELECT {columns} FROM {_table(channel)} WHERE {_column(channel, 'organization_id')} = %s "
        f"AND {_column(channel, 'enabled')} = %s ORDER BY {_column(channel, 'name')}"
    )


def _instances(model: type[ModelT], names: Sequence[str], rows: Sequence[Sequence[object]]) -> list[ModelT]:
    """Model instances from rows of the named fields' columns, converted as the ORM converts them.
    The names are in the model's order, as `Model.from_db` takes them."""
    converters = _converters(connection.vendor, model, tuple(names))
    alias = connection.alias
    instances = []
    for row in rows:
        if converters:
            row = list(row)
            for index, expression, functions in converters:
                for function in functions:
                    row[index] = function(row[index], expression, connection)
        instances.append(model.from_db(alias, names, row))
    return instances


@cache
def _converters(vendor: str, model: type[Model], names: tuple[str, ...]) -> list[tuple[int, Col, list[Any]]]:
    """Per column that needs it, what `SQLCompiler.get_converters` would apply to it."""
    if list(names) != [name for name in _field_names(model) if name in names]:
        raise ValueError(f"{names} are not {model.__name__} attributes in the model's order")
    found = []
    for index, name in enumerate(names):
        column = model._meta.get_field(name).get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            found.append((index, column, functions))
    return found


@cache
def _field_names(model: type[Model]) -> tuple[str, ...]:
    """Every column's attribute, in the model's order (what `Model.from_db` takes whole)."""
    return tuple(f.attname for f in model._meta.concrete_fields)


@contextmanager
def pipelined() -> Iterator[None]:
    """Statements sent to PostgreSQL together: a transaction of statements whose results are not
    needed one by one (the collection's writes) costs one or two round trips instead of one per
    statement plus BEGIN and COMMIT. Enter it outside the transaction, so its COMMIT goes with them.
    An error surfaces at the end (or at the first result read) rather than at its statement. Off
    wherever `_cursor` does not prepare."""
    if not _preparing():
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield


def _preparing() -> bool:
    return (
        connection.vendor == "postgresql"
        and getattr(settings, "DATABASE_PREPARED_STATEMENTS", True)
        and not connection.queries_logged
    )


def _cursor() -> CursorWrapper:
    """A cursor on Django's connection (its transaction, its query logging and wrappers) whose
    statements PostgreSQL prepares on first use and reuses on that connection thereafter. Django's
    own cursors bind parameters in the client, which PostgreSQL plans afresh every time.
    `DATABASE_PREPARED_STATEMENTS=0` turns this off (a pooler that cannot keep prepared statements,
    such as PgBouncer before 1.21 in transaction mode). While queries are logged (DEBUG, or a test
    capturing them) the ordinary cursor is used: the log shows a statement with its values, which
    psycopg does not keep for a prepared one."""
    if not _preparing():
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _preparing_cursor_class()(connection.connection)
    _use_connection_timezone(raw)
    return connection.make_cursor(raw)


def _use_connection_timezone(cursor: object) -> None:
    """What Django's `create_cursor` does for its cursors: timestamps read in the connection's zone."""
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if connection.timezone != loader.timezone:
        register_tzloader(connection.timezone, cursor)


@cache
def _preparing_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        """Binds parameters in the server and prepares every statement it runs."""

        def execute(self, query, params=None, *, prepare=None, binary=None):  # type: ignore[no-untyped-def]
            return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)

    return PreparingCursor


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


def _value(model: type[Model], name: str, value: object) -> object:
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)
