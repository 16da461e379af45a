"""A `vm` cluster with client authentication (SCRAM-SHA-512 and mTLS) through the REST API, on real
hosts, with a real Celery worker running the playbooks and real Apache Kafka: provisioned with each
broker's certificate from the cluster's CA, used by a SCRAM user and a certificate user the data-plane
API made (the same code as on every backend), refused to clients without credentials, its broker
certificates rotated under those clients, deleted. Secrets must reach the hosts only through the
Ansible run: none is left in the kept run directories, and the brokers' configuration names key files
that only the Kafka account can read.

The hosts are network namespaces with their own addresses and SSH servers (tests/support/vm_hosts.py);
what they are not (separate machines: one file system, no systemd, Kafka as the SSH user) is said
there and in docs/vm.md.
"""

from __future__ import annotations

import ssl
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from rest_framework.test import APIClient

from controlplane.clusters.models import ClusterSecurity
from provisioning import security
from tests.provisioning.test_vm_backend_end_to_end import register_pool
from tests.support.apache_kafka import wait_for
from tests.support.api_waits import wait_until_ended
from tests.support.tenants import Tenant, token_client
from tests.support.vm_cluster import start_vm_worker
from tests.support.vm_hosts import VmHostLab
from tests.support.workers import WorkerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_hosts,
    # Run by `make test-vm` only: `make test` has the unsecured vm cluster's end-to-end test.
    pytest.mark.vm_playbooks,
    pytest.mark.timeout(1500),
]


def _finished(client: APIClient, operation_id: str, what: str) -> dict[str, Any]:
    return wait_until_ended(
        client, f"/api/v1/operations/{operation_id}/", timeout=1200, interval=2, what=what
    )


def _delivered(settings: dict[str, Any], topic: str) -> KafkaError | None:
    """Produce one message and wait for its answer: None when it was written, else the error."""
    errors: list[KafkaError | None] = []
    producer = Producer({**settings, "message.timeout.ms": 20_000, "socket.timeout.ms": 10_000})
    producer.produce(topic, b"x", on_delivery=lambda error, _: errors.append(error))
    producer.flush(30)
    return errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT)


def _refused(settings: dict[str, Any]) -> bool:
    """Whether the cluster refuses a client with these settings its metadata."""
    admin = AdminClient({**settings, "socket.timeout.ms": 5_000})
    try:
        admin.list_topics(timeout=8)
    except KafkaException:
        return True
    return False


def _served_certificates(bootstrap: str) -> set[str]:
    found = set()
    for server in bootstrap.split(","):
        host, port = server.rsplit(":", 1)
        found.add(ssl.get_server_certificate((host, int(port))))
    return found


