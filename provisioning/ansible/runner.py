"""ansible-runner driven from Python: one playbook run per call, its events streamed as they happen.

Each run gets a directory of its own (`run_dir`: the inventory it ran against, ansible-runner's
artifacts with every event, the exit status), kept for inspection after the run and removed by
`prune_runs` once old. An SSH private key given as text, and `secret_vars` (a secured cluster's keys
and credentials), are written into the run directory for the run only (mode 0600) and deleted when
the run ends; the tasks using secrets are `no_log`, so neither the kept events nor the kept
inventory and command line hold them.

Events reach `on_event` from ansible-runner's event thread while the playbook runs; a failure ends
the call with `PlaybookFailedError` naming the host, the task and Ansible's message, and
`should_cancel` returning true stops the run (ansible-runner terminates ansible-playbook) with
`PlaybookCancelledError`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from provisioning.ansible.inventory import PLAYBOOKS_DIR, render_inventory
from provisioning.backends.base import BackendCancelled, BackendError

KEY_FILE = "ssh_key"
KNOWN_HOSTS_FILE = "known_hosts"
SECRETS_FILE = "secret_vars.json"
# Events that say something about a host's task; the rest (starts of plays and tasks, verbose
# output, includes) add nothing a log reader needs.
HOST_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "runner_item_on_failed": "failed",
}
MESSAGE_LIMIT = 2000


class PlaybookFailedError(BackendError):
    """A playbook run failed; `host`, `task` and `message` say where and why, `kind` whether the task
    failed or its host could not be reached (`unreachable`)."""

    def __init__(self, playbook: str, host: str, task: str, message: str, kind: str = "failed") -> None:
        self.playbook, self.host, self.task, self.message, self.kind = playbook, host, task, message, kind
        super().__init__(f"{playbook} failed on {host}, task {task!r}: {message}")


class PlaybookCancelledError(BackendCancelled):
    """The run was stopped because the operation it ran for was cancelled."""


@dataclass(frozen=True)
class PlaybookEvent:
    kind: str  # play, ok, changed, failed, unreachable, skipped
    host: str
    task: str
    message: str = ""
    play: str = ""


@dataclass
class PlaybookResult:
    playbook: str
    status: str
    run_dir: Path
    changed: dict[str, int] = field(default_factory=dict)  # host -> tasks that changed something
    ok: dict[str, int] = field(default_factory=dict)
    events: list[PlaybookEvent] = field(default_factory=list)

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())


def _message(result: Mapping[str, Any]) -> str:
    """Ansible's own words for a task's outcome: its msg, else the command's stderr or stdout."""
    for key in ("msg", "stderr", "stdout", "reason"):
        value = result.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[-MESSAGE_LIMIT:]
    return ""


def _to_event(event: Mapping[str, Any]) -> PlaybookEvent | None:
    name = event.get("event", "")
    data = event.get("event_data") or {}
    if name == "playbook_on_play_start":
        return PlaybookEvent("play", "", "", play=data.get("play", ""))
    kind = HOST_EVENTS.get(name)
    if kind is None:
        return None
    result = data.get("res") or {}
    if kind == "ok" and result.get("changed"):
        kind = "changed"
    if kind == "failed" and data.get("ignore_errors"):
        kind = "ok"
    return PlaybookEvent(
        kind,
        data.get("host", ""),
        data.get("task", ""),
        _message(result) if kind != "ok" else "",
        data.get("play", ""),
    )


