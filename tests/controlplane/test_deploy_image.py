"""The control plane image (controlplane/deploy/): its entrypoint run for real, outside a container.

No container engine runs on these machines, so the image is never built here: the Dockerfile is linted
(hadolint) and checked to copy what the project reads at run time, and what `pip install` and
`collectstatic` do in it is not exercised. The entrypoint is the part with logic, and every role runs
here as in a pod, on this checkout and its virtualenv, in the production profile, against a database of
its own on the tests' PostgreSQL server and a Redis server of its own (so its Celery worker takes no
task of another test): the init containers' wait ends exactly when the migration Job's `migrate` has
run, gunicorn answers the kubelet's probes and Prometheus by the pod's IP over plain HTTP, a worker
consumes the queues it is given, and each role stops on SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.support.apache_kafka import wait_for
from tests.support.kafka import free_port
from tests.support.linters import assert_hadolint_clean, assert_shellcheck_clean

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "controlplane" / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
DOCKERFILE = DEPLOY / "Dockerfile"
USAGE = 64  # the entrypoint's exit status for a wrong invocation
METRICS_TOKEN = "metrics-" + uuid.uuid4().hex


def test_entrypoint_is_shellcheck_clean() -> None:
    assert_shellcheck_clean(ENTRYPOINT)


def test_dockerfile_is_hadolint_clean() -> None:
    assert_hadolint_clean(DOCKERFILE)


def test_the_image_holds_what_the_project_reads_at_run_time() -> None:
    """Every package directory pyproject.toml installs, the templates and manage.py are copied into the
    image and let through by its build context's ignore file; the entrypoint the image runs exists."""
    copied = set(re.findall(r"^COPY (\S+) ", DOCKERFILE.read_text(), re.MULTILINE))
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = {pattern.rstrip("*") for pattern in packages["include"]} | {
        Path(settings.TEMPLATES[0]["DIRS"][0]).name,
        "manage.py",
        "pyproject.toml",
    }
    assert needed <= copied, needed - copied
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert needed <= allowed, needed - allowed
    entrypoint = re.search(r'^ENTRYPOINT \["(\S+)"\]', DOCKERFILE.read_text(), re.MULTILINE)
    assert entrypoint and entrypoint.group(1) == "/app/controlplane/deploy/entrypoint.sh"


def test_an_unknown_role_or_a_worker_without_queues_is_refused() -> None:
    for args in ([], ["serve"], ["worker"], ["worker", "operations;rm"]):
        result = subprocess.run(["bash", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == USAGE, (args, result.stderr)
        assert "usage: entrypoint.sh web | worker" in result.stderr


# --- the roles, run for real --------------------------------------------------------------------------


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database on the tests' PostgreSQL server (dropped afterwards)."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        pytest.skip("needs PostgreSQL (scripts/with-test-services.sh provides it)")
    name = f"kcp_deploy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server is not installed (make system-deps installs it)")
    port = free_port()
    process = subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        wait_for(client.ping, 20, what="the private Redis answering")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def pod_env(fresh_database: str, private_redis: str, tmp_path: Path) -> dict[str, str]:
    """What the chart gives every container: production, credentials as from the Secret, the pod's IP."""
    from cryptography.fernet import Fernet

    state = tmp_path / "state"
    state.mkdir()
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "HOME": str(state),
        "CONTROLPLANE_ENV": "production",
        "CONTROLPLANE_VAR_DIR": str(state),
        "STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": fresh_database,
        "REDIS_URL": private_redis,
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "SECRETS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "METRICS_BEARER_TOKEN": METRICS_TOKEN,
        "ALLOWED_HOSTS": "kcp.example.com",
        "POD_NAME": "kcp-worker-operations-5d9c7-x2x8q",
        "POD_IP": "127.0.0.1",
        "WAIT_FOR_MIGRATIONS_INTERVAL_SECONDS": "1",
    }