def test_a_secured_vm_cluster_authenticates_every_client_and_keeps_its_secrets_off_disk(
    tenant: Tenant,
    vm_hosts: VmHostLab,
    java_home: Path,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    client = token_client(tenant.admin)
    hosts, _ = register_pool(client, vm_hosts, java_home)
    runs = start_vm_worker(start_worker, tmp_path)

    request = {
        "name": "payments",
        "backend": "vm",
        "brokers": 3,
        "racks": ["a", "b", "c"],
        "kafka_version": "4.4.0",
        "node_size": {"cpu": 1, "memory_mb": 768, "disk_gb": 10},
        "client_authentication": ["scram", "mtls"],
    }
    plan = client.post("/api/v1/clusters/?dry_run=true", request, format="json")
    assert plan.status_code == 200, plan.content
    assert "PRIVATE KEY" not in str(plan.json())
    created = client.post("/api/v1/clusters/", request, format="json")
    assert created.status_code == 202, created.content
    cluster_id = created.json()["id"]
    cluster_url = f"/api/v1/clusters/{cluster_id}/"
    provisioned = _finished(client, created.json()["operation"]["id"], "the secured cluster's provisioning")
    assert provisioned["state"] == "succeeded", provisioned["error"]
    cluster = client.get(cluster_url).json()
    config = cluster["client_config"]
    listeners = {item["authentication"]: item for item in config["listeners"]}
    assert listeners["scram"]["bootstrap_servers"] == ",".join(f"{h.address}:9092" for h in hosts)
    assert listeners["mtls"]["bootstrap_servers"] == ",".join(f"{h.address}:9095" for h in hosts)
    ca_pem = config["ca_pem"]
    scram_bootstrap, mtls_bootstrap = (listeners[a]["bootstrap_servers"] for a in ("scram", "mtls"))

    # The data plane through the API, as on every backend: a topic, a SCRAM user with an ACL.
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    made = client.post(f"{cluster_url}topics/", {"name": topic, "partitions": 3}, format="json")
    assert made.status_code == 201, made.content
    alice = client.post(
        f"{cluster_url}users/", {"name": "alice", "mechanism": "SCRAM-SHA-512"}, format="json"
    )
    assert alice.status_code == 201, alice.content
    bob = client.post(f"{cluster_url}users/", {"name": "bob", "mechanism": "mTLS"}, format="json")
    assert bob.status_code == 201, bob.content
    for principal in ("User:alice", "User:bob"):
        granted = client.post(
            f"{cluster_url}acls/",
            {
                "principal": principal,
                "resource_type": "topic",
                "resource_name": topic,
                "pattern_type": "literal",
                "operations": ["write", "describe"],
                "permission": "allow",
            },
            format="json",
        )
        assert granted.status_code == 201, granted.content
    alice_settings = {
        "bootstrap.servers": scram_bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": alice.json()["password"],
        "ssl.ca.pem": ca_pem,
    }
    bob_settings = {
        "bootstrap.servers": mtls_bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.pem": ca_pem,
        "ssl.certificate.pem": bob.json()["certificate_pem"],
        "ssl.key.pem": bob.json()["private_key_pem"],
    }
    wait_for(lambda: _delivered(alice_settings, topic) is None, 60, what="alice writing over SCRAM and TLS")
    wait_for(lambda: _delivered(bob_settings, topic) is None, 60, what="bob writing with his certificate")

    # Without credentials, with a wrong password, or without a client certificate: no way in.
    assert _refused({"bootstrap.servers": scram_bootstrap})
    assert _refused({**alice_settings, "sasl.password": "not-alices-password"})
    assert _refused(
        {k: v for k, v in bob_settings.items() if k not in ("ssl.certificate.pem", "ssl.key.pem")}
    )

    # Secrets reached the hosts only through the runs: the kept run directories hold none, the
    # brokers' configuration holds none, and the key files are the Kafka account's alone.
    admin_password = ClusterSecurity.objects.get(cluster_id=cluster_id).secrets["admin_password"]
    kept = [path for path in runs.rglob("*") if path.is_file()]
    assert any(path.name == "hosts.yml" for path in kept)
    leaked = [
        path
        for path in kept
        if (text := path.read_text(errors="replace")) and ("PRIVATE KEY" in text or admin_password in text)
    ]
    assert leaked == []
    for host in hosts:
        properties = (host.root / "etc/kafka/server.properties").read_text()
        assert "PRIVATE KEY" not in properties and "PLAINTEXT" not in properties
        key = host.root / "etc/kafka/tls/broker.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700

    # Rotation: every broker restarts with a new certificate from the same CA (the playbook's safety
    # checks reaching the cluster as the broker, by certificate); clients keep working.
    before = _served_certificates(scram_bootstrap)
    rotation = client.post(f"{cluster_url}rotate-certificates/", {}, format="json")
    assert rotation.status_code == 202, rotation.content
    rotated = _finished(client, rotation.json()["operation"]["id"], "the certificate rotation")
    assert rotated["state"] == "succeeded", rotated["error"]
    after = _served_certificates(scram_bootstrap)
    assert len(after) == 3 and not after & before
    assert all(security.signed_by(certificate, ca_pem) for certificate in after)
    assert _delivered(alice_settings, topic) is None
    assert _delivered(bob_settings, topic) is None

    # Kafka's tools on a host reach the cluster as the broker, by its certificate, as a decommission
    # unregisters a node; asked about a node that never was, Kafka answers (it let the tool in).
    host = hosts[0]
    unregister = host.ssh(
        f"JAVA_HOME={java_home} {host.root}/opt/kafka/releases/4.4.0/bin/kafka-cluster.sh unregister "
        f"--bootstrap-server {host.address}:9094 --id 99 --config {host.root}/etc/kafka/tools.properties",
        check=False,
        timeout=120,
    )
    assert "is not currently registered" in unregister.stderr, unregister.stderr

    deleted = client.delete(cluster_url)
    assert deleted.status_code == 202
    wait_for(lambda: client.get(cluster_url).status_code == 404, 600, interval=2, what="the deletion")
    for host in hosts:
        assert not (host.root / "etc/kafka").exists()
