"""Real Celery worker processes on Redis, pointed at the test database.

Tests using them need `transactional_db`, so that what the test writes is committed and visible to
the worker, and the worker's writes are visible to the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("worker tests need PostgreSQL: run them through `make test` (or set DATABASE_URL)")
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(database: str, redis: str, **extra_env: str) -> dict[str, str]:
    """The environment of a worker or beat process: this process's settings, the given database and
    Redis, and `extra_env` on top."""
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis,
        "CONTROLPLANE_VAR_DIR": str(settings.VAR_DIR),
        "LOCAL_BACKEND_STATE_DIR": str(settings.LOCAL_BACKEND_STATE_DIR),
        "LOCAL_ENGINE": settings.LOCAL_ENGINE,
        "OPERATION_HEARTBEAT_SECONDS": "1",
        "NOTIFICATION_ALLOWED_HOSTS": ",".join(settings.NOTIFICATION_ALLOWED_HOSTS),
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    env.pop("TEST_DATABASE_NAME", None)
    return env


class CeleryProcess:
    """`celery -A controlplane <arguments>` in a session of its own, logging to a file; ready once the
    log shows `ready_marker`."""

    ready_marker = b""

    def __init__(self, arguments: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        # Its own session, so killing it takes its pool processes along (as a dead machine would).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "controlplane", *arguments],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery exited early:\n{self.log_path.read_text()[-3000:]}")
            if self.ready_marker in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery not ready after {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the process and its children: no shutdown, no acknowledgement, like a lost machine."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class WorkerProcess(CeleryProcess):
    ready_marker = b"ready."

    def __init__(
        self,
        log_path: Path,
        env: dict[str, str],
        *,
        purge: bool,
        queues: Sequence[str] | None = None,
        concurrency: int = 2,
    ) -> None:
        arguments = [
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--queues",
            ",".join(queues or settings.TASK_QUEUES),
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{time.time_ns()}@%h",
        ]
        if purge:
            arguments.append("--purge")
        super().__init__(arguments, log_path, env)


class BeatProcess(CeleryProcess):
    """Celery beat with the project's schedule, keeping its state in `schedule_path`."""

    ready_marker = b"beat: Starting"

    def __init__(self, log_path: Path, env: dict[str, str], schedule_path: Path) -> None:
        super().__init__(["beat", "--loglevel", "INFO", "--schedule", str(schedule_path)], log_path, env)


@pytest.fixture
def start_worker(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real Celery workers (`start_worker(purge=True, **extra_env)`); all are stopped afterwards."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("worker tests need Redis: run them through `make test` (or set REDIS_URL)")
    workers: list[WorkerProcess] = []

    def start(
        *, purge: bool = False, queues: Sequence[str] | None = None, concurrency: int = 2, **extra_env: str
    ) -> WorkerProcess:
        env = process_env(database_url(), settings.CELERY_BROKER_URL, **extra_env)
        worker = WorkerProcess(
            tmp_path / f"worker-{len(workers)}.log", env, purge=purge, queues=queues, concurrency=concurrency
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_beat(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., BeatProcess]]:
    """Start Celery beat (`start_beat(**extra_env)`), as `make run` does; stopped afterwards."""
    beats: list[BeatProcess] = []

    def start(**extra_env: str) -> BeatProcess:
        env = process_env(database_url(), settings.CELERY_BROKER_URL, **extra_env)
        beat = BeatProcess(tmp_path / f"beat-{len(beats)}.log", env, tmp_path / f"beat-{len(beats)}.schedule")
        beats.append(beat)
        return beat

    yield start
    for beat in beats:
        beat.stop()
