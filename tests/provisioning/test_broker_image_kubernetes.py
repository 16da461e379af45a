"""The broker image and the `kubernetes` backend agree: every pod the backend renders starts through
the image's entrypoint.

For each StatefulSet of a rendered cluster (combined controllers, and dedicated ones), the pod is
mounted as the kubelet would mount it (the ConfigMap's keys as files in the container's mount path,
the Secret's value in the environment) and the real entrypoint runs on it, with Kafka's two scripts
replaced by stubs that record what they were given. What this proves: the mount paths, variables, ids,
racks, cluster id, initial controllers, data directory, user and metrics port of both halves match.
What it does not: that Kafka then runs (test_broker_image.py starts a real broker through the
entrypoint), or that the pods schedule (the backend's own tests, on the real API server).
"""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provisioning import security
from provisioning.backends.base import SecuritySpec
from provisioning.kubernetes.layout import layout_for_new_cluster
from provisioning.kubernetes.render import TLS_DIR, NodeTls, nodes, render
from provisioning.kubernetes.target import KubernetesTarget
from tests.provisioning.test_broker_image import DOCKERFILE, ENTRYPOINT, EXPORTER_RULES
from tests.support.apache_kafka import kafka_spec

IMAGE_CONFIG_DIR = "/etc/kafka/config"  # the Dockerfile's KAFKA_CONFIG_DIR

STUB_STORAGE = """#!/bin/sh
printf '%s\\n' "$@" > "$STUB_OUT/format-args"
"""
STUB_SERVER = """#!/bin/sh
cp "$1" "$STUB_OUT/server.properties"
printf '%s' "$KAFKA_OPTS" > "$STUB_OUT/kafka-opts"
"""


def _stub_kafka(home: Path) -> Path:
    (home / "bin").mkdir(parents=True)
    for name, text in (("kafka-storage.sh", STUB_STORAGE), ("kafka-server-start.sh", STUB_SERVER)):
        (home / "bin" / name).write_text(text)
        (home / "bin" / name).chmod(0o755)
    return home


def _properties(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")
    )


def _image_user() -> int:
    match = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert match
    return int(match.group(1))


@pytest.mark.parametrize(
    ("brokers", "authentication"),
    [(3, ()), (6, ()), (3, ("scram", "mtls"))],
    ids=["combined-controllers", "dedicated-controllers", "secured"],
)
def test_every_rendered_pod_starts_through_the_entrypoint(
    tmp_path: Path, brokers: int, authentication: tuple[str, ...]
) -> None:
    spec = kafka_spec(brokers=brokers, racks=("a", "b", "c"))
    target = KubernetesTarget(name="test")
    layout = layout_for_new_cluster(spec)
    tls = None
    if authentication:
        ca = security.new_certificate_authority(spec.name)
        spec = replace(
            spec,
            security=SecuritySpec(
                authentication, ca.certificate_pem, ca.private_key_pem, security.new_password()
            ),
        )
        tls = {
            (node.role, node.node_id): NodeTls(
                "issued", security.issue_broker_certificate(spec.security, ["broker.test"])
            )
            for node in nodes(spec, layout)
        }
    objects = render(spec, target, layout, tls=tls)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    statefulsets = by_kind["StatefulSet"]
    assert len(statefulsets) == brokers + (len(layout.controllers) if layout.dedicated else 0)
    kafka_home = _stub_kafka(tmp_path / "kafka")
    agent = tmp_path / "agent.jar"
    agent.write_bytes(b"")
    formatted_controllers = set()

    for name, statefulset in statefulsets.items():
        pod = statefulset["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env: dict[str, str] = {}
        for variable in container["env"]:
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                data = by_kind["Secret"][ref["name"]]["data"][ref["key"]]
                env[variable["name"]] = base64.b64decode(data).decode()

        # The pod as the kubelet lays it out: the ConfigMap where the image looks for it.
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        config_volume = next(v for v in pod["spec"]["volumes"] if "configMap" in v)
        assert mounts[config_volume["name"]] == env.get("KAFKA_CONFIG_DIR", IMAGE_CONFIG_DIR), name
        config_dir = tmp_path / name / "config"
        config_dir.mkdir(parents=True)
        for key, text in by_kind["ConfigMap"][config_volume["configMap"]["name"]]["data"].items():
            (config_dir / key).write_text(text)
        context = pod["spec"]["securityContext"]
        assert context.get("runAsUser", _image_user()) == _image_user()
        assert context["fsGroup"] == _image_user()  # the data volume must be writable by the image's user

        out = tmp_path / name / "out"
        out.mkdir()
        result = subprocess.run(
            ["bash", str(ENTRYPOINT)],
            env={
                **env,
                "PATH": "/usr/bin:/bin",
                "HOSTNAME": f"{name}-0",  # a StatefulSet pod's host name
                "KAFKA_HOME": str(kafka_home),
                "KAFKA_CONFIG_DIR": str(config_dir),
                "KAFKA_RUNTIME_DIR": str(tmp_path / name / "run"),
                "KAFKA_METRICS_PORT": "9404",  # the image's default
                "JMX_EXPORTER_JAR": str(agent),
                "JMX_EXPORTER_CONFIG": str(EXPORTER_RULES),
                "STUB_OUT": str(out),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"

        started = _properties((out / "server.properties").read_text())
        assert started["node.id"] == env["KAFKA_NODE_ID"]
        assert started.get("broker.rack", env["KAFKA_RACK"]) == env["KAFKA_RACK"]
        assert mounts["data"] in started["log.dirs"].split(",")  # the volume holds the data
        format_args = (out / "format-args").read_text().splitlines()
        assert format_args[format_args.index("-t") + 1] == env["KAFKA_CLUSTER_ID"]
        if "--initial-controllers" in format_args:
            assert (
                format_args[format_args.index("--initial-controllers") + 1]
                == env["KAFKA_INITIAL_CONTROLLERS"]
            )
            formatted_controllers.add(int(env["KAFKA_NODE_ID"]))
        annotations = pod["metadata"]["annotations"]
        assert f"={annotations['prometheus.io/port']}:" in (out / "kafka-opts").read_text()
        if spec.security is not None:
            # The control plane's credential reaches the first metadata; the key files are named, not
            # copied, and Kafka's own file references pass the entrypoint's placeholders untouched.
            assert format_args[format_args.index("--add-scram") + 1] == env["KAFKA_ADD_SCRAM"]
            assert spec.security.admin_password in env["KAFKA_ADD_SCRAM"]
            assert spec.security.admin_password not in result.stderr
            assert mounts["tls"] == TLS_DIR
            assert started["ssl.keystore.key"] == f"${{tls:{TLS_DIR}:broker.key}}"

    # Under a dynamic quorum exactly the voters are formatted with the initial voter set.
    assert formatted_controllers == set(layout.controllers)
