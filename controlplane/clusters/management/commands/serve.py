"""Run the whole control plane in the foreground: web server, Celery workers and Celery beat.

A child that dies is started again (unless it keeps dying), so a killed worker costs nothing but the
task it held, which is delivered again. Ctrl-C or SIGTERM stops all of them and the `local` backend's
broker processes, which run in sessions of their own (so a dying worker does not take them down) and
therefore need stopping explicitly. The next start brings those brokers back, and operations that were
running when it stopped go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from controlplane.clusters.backends import kafka_distribution, local_engine
from controlplane.clusters.reconcile import reconcile_all, resume_local_clusters
from provisioning.backends.local import stop_all
from provisioning.distribution import DistributionError

GRACE_SECONDS = 15
# A child that exits is started again, unless it keeps exiting: then something is wrong for good.
MAX_STARTS_IN_WINDOW = 5
CRASH_WINDOW_SECONDS = 60


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    # Own sessions: the terminal's Ctrl-C reaches only this process, which stops the children in
    # order instead of all of them racing on the same signal.
    return subprocess.Popen(command, start_new_session=True)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


class Command(BaseCommand):
    help = "Run the web server, the Celery workers and Celery beat together until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))

    def handle(self, *args: Any, **options: Any) -> None:
        self._announce_local_engine()
        resumed = resume_local_clusters()
        if resumed:
            self.stdout.write(
                f"brought back the brokers of {resumed} local cluster(s) stopped at the last shutdown"
            )
        restarted = reconcile_all(restart=True, backend="local")
        if restarted:
            self.stdout.write(f"restarted the brokers of {restarted} local cluster(s)")
        commands = self._commands(options)
        children: dict[str, subprocess.Popen[bytes]] = {}
        starts: dict[str, list[float]] = {name: [] for name in commands}
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        try:
            for name, command in commands.items():
                children[name] = _start(command)
                starts[name].append(time.monotonic())
            while not stopping:
                for name, child in list(children.items()):
                    if child.poll() is None or stopping:
                        continue
                    # Whatever it left in its group (a worker's pool processes) goes first.
                    _kill_group(child)
                    now = time.monotonic()
                    recent = [t for t in starts[name] if now - t < CRASH_WINDOW_SECONDS]
                    if len(recent) >= MAX_STARTS_IN_WINDOW:
                        self.stderr.write(
                            f"{name} exited with code {child.returncode}, {len(recent)} times within "
                            f"{CRASH_WINDOW_SECONDS} s; stopping everything"
                        )
                        stopping, exit_code = True, 1
                        break
                    self.stderr.write(f"{name} exited with code {child.returncode}; starting it again")
                    children[name] = _start(commands[name])
                    starts[name] = [*recent, now]
                time.sleep(0.5)
        finally:
            self._stop_children(children)
            stopped = stop_all(Path(settings.LOCAL_BACKEND_STATE_DIR))
            self.stdout.write(f"stopped; brokers of {len(stopped)} local cluster(s) stopped")
        sys.exit(exit_code)

    @staticmethod
    def _commands(options: dict[str, Any]) -> dict[str, list[str]]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        celery = [python, "-m", "celery", "-A", "controlplane"]

        def worker(name: str, queues: list[str]) -> list[str]:
            return [
                *celery,
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(options["concurrency"]),
                "--queues",
                ",".join(queues),
                "--hostname",
                f"{name}@%h",
            ]

        operations, *others = settings.TASK_QUEUES
        return {
            "web": [python, manage, "runserver", f"{options['host']}:{options['port']}", "--noreload"],
            # Operations get a worker of their own: collections of unreachable clusters and slow
            # notification receivers then never delay a provisioning or a restart.
            "worker": worker("operations", [operations]),
            "monitor": worker("monitoring", others),
            "beat": [*celery, "beat", "--loglevel", "INFO"],
        }

    def _announce_local_engine(self) -> None:
        """Say what `local` clusters run, and have the default Kafka release ready before the first."""
        engine, java = local_engine()
        if engine == "tansu":
            reason = (
                "LOCAL_ENGINE=tansu"
                if settings.LOCAL_ENGINE == "tansu"
                else "no Java 17 or newer was found; install one (on Debian: apt-get install "
                "openjdk-17-jre-headless) and run `make run` again for real Apache Kafka clusters of any size"
            )
            self.stdout.write(
                f"local clusters run the single-node development broker (Tansu), which keeps data in "
                f"memory only (every restart loses every topic): {reason}"
            )
            return
        java_text = f"Java {java.major} at {java.home}" if java is not None else "Java"
        self.stdout.write(f"local clusters run Apache Kafka (KRaft) on {java_text}")
        version = settings.DEFAULT_KAFKA_VERSION
        try:
            found = kafka_distribution(version)
        except DistributionError as exc:
            self.stderr.write(f"Apache Kafka {version} is not available yet: {exc}")
            return
        self.stdout.write(f"Apache Kafka {version}: {found.home} ({found.origin or found.source})")

    @staticmethod
    def _stop_children(children: dict[str, subprocess.Popen[bytes]]) -> None:
        # SIGTERM to each leader only: Celery then stops its own pool after the current task;
        # the whole group is killed only if that takes longer than the grace period.
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            # Whatever the leader left behind in its group (pool processes) goes too.
            _kill_group(child)
