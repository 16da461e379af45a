"""Schemathesis over the live OpenAPI document (/api/schema/): every operation of the REST API, with
generated valid and invalid requests, checked by every check schemathesis has.

What it covers: each operation gets `EXAMPLES` cases from random generation
(`SCHEMATHESIS_EXAMPLES` raises it for a deeper local run) plus schemathesis's coverage cases
(boundaries, missing and wrong-typed values, unexpected methods): about 4,000 requests per run,
counted and asserted to be at least 1,000 at the end. The caller is the
owner of an organization that has real objects to work on: clusters with brokers, operations,
firing incidents, silences, a maintenance window, notification channels, API tokens, a broker
anomaly, a topic on each cluster (whose Kafka is the simulator), and on the first one, which
authenticates its clients, a user and an ACL rule; path parameters are those
objects' ids most of the time, generated ones otherwise. Checks:
every check schemathesis runs on a response: no 5xx, every status code, content type and header
documented, every response body valid against its schema, invalid input refused, valid input
accepted, required headers and authentication not ignored, unsupported methods answered 405 with
`Allow`; and, in a second test, schemathesis's stateful phase: sequences of calls linked by the ids
one answer gives the next, with the checks that need them (an object deleted is gone, one created can
be read). Only `max_response_time` is left out: it needs a wall-clock limit, which this shared
machine cannot promise. Generation is deterministic, so a failure found here reproduces.

Two allowances, said where they are made: deleting a silence or a cluster keeps its record (see
`KEPT_AFTER_DELETE`), and a schema-valid request may break a rule a JSON schema cannot express (a
layout that loses a partition with a rack, a name already taken, an object of another
organization); the API answers those 400 with a message per field, and `positive_data_acceptance`
accepts 400 for the operations listed in `DOMAIN_RULES`.

Runs in-process against Django's WSGI application and the test database (PostgreSQL); deliveries and
operations are recorded, never sent or run (no worker, and on_commit never fires in a test
transaction).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from controlplane.audit.actions import Actor
from controlplane.clusters.models import BrokerAnomaly
from controlplane.dataplane.access import AclRequest, create_acl, create_user
from controlplane.dataplane.actions import TopicRequest, create_topic
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation, OperationLog
from controlplane.targets.actions import register_target
from controlplane.tenancy.actions import create_api_token
from controlplane.tenancy.models import TOKEN_PREFIX_LENGTH, ApiToken, hash_token
from controlplane.wsgi import application
from monitoring.alerting import actions as alerting
from monitoring.alerting.evaluation import evaluate_cluster
from monitoring.alerting.models import Incident
from monitoring.conditions import RULES
from tests.dataplane.conftest import secure
from tests.support.alerting import make_cluster, unreachable_snapshot
from tests.support.simulated_backend import ADMIN_FACTORY, SIMULATION, StandInKafkaCluster
from tests.support.tenants import make_tenant

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "10"))
MINIMUM_CASES = 1000
STATEFUL_EXAMPLES = int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "10"))
# The owner's API token, fixed so that schemathesis knows it (it then also sends requests without it).
TOKEN = "kcp_schemathesis-owner-token"
SYSTEM = Actor.system("schemathesis")
# Operations whose valid-looking input can break a rule no JSON schema expresses (see the docstring).
DOMAIN_RULES = {
    "GET /api/v1/alert-rules/",
    "GET /api/v1/alert-rules/{key}/",
    "GET /api/v1/alert-rules/prometheus/",
    "DELETE /api/v1/alert-rules/{key}/override/",
    "POST /api/v1/tokens/",
    "GET /api/v1/clusters/{id}/metrics-history/",
    "POST /api/v1/clusters/",
    "POST /api/v1/clusters/{id}/scale/",
    "POST /api/v1/clusters/{id}/replace-broker/",
    "POST /api/v1/clusters/{id}/upgrade/",
    "POST /api/v1/silences/",
    "PATCH /api/v1/silences/{id}/",
    "POST /api/v1/maintenance-windows/",
    "PATCH /api/v1/maintenance-windows/{id}/",
    "POST /api/v1/notification-channels/",
    "PATCH /api/v1/notification-channels/{id}/",
    "PUT /api/v1/alert-rules/{key}/override/",
    "POST /api/v1/clusters/{cluster_id}/topics/",
    "PATCH /api/v1/clusters/{cluster_id}/topics/{name}/",
    "POST /api/v1/targets/",
    "PATCH /api/v1/targets/{id}/",
    "POST /api/v1/clusters/{cluster_id}/users/",
    "POST /api/v1/clusters/{cluster_id}/users/{name}/rotate/",
    "POST /api/v1/clusters/{cluster_id}/acls/",
    "POST /api/v1/clusters/{id}/rotate-certificates/",
}

KEPT_AFTER_DELETE = {
    "GET /api/v1/silences/{id}/",
    "GET /api/v1/clusters/{id}/",
    # What belongs to a cluster stays readable while its deletion runs, as the cluster does.
    "GET /api/v1/clusters/{id}/anomalies/",
}

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
        "auth": {"openapi": {"ApiToken": {"bearer": TOKEN}}},
        "operations": [
            {
                # DELETE of these keeps a record on purpose: a silence expires and stays as history; a
                # cluster's deletion is an operation, after which it reads `deleted`.
                "include-name": sorted(KEPT_AFTER_DELETE),
                "checks": {"use_after_free": {"enabled": False}},
            },
            {
                "include-name": sorted(DOMAIN_RULES),
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]
                    }
                },
            },
        ],
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)

# Ids of the real objects, per path parameter, filled by `world` before each operation's cases.
REAL_IDS: dict[str, list[Any]] = {}
CASES: dict[str, Any] = {"count": 0, "operations": set()}


def _real_ids_for(path: str, name: str) -> list[Any]:
    if name in ("cluster_pk", "key", "anomaly_id"):
        return REAL_IDS.get(name, [])
    for kind, parameter in (("topics", "name"), ("users", "name"), ("acls", "id")):
        if name == parameter and f"/{kind}/" in path:
            return REAL_IDS.get(kind, [])
    resource = path.removeprefix("/api/v1/").split("/", 1)[0]
    return REAL_IDS.get(resource, [])


def _well_formed(name: str, value: Any) -> bool:
    """Whether a generated path value is valid for its parameter; invalid ones are kept, since they
    are meant to be refused."""
    if name in ("id", "cluster_pk") and not str(value).isdigit():
        try:
            uuid.UUID(str(value))
        except ValueError:
            return False
        return True
    return bool(re.fullmatch(r"[a-z0-9_]+", str(value)))


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy:
    """Valid paths name real objects most of the time, so that operations act on something."""
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    choices = {
        name: ids
        for name, value in path_parameters.items()
        if (ids := _real_ids_for(path, name)) and _well_formed(name, value)
    }
    if not choices or len(choices) != len(path_parameters):
        return st.just(path_parameters)
    real = st.fixed_dictionaries({name: st.sampled_from(ids) for name, ids in choices.items()})
    return st.one_of(real, real, real, st.just(path_parameters))


@pytest.fixture(scope="module")
def case_count() -> Iterator[dict[str, Any]]:
    yield CASES
    print(f"\nschemathesis: {CASES['count']} cases over {len(CASES['operations'])} operations")
    if len(CASES["operations"]) == len(list(schema.get_all_operations())):
        assert CASES["count"] >= MINIMUM_CASES, CASES["count"]


@pytest.fixture
def world(db: None, settings: Any) -> Iterator[None]:
    """An organization with one of everything, and the owner's API token. The clusters' Kafka is the
    simulator (six brokers over three racks), so the data-plane operations have topics to work on."""
    # Requests here go through the WSGI handler, which closes the connection when one finishes; the
    # test transaction must survive them, as it does under Django's test client.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    tenant = make_tenant("Acme")
    now = timezone.now()
    clusters = [make_cluster(tenant.organization, name=name, brokers=6) for name in ("payments", "orders")]
    settings.KAFKA_ADMIN_FACTORY = ADMIN_FACTORY
    SIMULATION.reset()
    for cluster in clusters:
        SIMULATION.clusters[str(cluster.pk)] = StandInKafkaCluster(
            [(b.node_id, b.rack) for b in cluster.brokers.all()], cluster_id=str(cluster.pk)
        )
        create_topic(
            cluster=cluster,
            request=TopicRequest(name="events", partitions=3, replication_factor=3, config={}),
            actor=SYSTEM,
        )
    secure(clusters[0], "scram", "mtls")
    create_user(cluster=clusters[0], name="alice", mechanism="SCRAM-SHA-512", actor=SYSTEM)
    rule = create_acl(
        cluster=clusters[0],
        request=AclRequest("User:alice", "topic", "events", "literal", ("write",), "allow"),
        actor=SYSTEM,
    )
    operations = [
        Operation.objects.create(
            cluster=clusters[0], kind=kind, state=state, requested_by_name="t", finished_at=now
        )
        for kind, state in [
            (OperationKind.PROVISION, OperationState.SUCCEEDED),
            (OperationKind.RESTART, OperationState.FAILED),
        ]
    ]
    OperationLog.objects.create(operation=operations[0], message="provisioned")
    for cluster in clusters:
        evaluate_cluster(cluster.pk, unreachable_snapshot(cluster, now))
    anomaly = BrokerAnomaly.objects.create(
        cluster=clusters[0],
        node_id=1,
        source="monitoring",
        detail="unreachable",
        detected_at=now,
        last_seen_at=now,
    )
    silence = alerting.create_silence(
        organization=tenant.organization,
        cluster=None,
        rule_key="",
        subject="group:billing-*",
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        comment="migration",
        actor=SYSTEM,
    )
    window = alerting.create_maintenance_window(
        cluster=clusters[1], starts_at=now, ends_at=now + timedelta(hours=1), comment="", actor=SYSTEM
    )
    channels = [
        alerting.create_channel(
            organization=tenant.organization,
            name=kind,
            kind=kind,
            config=config,
            min_severity="warning",
            enabled=True,
            repeat_interval_seconds=None,
            actor=SYSTEM,
        )
        for kind, config in [
            ("webhook", {"url": "https://hooks.example.com/kcp", "secret": "whsec"}),
            ("email", {"to": "oncall@example.com"}),
        ]
    ]
    target = register_target(
        organization=tenant.organization,
        name="prod",
        kind="kubernetes",
        config={"namespace": "kafka"},
        credentials={},
        actor=SYSTEM,
    )
    spare, _ = create_api_token(user=tenant.owner, name="spare", actor=SYSTEM)
    ApiToken.objects.create(
        user=tenant.owner, name="schemathesis", key_hash=hash_token(TOKEN), prefix=TOKEN[:TOKEN_PREFIX_LENGTH]
    )
    REAL_IDS.clear()
    REAL_IDS.update(
        clusters=[str(c.pk) for c in clusters],
        cluster_pk=[str(c.pk) for c in clusters],
        operations=[str(o.pk) for o in operations],
        alerts=list(Incident.objects.values_list("pk", flat=True)),
        anomaly_id=[anomaly.pk],
        silences=[silence.pk],
        **{"maintenance-windows": [window.pk]},
        **{"notification-channels": [c.pk for c in channels]},
        targets=[str(target.pk)],
        tokens=[spare.pk],  # never the one the cases authenticate with
        key=sorted(RULES),
        topics=["events"],
        users=["alice"],
        acls=[str(rule.pk)],
    )
    yield
    SIMULATION.reset()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
# One world per operation, shared by its cases: what one case changes, the next one meets.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_keeps_its_schema(case: schemathesis.Case, world: None, case_count: dict[str, Any]) -> None:
    case_count["count"] += 1
    case_count["operations"].add(case.operation.label)
    case.call_and_validate()


APIWorkflow = schema.as_state_machine()


def test_api_workflows_keep_their_schema(world: None) -> None:
    """Sequences of calls whose links schemathesis infers from the schema (see the module docstring)."""
    APIWorkflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
