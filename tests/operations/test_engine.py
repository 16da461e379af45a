"""The durable operations engine: retries, failures, timeouts, cancellation, leases and the reaper.

Driven in-process against the simulated cluster stand-in; the worker that dies for real is in
test_worker_loss.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from controlplane.clusters.actions import request_restart, request_scale
from controlplane.clusters.models import Broker, Cluster
from controlplane.clusters.specs import get_backend
from controlplane.operations import actions, engine, tasks
from controlplane.operations.actions import request_cancel
from controlplane.operations.models import Operation, OperationStep
from provisioning.backends.base import BackendCancelled, BackendError, BackendUnavailableError
from tests.operations.conftest import ClusterFactory, Driver
from tests.support.simulated_backend import SimulatedBackend, Simulation
from tests.support.tenants import SYSTEM, Tenant, token_client


def test_transient_failures_are_retried_with_exponential_backoff_then_succeed(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, settings: Any
) -> None:
    settings.OPERATION_RETRY_BASE_SECONDS = 2
    cluster, _ = simulated_cluster(brokers=3)
    simulation.fail_next("provision", *(BackendUnavailableError("cloud API timed out") for _ in range(3)))

    operation = driver.run(request_scale(cluster=cluster, brokers=6, actor=SYSTEM).id)

    assert operation.state == "succeeded", operation.error
    add = operation.steps.get(name="add_brokers")
    assert (add.transient_failures, add.attempts, add.error) == (3, 4, None)
    delays = [countdown for operation_id, countdown in driver.history if operation_id == operation.id][:3]
    for retry, delay in enumerate(delays):
        assert 2 * 2**retry * 0.8 <= delay <= 2 * 2**retry * 1.2
    warnings = [line.message for line in operation.log_lines.filter(level="warning")]
    assert [w.split(":")[0] for w in warnings] == [f"transient failure {n}/8" for n in (1, 2, 3)]
    assert sorted(Broker.objects.filter(cluster=cluster).values_list("node_id", flat=True)) == list(range(6))


def test_a_step_failing_transiently_too_often_fails_the_operation(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, settings: Any
) -> None:
    settings.OPERATION_MAX_TRANSIENT_RETRIES = 2
    cluster, _ = simulated_cluster(brokers=3)
    simulation.fail_next("restart_broker", *(BackendUnavailableError("host unreachable") for _ in range(3)))

    operation = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert operation.state == "failed"
    assert operation.error["code"] == "retries_exhausted"
    assert "kept failing after 2 retries: host unreachable" in operation.error["message"]


def test_a_permanent_failure_is_shown_by_the_api_and_marks_the_cluster(
    tenant: Tenant, simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, _ = simulated_cluster(brokers=3)
    simulation.fail_next("restart_broker", BackendError("broker 1's host is in maintenance mode"))
    client = token_client(tenant.admin)
    started = client.post(f"/api/v1/clusters/{cluster.id}/restart/", {}, format="json").json()

    driver.run(started["operation"]["id"])

    shown = client.get(f"/api/v1/operations/{started['operation']['id']}/").json()
    assert shown["state"] == "failed"
    assert shown["error"] == {
        "code": "BackendError",
        "message": "broker 1's host is in maintenance mode",
        "details": {},
    }
    assert [(s["name"], s["state"]) for s in shown["steps"]] == [
        ("restart_brokers", "failed"),
        ("elect_leaders", "cancelled"),
    ]
    assert shown["steps"][0]["error"]["message"] == "broker 1's host is in maintenance mode"
    assert any(line["level"] == "error" and "maintenance mode" in line["message"] for line in shown["log"])
    cluster_body = client.get(f"/api/v1/clusters/{cluster.id}/").json()
    assert cluster_body["status"] == "degraded"
    assert cluster_body["status_reason"] == "Rolling restart failed: broker 1's host is in maintenance mode"


def test_a_polling_step_that_outlives_its_timeout_fails(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    cluster, _ = simulated_cluster(brokers=3)
    simulation.registration_delay = 10**6  # the new brokers never register
    operation = request_scale(cluster=cluster, brokers=6, actor=SYSTEM)
    driver.run(operation.id, until=lambda op: op.steps.get(name="wait_for_new_brokers").attempts >= 2)
    OperationStep.objects.filter(operation=operation, name="wait_for_new_brokers").update(
        started_at=timezone.now() - timedelta(seconds=601)
    )

    operation = driver.run(operation.id)

    assert operation.state == "failed"
    assert operation.error["code"] == "step_timeout"
    assert "did not finish within 600 s" in operation.error["message"]


def test_cancellation_stops_between_steps(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, kafka = simulated_cluster(brokers=3)
    operation = request_scale(cluster=cluster, brokers=6, actor=SYSTEM)
    provision = SimulatedBackend.provision

    def provision_then_cancel(self: SimulatedBackend, spec: Any) -> Any:
        request_cancel(operation=Operation.objects.get(pk=operation.id), actor=SYSTEM)
        return provision(self, spec)

    monkeypatch.setattr(SimulatedBackend, "provision", provision_then_cancel)

    operation = driver.run(operation.id)

    assert operation.state == "cancelled"
    steps = list(operation.steps.all())
    assert [s.state for s in steps] == ["succeeded"] + ["cancelled"] * (len(steps) - 1)
    assert kafka.submissions == [] and kafka.throttle_changes == []
    assert "cancelled on request before the next step" in [line.message for line in operation.log_lines.all()]
    cluster.refresh_from_db()
    assert cluster.status == "running"


def test_an_operation_on_a_backend_no_longer_configured_fails_instead_of_hanging(
    simulated_cluster: ClusterFactory, driver: Driver, settings: Any
) -> None:
    cluster, _ = simulated_cluster(brokers=3)
    settings.CONTROLPLANE_BACKENDS = {"local": settings.CONTROLPLANE_BACKENDS["local"]}
    get_backend.cache_clear()

    operation = driver.run(request_restart(cluster=cluster, actor=SYSTEM).id)

    assert operation.state == "failed"
    assert operation.error["code"] == "backend_not_available"


def test_one_worker_owns_an_operation_until_its_heartbeat_goes_stale(
    simulated_cluster: ClusterFactory, driver: Driver
) -> None:
    cluster, _ = simulated_cluster(brokers=3)
    operation = request_restart(cluster=cluster, actor=SYSTEM)
    step = operation.steps.get(position=0)
    minute = timedelta(seconds=60)

    first = actions.claim_operation(operation.id, stale_after=minute)
    assert first is not None
    assert actions.claim_operation(operation.id, stale_after=minute) is None
    Operation.objects.filter(pk=operation.id).update(heartbeat_at=timezone.now() - 2 * minute)
    second = actions.claim_operation(operation.id, stale_after=minute)

    assert second not in (None, first)
    assert actions.heartbeat(operation.id, first) is False
    with pytest.raises(actions.StaleOperation):
        actions.mark_step_running(step, first)
    actions.mark_step_running(step, second)
    # A message whose worker died is delivered again rather than lost.
    assert tasks.run_operation.acks_late and tasks.run_operation.reject_on_worker_lost


def test_the_reaper_dispatches_operations_nobody_is_running(
    simulated_cluster: ClusterFactory, driver: Driver, settings: Any
) -> None:
    settings.OPERATION_STALE_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(seconds=120)
    clusters = [simulated_cluster(name=f"c{i}", brokers=3)[0] for i in range(5)]
    stale, waiting_overdue, pending_old, fresh, waiting = (
        request_restart(cluster=c, actor=SYSTEM) for c in clusters
    )
    lease = actions.claim_operation(stale.id, stale_after=timedelta(seconds=60))
    Operation.objects.filter(pk=stale.id).update(heartbeat_at=old)
    Operation.objects.filter(pk=waiting_overdue.id).update(state="running", wake_at=old)
    Operation.objects.filter(pk=pending_old.id).update(created_at=old)
    actions.claim_operation(fresh.id, stale_after=timedelta(seconds=60))
    Operation.objects.filter(pk=waiting.id).update(
        state="running", wake_at=timezone.now() + timedelta(seconds=30)
    )

    driver.dispatches.clear()
    reaped = engine.reap_stalled_operations()

    assert set(reaped) == {stale.id, waiting_overdue.id, pending_old.id}
    assert [operation_id for operation_id, _ in driver.dispatches] == reaped
    assert lease is not None
    # The reaped one is taken over and finished by whoever runs it next.
    assert driver.run(stale.id).state == "succeeded"
    assert Cluster.objects.get(pk=clusters[0].pk).status == "running"


def test_an_operations_end_and_its_clusters_status_commit_together(
    simulated_cluster: ClusterFactory, driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dying after the operation's final write but before the cluster's would leave the
    cluster `updating` for good; both are one transaction, so either both happen or neither."""
    from controlplane.operations import outcomes

    cluster, _ = simulated_cluster(brokers=3)
    operation = request_restart(cluster=cluster, actor=SYSTEM)

    def die(operation_id: Any) -> None:
        raise SystemExit("worker killed between the two writes")

    monkeypatch.setattr(actions, "apply_operation_outcome", die)
    with pytest.raises(SystemExit):
        driver.run(operation.id)
    operation.refresh_from_db()
    assert operation.state == "running", "the operation's end rolled back with the cluster's status"
    assert Cluster.objects.get(pk=cluster.pk).status == "updating"

    monkeypatch.setattr(actions, "apply_operation_outcome", outcomes.apply_operation_outcome)
    actions.release_until(operation.id, operation.lease, timezone.now())
    assert driver.run(operation.id).state == "succeeded"
    assert Cluster.objects.get(pk=cluster.pk).status == "running"


def test_a_backend_call_stopped_for_a_cancellation_ends_the_operation_cancelled(
    simulated_cluster: ClusterFactory, driver: Driver, simulation: Simulation
) -> None:
    """A long backend call (a playbook run) asks its events sink whether to stop, and stops."""
    cluster, _ = simulated_cluster(brokers=3)
    operation = request_restart(cluster=cluster, actor=SYSTEM)
    step = operation.steps.get(position=0)
    assert not engine.StepEvents(operation.id, step).should_stop()
    Operation.objects.filter(pk=operation.pk).update(cancel_requested_at=timezone.now())
    assert engine.StepEvents(operation.id, step).should_stop()
    Operation.objects.filter(pk=operation.pk).update(cancel_requested_at=None)
    simulation.fail_next("restart_broker", BackendCancelled("rolling_restart.yml was stopped"))

    operation = driver.run(operation.id)

    assert operation.state == "cancelled"
    messages = [line.message for line in operation.log_lines.all()]
    assert "cancelled on request during the step: rolling_restart.yml was stopped" in messages
