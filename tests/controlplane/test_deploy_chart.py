"""The Helm chart (controlplane/deploy/helm/kafka-control-plane): rendered by the real `helm` (built
from its Go module, tests.support.helm_binary), every object valid for every supported Kubernetes
release (the official schemas, strict), and installed and upgraded with `helm` on the tests' real
kube-apiserver (tests.support.kube_apiserver; kwok makes pods Ready and Job pods complete).

What users of such a chart care about is asserted on what helm renders: one beat, replaced with
Recreate; every pod that needs the schema waiting for the migrations its own revision's Job applies;
no credential in the manifests; probes on the web pods; workers for every queue; the role for
in-cluster Kubernetes targets covering exactly what the kubernetes backend does (derived from the
backend's own list, then confirmed by the product's connection check and a cluster provisioned and
deleted with the release's service account token). kwok runs no container, so that the pods' processes
start is proven by the image's tests (tests/controlplane/test_deploy_image.py), not here; the
ServiceMonitor is checked by shape only (its CRD is the Prometheus Operator's, not installed here).
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.conf import settings
from kubernetes import client as k8s

from provisioning.kubernetes import SUPPORTED_KUBERNETES_VERSIONS
from provisioning.kubernetes import render as kube_render
from provisioning.kubernetes.api import KINDS
from provisioning.kubernetes.backend import KubernetesBackend
from provisioning.kubernetes.connection import check_kubernetes_connection, required_permissions
from provisioning.kubernetes.layout import DEDICATED_CONTROLLERS_FROM, layout_for_new_cluster
from provisioning.kubernetes.target import KubernetesTarget
from tests.provisioning.test_kubernetes_render import make_spec
from tests.support.apache_kafka import wait_for
from tests.support.helm_binary import ensure as ensure_helm
from tests.support.kube_apiserver import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "controlplane" / "deploy" / "helm" / "kafka-control-plane"
SECRET_ENV = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRETS_ENCRYPTION_KEYS", "METRICS_BEARER_TOKEN"}
# Every toggle on: what a full installation renders.
EVERYTHING = [
    "--set",
    "ingress.enabled=true",
    "--set",
    "ingress.className=nginx",
    "--set",
    "ingress.hosts[0].host=kafka.example.com",
    "--set",
    "ingress.tls[0].secretName=kafka-example-com",
    "--set",
    "ingress.tls[0].hosts[0]=kafka.example.com",
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "kubernetesTargets.rbac.create=true",
    "--set",
    "imagePullSecrets[0].name=registry",
    "--set",
    "migrations.ttlSecondsAfterFinished=86400",
    "--set",
    "migrations.nodeSelector.pool=system,web.nodeSelector.pool=web",
]


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_helm()


def run_helm(helm: Path, *args: str, kubeconfig: Path | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def render(helm: Path, *args: str, namespace: str = "kcp") -> list[dict[str, Any]]:
    text = run_helm(helm, "template", "kcp", str(CHART), "--namespace", namespace, *args)
    return [obj for obj in yaml.safe_load_all(text) if obj]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{o['kind']} {o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    ]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


# --- rendering -------------------------------------------------------------------------------------------


def test_the_chart_is_lint_clean(helm: Path) -> None:
    run_helm(helm, "lint", "--strict", str(CHART))
    run_helm(helm, "lint", "--strict", str(CHART), *EVERYTHING)


def test_the_chart_claims_the_kubernetes_releases_it_is_validated_against() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={SUPPORTED_KUBERNETES_VERSIONS[0]}.0-0"


@pytest.fixture(scope="module")
def every_shape(helm: Path) -> list[dict[str, Any]]:
    """One of each object the chart can render: everything on, with namespaced and cluster-wide roles."""
    wide = ["--set", "kubernetesTargets.rbac.create=true,kubernetesTargets.rbac.clusterWide=true"]
    objects = render(helm, *EVERYTHING) + of_kind(render(helm, *wide), "ClusterRole")
    return objects + of_kind(render(helm, *wide), "ClusterRoleBinding")


def test_mistyped_values_are_refused_before_anything_is_rendered(helm: Path) -> None:
    """values.schema.json: a misspelt key or a worker group missing its queues fails `helm template`
    (and `helm install`) saying where, instead of being silently ignored."""
    for args, message in (
        (["--set", "web.replica=3"], "additional properties 'replica' not allowed"),
        (["--set", "workers.operations.queues=null"], "missing property 'queues'"),
        (["--set", "config.logLevel=LOUD"], "/config/logLevel"),
    ):
        result = subprocess.run(
            [str(helm), "template", "kcp", str(CHART), *args], capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)


@pytest.mark.parametrize("version", SUPPORTED_KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_every_supported_kubernetes(
    every_shape: list[dict[str, Any]], version: str
) -> None:
    assert {"Deployment", "Job", "Ingress", "Role", "ClusterRole", "PodDisruptionBudget"} <= {
        o["kind"] for o in every_shape
    }
    for obj in every_shape:
        if obj["kind"] == "ServiceMonitor":
            continue  # a CRD's kind: not in Kubernetes' schemas
        kubernetes_validate.validate(obj, f"{version}.0", strict=True)


def test_no_credential_is_in_the_manifests(helm: Path) -> None:
    """With default values the chart creates no Secret and every credential comes from the Secret the
    operator made; the settings' ConfigMap holds none."""
    objects = render(helm)
    assert of_kind(objects, "Secret") == []
    for where, pod in pod_specs(objects):
        for container in containers(pod):
            env = {e["name"]: e for e in container["env"]}
            assert set(env) >= SECRET_ENV, (where, container["name"])
            for name in SECRET_ENV:
                assert "value" not in env[name], (where, name)
                assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "kcp-kafka-control-plane"
    (config,) = of_kind(objects, "ConfigMap")
    assert not SECRET_ENV & set(config["data"])
    text = yaml.safe_dump_all(objects)
    assert "postgres://" not in text and "redis://" not in text
    # Nor can one be slipped in as a plain setting.
    result = subprocess.run(
        [
            str(helm),
            "template",
            "kcp",
            str(CHART),
            "--set",
            "config.extraEnv.DATABASE_URL=postgres://u:p@db/kcp",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "would put a credential into a ConfigMap" in result.stderr


def test_beat_is_a_single_replica_replaced_with_recreate(helm: Path) -> None:
    for values in ([], EVERYTHING):
        (beat,) = [
            d for d in of_kind(render(helm, *values), "Deployment") if d["metadata"]["name"].endswith("-beat")
        ]
        assert beat["spec"]["replicas"] == 1
        assert beat["spec"]["strategy"] == {"type": "Recreate"}
        assert beat["spec"]["template"]["spec"]["containers"][0]["args"] == ["beat"]


def test_every_pod_that_needs_the_schema_waits_for_this_revisions_migrations(helm: Path) -> None:
    objects = render(helm, "--set", "image.tag=1.2.3")
    (job,) = of_kind(objects, "Job")
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "kafka-control-plane:1.2.3"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    # A plain Job, not a hook: hooks deadlock under `helm --wait` and Argo CD.
    assert not any(key.startswith("helm.sh/hook") for key in job["metadata"].get("annotations", {}))
    # Named per revision (helm template renders revision 1) and per image (Argo CD renders every
    # revision as 1): a Job's pod template cannot change, so each revision gets its own.
    assert job["metadata"]["name"].startswith("kcp-kafka-control-plane-migrate-1-")
    other_image = render(helm, "--set", "image.tag=1.2.4")
    assert of_kind(other_image, "Job")[0]["metadata"]["name"] != job["metadata"]["name"]

    deployments = of_kind(objects, "Deployment")
    assert {d["metadata"]["name"].removeprefix("kcp-kafka-control-plane-") for d in deployments} == {
        "web",
        "beat",
        *(f"worker-{group}" for group in ("operations", "monitoring")),
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        (wait,) = pod["initContainers"]
        assert wait["args"] == ["wait-for-migrations"]
        assert wait["image"] == image == pod["containers"][0]["image"]


def test_web_is_replicated_probed_and_budgeted(helm: Path) -> None:
    objects = render(helm)
    (web,) = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-web")]
    assert web["spec"]["replicas"] >= 2
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    # Every replicated component has a disruption budget selecting exactly its pods.
    budgets = {p["metadata"]["name"]: p for p in of_kind(objects, "PodDisruptionBudget")}
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        if name.endswith("-beat"):
            assert name not in budgets  # one replica: a budget would block every node drain
            continue
        assert budgets[name]["spec"]["selector"] == deployment["spec"]["selector"]
        assert budgets[name]["spec"]["maxUnavailable"] == 1


def test_workers_consume_every_queue_as_make_run_groups_them(helm: Path) -> None:
    objects = render(helm)
    workers = {
        d["metadata"]["name"].removeprefix("kcp-kafka-control-plane-worker-"): d
        for d in of_kind(objects, "Deployment")
        if "-worker-" in d["metadata"]["name"]
    }
    queues = {
        group: d["spec"]["template"]["spec"]["containers"][0]["args"][1].split(",")
        for group, d in workers.items()
    }
    operations, *others = settings.TASK_QUEUES
    assert queues == {"operations": [operations], "monitoring": others}
    for deployment in workers.values():
        # Long enough for Celery's warm shutdown of the longest task a group runs routinely.
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 150
    # A queue no group consumes fails the render, naming it.
    for queue in settings.TASK_QUEUES:
        groups = {g: [q for q in qs if q != queue] or ["x"] for g, qs in queues.items()}
        args = [
            arg for g, qs in groups.items() for arg in ("--set", f"workers.{g}.queues={{{','.join(qs)}}}")
        ]
        result = subprocess.run(
            [str(helm), "template", "kcp", str(CHART), *args], capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0
        assert f"no worker group consumes the {queue} queue" in result.stderr


def test_pods_run_unprivileged_on_a_read_only_root(helm: Path) -> None:
    for where, pod in pod_specs(render(helm, *EVERYTHING)):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        mounts = set()
        for container in containers(pod):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], where
            mounts |= {m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"/tmp", "/var/lib/kafka-control-plane"}, where


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _group(kind: str) -> str:
    prefix = KINDS[kind].prefix  # /api/v1 or /apis/<group>/<version>
    return "" if prefix.startswith("/api/") else prefix.split("/")[2]


def test_the_targets_role_covers_exactly_what_the_kubernetes_backend_does(helm: Path) -> None:
    needed = {
        (_group(kind), KINDS[kind].plural, verb)
        for kind, verbs in required_permissions().items()
        for verb in verbs
    }
    # The backend's list is itself held to what render.py renders: every kind of a small cluster and
    # of one with dedicated controllers is applied (created and patched).
    for spec in (make_spec(1), make_spec(DEDICATED_CONTROLLERS_FROM)):
        target = KubernetesTarget(name="t")
        for obj in kube_render.render(spec, target, layout_for_new_cluster(spec)):
            for verb in ("create", "patch", "get", "list", "delete"):
                assert (_group(obj["kind"]), KINDS[obj["kind"]].plural, verb) in needed

    assert of_kind(render(helm), "Role") == []  # off unless asked for
    namespaced = render(
        helm,
        "--set",
        "kubernetesTargets.rbac.create=true",
        "--set",
        "kubernetesTargets.rbac.namespaces={kafka,kafka-prod}",
    )
    roles = of_kind(namespaced, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {"kafka", "kafka-prod"}
    for role in roles:
        assert _rules(role) == needed
    for binding in of_kind(namespaced, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kcp-kafka-control-plane", "namespace": "kcp"}
        ]
    wide = render(helm, "--set", "kubernetesTargets.rbac.create=true,kubernetesTargets.rbac.clusterWide=true")
    (cluster_role,) = of_kind(wide, "ClusterRole")
    assert _rules(cluster_role) == needed
    assert of_kind(wide, "Role") == []


def test_prometheus_finds_and_authenticates_to_the_web_pods(helm: Path) -> None:
    objects = render(helm, *EVERYTHING)
    (web,) = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-web")]
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics" and annotations["prometheus.io/port"] == "8000"
    (monitor,) = of_kind(objects, "ServiceMonitor")
    (service,) = of_kind(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["authorization"]["credentials"] == {
        "name": "kcp-kafka-control-plane",
        "key": "METRICS_BEARER_TOKEN",
    }


def test_only_pods_that_may_call_kubernetes_get_a_token(helm: Path) -> None:
    def mounted(*args: str) -> dict[str, bool]:
        return {
            d["metadata"]["name"].removeprefix("kcp-kafka-control-plane-"): d["spec"]["template"]["spec"][
                "automountServiceAccountToken"
            ]
            for d in render(helm, *args)
            if d["kind"] in ("Deployment", "Job")
        }

    assert not any(mounted().values())
    callers = {"web", "worker-operations", "worker-monitoring"}
    for args in (
        ["--set", "kubernetesTargets.rbac.create=true"],
        ["--set", "serviceAccount.automountToken=true"],
    ):
        assert {name for name, token in mounted(*args).items() if token} == callers
    assert not any(
        mounted("--set", "kubernetesTargets.rbac.create=true,serviceAccount.automountToken=false").values()
    )


def test_every_setting_the_chart_sets_is_one_the_control_plane_reads(helm: Path) -> None:
    """A misspelt variable would be set and silently ignored: each ConfigMap key and environment
    variable is one controlplane/settings.py or the entrypoint reads."""
    readers = (ROOT / "controlplane" / "settings.py").read_text() + (
        ROOT / "controlplane" / "deploy" / "entrypoint.sh"
    ).read_text()
    objects = render(helm, *EVERYTHING)
    (config,) = of_kind(objects, "ConfigMap")
    names = set(config["data"])
    for _, pod in pod_specs(objects):
        for container in containers(pod):
            names |= {e["name"] for e in container["env"]}
    unread = sorted(
        n for n in names if f'"{n}"' not in readers and f"{{{n}" not in readers and f"${n}" not in readers
    )
    assert unread == []


def test_the_settings_are_a_production_installations(helm: Path) -> None:
    (config,) = of_kind(render(helm, *EVERYTHING), "ConfigMap")
    # Tenants cannot ask for `local` clusters: their brokers would run inside a worker pod.
    assert config["data"]["CONTROLPLANE_DISABLED_BACKENDS"] == "local"
    assert config["data"]["TRUSTED_PROXIES"] == ""  # the operator names its ingress's network
    assert config["data"]["SECURE_SSL_REDIRECT"] == "true"
    hosts = config["data"]["ALLOWED_HOSTS"].split(",")
    assert "kafka.example.com" in hosts
    assert "kcp-kafka-control-plane-web.kcp.svc" in hosts  # clients inside the Kubernetes cluster
    assert config["data"]["CSRF_TRUSTED_ORIGINS"] == "https://kafka.example.com"
    assert config["data"]["CONTROLPLANE_ENV"] == "production"


# --- on the real API server --------------------------------------------------------------------------------


@pytest.fixture
def release_namespaces(kube_cluster: KubeCluster) -> Iterator[tuple[str, str]]:
    """The release's namespace (with the operator's Secret in it) and a namespace for Kafka clusters."""
    release, kafka = kube_cluster.new_namespace("kcp"), kube_cluster.new_namespace("kafka")
    with kube_cluster.api_client() as api:
        core = k8s.CoreV1Api(api)
        core.create_namespaced_secret(
            release,
            k8s.V1Secret(
                metadata=k8s.V1ObjectMeta(name="kcp-credentials"),
                string_data={
                    "DATABASE_URL": "postgres://kcp:not-used@postgres.invalid:5432/kcp",
                    "REDIS_URL": "redis://redis.invalid:6379/0",
                    "SECRET_KEY": uuid.uuid4().hex,
                    "SECRETS_ENCRYPTION_KEYS": base64.urlsafe_b64encode(b"0" * 32).decode(),
                },
            ),
        )
    yield release, kafka
    with kube_cluster.api_client() as api:
        for namespace in (release, kafka):
            k8s.CoreV1Api(api).delete_namespace(namespace)


def installed_values(kafka_namespace: str) -> list[str]:
    """The operator's Secret, and the targets role in the namespace for Kafka clusters."""
    return [
        "--set",
        "existingSecret=kcp-credentials,kubernetesTargets.rbac.create=true",
        "--set",
        f"kubernetesTargets.rbac.namespaces={{{kafka_namespace}}}",
    ]


def _deployments_available(apps: k8s.AppsV1Api, namespace: str) -> bool:
    deployments = apps.list_namespaced_deployment(namespace).items
    return bool(deployments) and all(
        (d.status.available_replicas or 0) == d.spec.replicas and d.status.updated_replicas == d.spec.replicas
        for d in deployments
    )


@pytest.mark.slow
def test_installed_and_upgraded_with_helm_on_a_real_api_server(
    helm: Path, kube_cluster: KubeCluster, release_namespaces: tuple[str, str]
) -> None:
    """`helm install --wait` and `helm upgrade --wait` (server-side apply, helm 4's default) complete:
    the API server accepts every object, the Job of each revision completes, no hook blocks the wait;
    the upgrade's Job is a new one and the previous revision's is gone."""
    release_ns, kafka_ns = release_namespaces
    kubeconfig = kube_cluster.kubeconfig_path
    values = [
        *installed_values(kafka_ns),
        "--set",
        "ingress.enabled=true,ingress.hosts[0].host=kafka.example.com",
    ]
    wait = ["--wait", "--wait-for-jobs", "--timeout", "3m"]
    run_helm(helm, "install", "kcp", str(CHART), "-n", release_ns, *values, *wait, kubeconfig=kubeconfig)

    with kube_cluster.api_client() as api:
        apps, batch = k8s.AppsV1Api(api), k8s.BatchV1Api(api)
        assert _deployments_available(apps, release_ns)
        (first_job,) = batch.list_namespaced_job(release_ns).items
        assert first_job.metadata.name.startswith("kcp-kafka-control-plane-migrate-1-")
        assert first_job.status.succeeded == 1
        beat = apps.read_namespaced_deployment("kcp-kafka-control-plane-beat", release_ns)
        # Applied server-side: helm is the field manager of an Apply, not of an update.
        assert any(m.manager == "helm" and m.operation == "Apply" for m in beat.metadata.managed_fields)
        policy = k8s.PolicyV1Api(api)
        assert len(policy.list_namespaced_pod_disruption_budget(release_ns).items) == 3
        wait_for(
            lambda: all(
                p.status.current_healthy == p.status.expected_pods > 0
                for p in policy.list_namespaced_pod_disruption_budget(release_ns).items
            ),
            60,
            what="every disruption budget seeing its healthy pods",
        )

    run_helm(
        helm,
        "upgrade",
        "kcp",
        str(CHART),
        "-n",
        release_ns,
        *values,
        "--set",
        "image.tag=0.2.0",
        *wait,
        kubeconfig=kubeconfig,
    )
    with kube_cluster.api_client() as api:
        apps, batch = k8s.AppsV1Api(api), k8s.BatchV1Api(api)
        jobs = [
            j for j in batch.list_namespaced_job(release_ns).items if j.metadata.deletion_timestamp is None
        ]
        (second_job,) = jobs
        assert second_job.metadata.name.startswith("kcp-kafka-control-plane-migrate-2-")
        assert second_job.status.succeeded == 1
        assert _deployments_available(apps, release_ns)
        for deployment in apps.list_namespaced_deployment(release_ns).items:
            images = {
                c.image
                for c in [
                    *deployment.spec.template.spec.init_containers,
                    *deployment.spec.template.spec.containers,
                ]
            }
            assert images == {"kafka-control-plane:0.2.0"}


@pytest.mark.slow
def test_the_release_service_account_may_run_kafka_clusters_in_its_namespaces(
    helm: Path, kube_cluster: KubeCluster, release_namespaces: tuple[str, str]
) -> None:
    """With the chart's role, the service account an in-cluster target uses passes the product's own
    connection check in the granted namespace and provisions and deletes a cluster there; elsewhere
    the same check names what it may not do."""
    release_ns, kafka_ns = release_namespaces
    run_helm(
        helm,
        "install",
        "kcp",
        str(CHART),
        "-n",
        release_ns,
        *installed_values(kafka_ns),
        kubeconfig=kube_cluster.kubeconfig_path,
    )
    with kube_cluster.api_client() as api:
        token = (
            k8s.CoreV1Api(api)
            .create_namespaced_service_account_token(
                "kcp-kafka-control-plane",
                release_ns,
                k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[])),
            )
            .status.token
        )
    admin = yaml.safe_load(kube_cluster.kubeconfig_path.read_text())
    admin["users"] = [{"name": "kcp-admin", "user": {"token": token}}]
    as_service_account = yaml.safe_dump(admin)

    target = KubernetesTarget(name="in-cluster", namespace=kafka_ns, kubeconfig=as_service_account)
    report = check_kubernetes_connection(target)
    assert report.ok and report.missing == {}, report.summary

    backend = KubernetesBackend(target)
    spec = make_spec(3, racks=kube_cluster.zones, cluster_id=str(uuid.uuid4()), name="chart")
    backend.provision(spec)
    with kube_cluster.api_client() as api:
        assert len(k8s.AppsV1Api(api).list_namespaced_stateful_set(kafka_ns).items) == 3
    wait_for(lambda: backend.delete(spec), 120, interval=1, what="every object of the cluster deleted")

    elsewhere = check_kubernetes_connection(
        KubernetesTarget(name="other", namespace=release_ns, kubeconfig=as_service_account)
    )
    assert not elsewhere.ok
    assert set(elsewhere.missing) == set(required_permissions())