def entrypoint(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


class Role:
    """A long-running role in the background, as the container's main process; `stop()` is the
    kubelet's SIGTERM."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(ENTRYPOINT), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"did not stop within {timeout} s of SIGTERM:\n{self.log()}") from None


@pytest.fixture
def roles() -> Iterator[list[Role]]:
    started: list[Role] = []
    yield started
    for role in started:
        if role.process.poll() is None:
            os.killpg(role.process.pid, signal.SIGKILL)
            role.process.wait()


def _get(url: str, host: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    """One request without following redirects, as the kubelet and Prometheus send it."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    headers = {"Host": host}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), dict(error.headers)


@pytest.mark.slow
def test_init_containers_wait_until_the_migration_job_has_run(
    pod_env: dict[str, str], tmp_path: Path, roles: list[Role]
) -> None:
    # Before any migration, a bounded wait gives up, saying why.
    result = entrypoint({**pod_env, "WAIT_FOR_MIGRATIONS_TIMEOUT_SECONDS": "1"}, "wait-for-migrations")
    assert result.returncode == 1, result.stderr
    assert "not applied yet" in result.stderr

    # An init container (no timeout) started before the Job: it waits, then goes on once migrate ran.
    waiting = Role(pod_env, tmp_path / "wait.log", "wait-for-migrations")
    roles.append(waiting)
    wait_for(lambda: "waiting for the migration Job" in waiting.log(), 60, what="the init container waiting")
    assert waiting.process.poll() is None

    migrated = entrypoint(pod_env, "migrate", timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert waiting.process.wait(timeout=60) == 0, waiting.log()
    assert "the database has every migration of this image" in waiting.log()
    # Run again, as the next revision's Job does: nothing to do, still success.
    assert entrypoint(pod_env, "migrate", timeout=300).returncode == 0


@pytest.mark.slow
def test_web_answers_probes_and_scrapes_by_the_pods_address(
    pod_env: dict[str, str], tmp_path: Path, roles: list[Role]
) -> None:
    assert entrypoint(pod_env, "migrate", timeout=300).returncode == 0
    port = free_port()
    web = Role({**pod_env, "PORT": str(port), "WEB_WORKERS": "1"}, tmp_path / "web.log", "web")
    roles.append(web)
    base = f"http://127.0.0.1:{port}"
    pod_host = f"127.0.0.1:{port}"  # what the kubelet sends: the pod's IP and port
    wait_for(lambda: _get(f"{base}/healthz", pod_host)[0] == 200, 60, what=f"gunicorn answering\n{web.log()}")

    # Plain HTTP by the pod's IP: no redirect to HTTPS, no DisallowedHost.
    assert _get(f"{base}/readyz", pod_host)[:2] == (200, '{"status": "ready"}')
    status, body, _ = _get(f"{base}/metrics", pod_host, METRICS_TOKEN)
    assert status == 200 and "controlplane_http_requests_total" in body
    assert _get(f"{base}/metrics", pod_host)[0] == 401

    # Everything else keeps the production profile: HTTPS only, configured host names only.
    status, _, headers = _get(f"{base}/", "kcp.example.com")
    assert status == 301 and headers["Location"].startswith("https://kcp.example.com/")
    assert _get(f"{base}/healthz", "attacker.example")[0] == 400

    assert web.stop() == 0, web.log()
    # The access log is key=value like the rest.
    assert 'method=GET path="/readyz" status=200' in web.log()


@pytest.mark.slow
def test_a_worker_consumes_its_queues_and_beat_runs_once(
    pod_env: dict[str, str], tmp_path: Path, roles: list[Role]
) -> None:
    assert entrypoint(pod_env, "migrate", timeout=300).returncode == 0
    queues = ",".join(settings.TASK_QUEUES[1:])  # what the chart's monitoring group consumes
    worker = Role({**pod_env, "WORKER_CONCURRENCY": "1"}, tmp_path / "worker.log", "worker", queues)
    roles.append(worker)
    beat = Role(pod_env, tmp_path / "beat.log", "beat")
    roles.append(beat)
    wait_for(lambda: " ready." in worker.log(), 120, what=f"the worker ready\n{worker.log()}")
    log = worker.log()
    consumed = set(re.findall(r"^\s*\.> (\w+)\s", log, re.MULTILINE))
    assert consumed == set(settings.TASK_QUEUES[1:]), log
    assert f"{queues.replace(',', '-')}@{pod_env['POD_NAME']}" in log
    # Beat sends the periodic tasks; the worker runs those routed to its queues (the alerting
    # housekeeping goes to notifications) against the migrated database.
    wait_for(lambda: "Sending due task" in beat.log(), 60, what=f"beat sending\n{beat.log()}")
    wait_for(
        lambda: re.search(r"Task monitoring\.\S+\[\S+\] succeeded", worker.log()),
        120,
        what=f"a monitoring task run by the worker\n{worker.log()}",
    )
    # Its schedule state lives in the state directory (an emptyDir in the pod), whatever dbm names it.
    assert list(Path(pod_env["CONTROLPLANE_VAR_DIR"]).glob("celerybeat-schedule*"))

    assert beat.stop() == 0, beat.log()
    # Warm shutdown: the worker stops taking tasks, finishes what it runs and exits cleanly.
    assert worker.stop(timeout=120) == 0, worker.log()
    assert "Warm shutdown" in worker.log()
