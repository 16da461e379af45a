"""The `vm` backend's test hosts are real: separate network addresses, each reached over SSH with a
generated key checked against the host's own host key, and nothing left behind once torn down."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.apache_kafka import wait_for
from tests.support.vm_hosts import (
    NAMESPACE_PREFIX,
    _ip,
    clean_stale_labs,
    namespace_pids,
    vm_host_lab,
)

pytestmark = [pytest.mark.slow, pytest.mark.real_hosts]


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def test_hosts_have_their_own_addresses_and_answer_ssh(tmp_path: Path) -> None:
    with vm_host_lab(tmp_path / "lab") as lab:
        hosts = lab.add_many(["a", "b"])
        first, second = hosts
        assert first.address != second.address
        # Each host sees its own address and only its own (plus loopback).
        shown = first.ssh("ip -4 -o addr show").stdout
        assert first.address in shown and second.address not in shown
        # A session's home is the host's own, not this machine's, whose shell startup files would run.
        assert first.ssh("ls -A ~").stdout.strip() == ""
        # Hosts reach each other over the bridge: host 1 connects to host 2's SSH port.
        probe = f"python3 -c \"import socket; socket.create_connection(('{second.address}', 22), 5)\""
        assert first.ssh(probe).returncode == 0
        # The host key is checked: a wrong known_hosts entry is refused.
        wrong = tmp_path / "wrong_known_hosts"
        wrong.write_text(Path(lab.known_hosts).read_text().replace(first.address, "203.0.113.9"))
        refused = subprocess.run(
            [*first.ssh_args()[:4], f"UserKnownHostsFile={wrong}", *first.ssh_args()[5:], "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode != 0 and "Host key verification failed" in refused.stderr
        namespaces = {host.namespace for host in hosts}
        assert namespaces <= set(_namespaces())
        lab.remove(first.name)
        assert first.namespace not in _namespaces()
        assert first.ssh("true", check=False, timeout=30).returncode != 0
    assert not namespaces & set(_namespaces())
    assert lab.bridge not in _ip("-br", "link").stdout


def test_labs_of_a_crashed_test_process_are_cleaned_up(tmp_path: Path) -> None:
    # A child process makes a namespace with the lab's naming and dies without cleaning up.
    child = subprocess.Popen(["sleep", "0"])
    child.wait()
    stale = f"{NAMESPACE_PREFIX}{child.pid}-1"
    _ip("netns", "add", stale)
    holder = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "300"])
    try:
        # `ip netns exec` enters the namespace a moment after it starts (longer on a busy machine).
        wait_for(lambda: namespace_pids(stale), 30, what=f"a process inside {stale}")
        assert stale in clean_stale_labs()
        assert stale not in _namespaces()
        assert holder.wait(timeout=10) != 0  # the process inside was killed with it
    finally:
        holder.kill()
        _ip("netns", "delete", stale, check=False)
    # Labs of live processes (this one) are left alone.
    own = f"{NAMESPACE_PREFIX}{os.getpid()}-999"
    _ip("netns", "add", own)
    try:
        assert own not in clean_stale_labs()
    finally:
        _ip("netns", "delete", own, check=False)
