"""`make run`'s process (`manage.py serve`) as a user runs it: SQLite, the file-system task queue, the
development broker. A child that dies is started again while the rest keeps serving; SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.apache_kafka import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> dict[int, str]:
    """Processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rfind(")") + 2 :].split()[1])
            if parent == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


def operations_worker(serve_pid: int) -> int | None:
    return next((pid for pid, cmd in children_of(serve_pid).items() if "operations@" in cmd), None)


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return response.status == 200


def test_a_killed_worker_is_started_again_and_sigterm_stops_everything(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "LOCAL_BACKEND_STATE_DIR")
    }
    env.update(CONTROLPLANE_VAR_DIR=str(tmp_path / "var"), LOCAL_ENGINE="tansu", PYTHONUNBUFFERED="1")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: healthy(port), 120, what="the web server")
        first = wait_for(lambda: operations_worker(serve.pid), 60, what="the operations worker")

        os.kill(first, signal.SIGKILL)  # kill -9 on the worker's main process
        second = wait_for(
            lambda: (pid := operations_worker(serve.pid)) not in (None, first) and pid,
            60,
            what="a new worker",
        )
        assert second != first
        assert serve.poll() is None, "the rest kept running"
        assert healthy(port)
        text = (tmp_path / "serve.log").read_text(errors="replace")
        assert "worker exited with code -9; starting it again" in text

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0
        assert "stopped; brokers of 0 local cluster(s) stopped" in (tmp_path / "serve.log").read_text()
        assert not children_of(serve.pid)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()
