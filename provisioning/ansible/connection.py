"""Testing a host pool's connection before clusters are placed on it: does every host answer over SSH
with the stored key, presenting the host key `known_hosts` names for it, and can it run Python (for
Ansible) and Java (for Kafka). Each host is a finding in plain words, so a person can fix the pool
before the first cluster fails half-way through a playbook. Operations ask the same of hosts they
find dead (`unanswered_over_ssh`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from provisioning.ansible.inventory import InventoryHost
from provisioning.ansible.pool import HostPool
from provisioning.backends.base import Check, ConnectionReport

# What a host must be able to run: Python for Ansible's modules, Java for Kafka.
PROBE = 'python3 -c "" && echo python-ok; {java} -version 2>&1 | head -n 1'
MAX_PARALLEL = 8
T = TypeVar("T")


def _on_each(
    hosts: Sequence[InventoryHost],
    ssh_private_key: str,
    known_hosts: str,
    work: Callable[[InventoryHost, Path, Path], T],
) -> list[T]:
    """`work(host, key file, known_hosts file)` for every host, in parallel, with the key and
    known_hosts written to files for ssh while it runs."""
    with tempfile.TemporaryDirectory(prefix="kcp-ssh-") as scratch:
        key = Path(scratch) / "key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(ssh_private_key if ssh_private_key.endswith("\n") else ssh_private_key + "\n")
        known = Path(scratch) / "known_hosts"
        known.write_text(known_hosts if known_hosts.endswith("\n") else known_hosts + "\n")
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(hosts)))) as threads:
            return list(threads.map(lambda h: work(h, key, known), hosts))


def check_pool_connection(
    pool: HostPool, *, ssh_private_key: str, known_hosts: str, timeout: float = 10.0
) -> ConnectionReport:
    checks = _on_each(
        pool.hosts, ssh_private_key, known_hosts, lambda h, key, known: _check_host(h, key, known, timeout)
    )
    return ConnectionReport(checks=tuple(checks))


def unanswered_over_ssh(
    hosts: Sequence[InventoryHost], *, ssh_private_key: str, known_hosts: str, timeout: float = 10.0
) -> dict[str, str]:
    """Host name -> why, in SSH's words, for each of `hosts` that cannot be reached over SSH now."""
    answers = _on_each(
        hosts, ssh_private_key, known_hosts, lambda h, key, known: _ssh(h, key, known, timeout, "true")[1]
    )
    return {host.name: reason for host, reason in zip(hosts, answers, strict=True) if reason is not None}


def _ssh(
    host: InventoryHost, key: Path, known_hosts: Path, timeout: float, remote_command: str
) -> tuple[subprocess.CompletedProcess[str] | None, str | None]:
    """Run `remote_command` on the host: (its result, None), or (None, why SSH itself failed)."""
    command = [
        "ssh",
        "-i",
        str(key),
        "-p",
        str(host.ssh_port),
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={int(timeout)}",
        f"{host.ssh_user}@{host.address}",
        remote_command,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout * 3)
    except subprocess.TimeoutExpired:
        return None, f"{host.name} ({host.address}) did not answer over SSH within {timeout * 3:.0f} s."
    if result.returncode == 255:  # ssh's own failure: connection, host key, authentication
        reason = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        return None, f"{host.name} ({host.address}): SSH failed: {reason}"
    return result, None


def _check_host(host: InventoryHost, key: Path, known_hosts: Path, timeout: float) -> Check:
    java = f"{host.java_home}/bin/java" if host.java_home else "java"
    name = f"host {host.name}"
    result, failure = _ssh(host, key, known_hosts, timeout, PROBE.format(java=java))
    if result is None:
        return Check(name, False, failure or "")
    lines = result.stdout.strip().splitlines()
    if "python-ok" not in lines:
        return Check(
            name, False, f"{host.name} ({host.address}) answers over SSH but has no python3 for Ansible."
        )
    java_line = next((line for line in lines if "version" in line), "")
    if not java_line:
        return Check(
            name,
            False,
            f"{host.name} ({host.address}) answers over SSH but runs no Java ({java}): install 17 or newer.",
        )
    return Check(
        name,
        True,
        f"{host.name} ({host.address}) answers as {host.ssh_user} with its known host key; {java_line.strip()}",
    )