def run_playbook(
    playbook: str,
    inventory: Mapping[str, Any],
    *,
    run_dir: Path,
    extravars: Mapping[str, Any] | None = None,
    ssh_private_key: str | None = None,
    limit: str | None = None,
    on_event: Callable[[PlaybookEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    known_hosts: str | None = None,
    timeout: float | None = None,
    secret_vars: Mapping[str, Any] | None = None,
) -> PlaybookResult:
    """Run `playbook` (a file of provisioning/playbooks/) against `inventory`; see the module doc.
    `known_hosts`: the hosts' public keys; SSH then accepts no other (StrictHostKeyChecking=yes).
    `timeout`: seconds after which the run is stopped and fails. `secret_vars`: extra variables that
    exist on disk only while the run goes on (see the module doc)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    inventory = dict(inventory)
    key_path = run_dir / KEY_FILE
    connection_vars: dict[str, str] = {}
    if ssh_private_key is not None:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as key:
            key.write(ssh_private_key if ssh_private_key.endswith("\n") else ssh_private_key + "\n")
        connection_vars["ansible_ssh_private_key_file"] = str(key_path)
    if known_hosts is not None:
        known_hosts_path = run_dir / KNOWN_HOSTS_FILE
        known_hosts_path.write_text(known_hosts if known_hosts.endswith("\n") else known_hosts + "\n")
        connection_vars["ansible_ssh_common_args"] = (
            f"-o UserKnownHostsFile={known_hosts_path} -o StrictHostKeyChecking=yes"
        )
    if connection_vars:
        all_group = dict(inventory["all"])
        all_group["vars"] = {**all_group.get("vars", {}), **connection_vars}
        inventory["all"] = all_group
    (run_dir / "inventory").mkdir(exist_ok=True)
    (run_dir / "inventory" / "hosts.yml").write_text(render_inventory(inventory))
    secrets_path = run_dir / SECRETS_FILE
    cmdline = None
    if secret_vars:
        fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as secrets:
            json.dump(dict(secret_vars), secrets)
        # A file, not `extravars`: ansible-runner would write those into the kept command line.
        cmdline = shlex.join(["--extra-vars", f"@{secrets_path}"])

    result = PlaybookResult(playbook, "unstarted", run_dir)
    failure: list[PlaybookEvent] = []

    # Hot path: called for every event of the run, from ansible-runner's thread.
    def handle(event: dict[str, Any]) -> bool:
        converted = _to_event(event)
        if converted is not None:
            result.events.append(converted)
            if converted.kind in ("failed", "unreachable") and not failure:
                failure.append(converted)
            if on_event is not None:
                on_event(converted)
        return True  # keep the event in the run's artifacts

    try:
        runner = ansible_runner.run(
            private_data_dir=str(run_dir),
            project_dir=str(PLAYBOOKS_DIR),
            playbook=playbook,
            extravars=dict(extravars or {}),
            cmdline=cmdline,
            limit=limit,
            event_handler=handle,
            cancel_callback=should_cancel or (lambda: False),
            envvars={
                # ansible-playbook is installed beside this interpreter (the virtualenv's bin/), which a
                # worker started by its full path does not have on PATH.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                "ANSIBLE_CONFIG": str(PLAYBOOKS_DIR / "ansible.cfg"),
                "ANSIBLE_ROLES_PATH": str(PLAYBOOKS_DIR / "roles"),
                "ANSIBLE_LIBRARY": str(PLAYBOOKS_DIR / "library"),
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "ANSIBLE_NOCOLOR": "True",
            },
            quiet=True,
            timeout=int(timeout) if timeout else None,
            rotate_artifacts=0,
            ident="run",
        )
    finally:
        key_path.unlink(missing_ok=True)
        secrets_path.unlink(missing_ok=True)
    result.status = runner.status
    stats = runner.stats or {}
    result.changed = {host: count for host, count in (stats.get("changed") or {}).items()}
    result.ok = dict(stats.get("ok") or {})
    if runner.status == "canceled":
        raise PlaybookCancelledError(f"{playbook} was stopped: its operation was cancelled")
    if runner.status == "timeout":
        raise PlaybookFailedError(playbook, "-", "-", f"the run was stopped after {timeout:.0f} s")
    if runner.status != "successful" or runner.rc != 0:
        if failure:
            first = failure[0]
            raise PlaybookFailedError(
                playbook, first.host, first.task, first.message or first.kind, kind=first.kind
            )
        output = (
            (run_dir / "artifacts" / "run" / "stdout").read_text(errors="replace")
            if (run_dir / "artifacts" / "run" / "stdout").is_file()
            else ""
        )
        last = output.strip().splitlines()[-1:] or [f"exit status {runner.rc}"]
        raise PlaybookFailedError(playbook, "-", "-", f"ansible-playbook ended {runner.status}: {last[0]}")
    return result


def prune_runs(root: Path, *, older_than_seconds: float, now: float | None = None) -> list[Path]:
    """Remove run directories under `root` (any depth of `<operation>/<run>`) untouched for longer
    than `older_than_seconds`; returns what was removed."""
    if not root.is_dir():
        return []
    limit = (time.time() if now is None else now) - older_than_seconds
    removed: list[Path] = []
    for operation_dir in sorted(root.iterdir()):
        if operation_dir.is_dir() and _newest_mtime(operation_dir) < limit:
            shutil.rmtree(operation_dir, ignore_errors=True)
            removed.append(operation_dir)
    return removed


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for directory, _subdirectories, files in os.walk(path):
        for name in files:
            try:
                newest = max(newest, (Path(directory) / name).stat().st_mtime)
            except FileNotFoundError:
                continue
    return newest
