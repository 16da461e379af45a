"""A real Celery worker on Redis is killed (SIGKILL) in the middle of an operation; another finishes it.

The operation provisions a `local` cluster (the Tansu development broker) through a backend that blocks
right after starting the broker, so the kill always lands mid-step, after the step's effect. The new
worker takes the operation over once the dead one's heartbeat is stale, runs the interrupted step
again, and every step has taken effect exactly once: one broker process, the one the dead worker
started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.clusters.actions import request_cluster_create
from controlplane.clusters.models import Cluster
from controlplane.clusters.specs import cluster_spec
from controlplane.operations import engine
from controlplane.operations.models import Operation
from provisioning import kafka_config
from provisioning.backends.local import LocalBackend
from tests.operations.blocking_backend import FACTORY, NAME
from tests.support.tenants import SYSTEM, Tenant
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def broker_processes(cluster_id: str) -> list[int]:
    needle = kafka_config.kraft_cluster_id(cluster_id).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_killed_worker_loses_nothing_and_repeats_nothing(
    tenant: Tenant, start_worker: Callable[..., WorkerProcess], tmp_path: Path, settings: Any
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {
        "CONTROLPLANE_EXTRA_BACKENDS": f"{NAME}={FACTORY}",
        "BLOCKING_BACKEND_DIR": str(gate),
        "OPERATION_STALE_AFTER_SECONDS": "3",
    }
    settings.OPERATION_STALE_AFTER_SECONDS = 3  # for the reaper, called from here
    first = start_worker(purge=True, **env)
    cluster, operation = request_cluster_create(
        organization=tenant.organization,
        spec={
            "name": "survivor",
            "backend": NAME,
            "kafka_version": "4.3.2",
            "brokers": 1,
            "racks": ["rack-1"],
            "replication_factor": 1,
            "min_insync_replicas": 1,
            "node_size": {"cpu": 1, "memory_mb": 1024, "disk_gb": 1},
        },
        actor=SYSTEM,
    )
    state_file = Path(settings.LOCAL_BACKEND_STATE_DIR) / str(cluster.id) / "state.json"
    try:
        wait_for((gate / f"{cluster.id}.blocked").exists, timeout=60, what="the worker to block mid-step")
        started_by_first = json.loads(state_file.read_text())["brokers"][0]["pid"]
        assert broker_processes(str(cluster.id)) == [started_by_first]
        steps = {s.name: s.state for s in Operation.objects.get(pk=operation.id).steps.all()}
        assert steps == {
            "validate_spec": "succeeded",
            "start_brokers": "running",
            "wait_for_brokers": "pending",
        }

        first.kill()
        start_worker(**env)
        # The dead worker's heartbeat goes stale; the reaper (beat, in production) hands it over.
        wait_for(engine.reap_stalled_operations, timeout=30, what="the operation to look stalled")
        finished = wait_for(
            lambda: (op := Operation.objects.get(pk=operation.id)).state in ("succeeded", "failed") and op,
            timeout=90,
            what="the new worker to finish the operation",
        )

        assert finished.state == "succeeded", finished.error
        attempts = {s.name: (s.state, s.attempts) for s in finished.steps.all()}
        assert attempts["validate_spec"] == ("succeeded", 1)
        assert attempts["start_brokers"] == ("succeeded", 2)  # interrupted once, then run again
        assert attempts["wait_for_brokers"][0] == "succeeded"
        # The broker the dead worker started was found and kept: no second one, none missing.
        assert json.loads(state_file.read_text())["brokers"][0]["pid"] == started_by_first
        assert broker_processes(str(cluster.id)) == [started_by_first]
        titles = [line.message for line in finished.log_lines.all() if line.message.startswith("step ")]
        assert [t.split(":")[0] for t in titles] == ["step 1", "step 2", "step 3"]
        cluster.refresh_from_db()
        assert cluster.status == "running"
        assert cluster.brokers.get().state == "running"
    finally:
        LocalBackend(Path(settings.LOCAL_BACKEND_STATE_DIR)).delete(
            cluster_spec(Cluster.objects.get(pk=cluster.pk))
        )
