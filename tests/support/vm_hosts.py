"""Real test hosts for the `vm` backend: network namespaces, each with its own address and SSH server.

Each host is a network namespace joined to a bridge in the root namespace by a veth pair, with an
address of its own on a private /24 (the bridge holds `.1`, so the tests — Ansible, Kafka clients —
reach every host exactly as the control plane reaches a VM: over the network, and over SSH with a
generated key, checked against the host's own generated host key). Kafka on one host reaches Kafka on
another over the same bridge. Only these addresses (and loopback) are ever targeted.

What a namespace is not: a separate machine. The hosts share this machine's file system, users and
process table, so
- every host gets a root directory of its own (`VmHost.root`); the playbooks install under it through
  their `kafka_root` variable, which on a real VM stays unset (everything under `/`);
- nothing runs systemd as PID 1, so the playbooks supervise Kafka themselves
  (`kafka_service_manager: supervised`); the systemd unit they write on real VMs is not exercised here;
- the SSH user is root (no user can be added to a shared machine for a test), so the playbooks run
  Kafka as the SSH user; its home directory is the host's own (a bind mount in the host's mount
  namespace), so sessions never read this machine's shell startup files, as on a separate machine (`kafka_user` unset, `kafka_create_user: false`) instead of a `kafka` account.

Removing a host (`VmHostLab.remove`) kills every process in its namespace and deletes the namespace:
its address disappears from the network as a dead machine's would.

Namespaces and links are named after the pid of the process that made them (`kcpvm-<pid>-<n>`,
`kcpbr<pid>x<lab>`, `kcpv<pid>x<n>`), so a lab whose test process crashed is found and removed by the next
one (`clean_stale_labs`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NAMESPACE_PREFIX = "kcpvm-"
BRIDGE_PREFIX = "kcpbr"
VETH_PREFIX = "kcpv"
SSHD = "/usr/sbin/sshd"
SSH_USER = "root"
LAB_LOCK = Path("/tmp/kcp-vm-hosts.lock")
SUBNET_BASE = ipaddress.ip_network("10.213.0.0/16")
FIRST_HOST_OCTET = 10

_NAMESPACE_NAME = re.compile(rf"{re.escape(NAMESPACE_PREFIX)}(\d+)-(\d+)")
# Names are made of the process id and these numbers, which stay under Linux's 15-character limit
# for interface names ("kcpv" + pid + "x" + number).
_HOST_NUMBERS = itertools.count(1)
_LAB_NUMBERS = itertools.count(1)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(namespace: str) -> list[int]:
    result = _ip("netns", "pids", namespace, check=False)
    return [int(line) for line in result.stdout.split() if line.isdigit()]


def _kill_namespace(namespace: str) -> None:
    """SIGKILL every process in `namespace`, then delete it (its veth end goes with it)."""
    for _ in range(20):
        pids = namespace_pids(namespace)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    _ip("netns", "delete", namespace, check=False)


def _links() -> list[str]:
    return [line.split()[0].split("@")[0] for line in _ip("-br", "link").stdout.splitlines() if line.strip()]


def clean_stale_labs() -> list[str]:
    """Remove namespaces and links left by labs whose process is gone; returns what was removed."""
    removed: list[str] = []
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _NAMESPACE_NAME.fullmatch(name)
        if match and not _pid_alive(int(match.group(1))):
            _kill_namespace(name)
            removed.append(name)
    for link in _links():
        match = re.fullmatch(rf"(?:{BRIDGE_PREFIX}|{VETH_PREFIX})(\d+)(?:x\d+)?", link)
        if match and not _pid_alive(int(match.group(1))):
            _ip("link", "delete", link, check=False)
            removed.append(link)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of SUBNET_BASE no interface of the root namespace uses (another lab may be running)."""
    used = {
        ipaddress.ip_interface(word).network
        for line in _ip("-4", "-br", "addr").stdout.splitlines()
        for word in line.split()[2:]
    }
    for subnet in SUBNET_BASE.subnets(new_prefix=24):
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise RuntimeError(f"no free /24 left in {SUBNET_BASE} for test hosts")


SSHD_CONFIG = """\
ListenAddress {address}:22
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The lab's files live in pytest's temporary directories, whose modes sshd would refuse.
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
MaxSessions 30
MaxStartups 30:30:60
LogLevel ERROR
"""


@dataclass(frozen=True)
class VmHost:
    """One test host: reached at `address` over SSH as `ssh_user` with `private_key`."""

    name: str
    rack: str
    address: str
    namespace: str
    ssh_user: str
    private_key: Path
    known_hosts: Path
    root: Path  # this host's own root directory (the playbooks' kafka_root)

    def ssh_args(self) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.private_key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"{self.ssh_user}@{self.address}",
        ]

    def ssh(
        self, command: str, *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` on the host over SSH, as Ansible does."""
        return subprocess.run(
            [*self.ssh_args(), command], check=check, capture_output=True, text=True, timeout=timeout
        )

    def pids(self) -> list[int]:
        return namespace_pids(self.namespace)


@dataclass
class VmHostLab:
    """A bridge and the hosts on it; `add` creates hosts, `remove` takes one off the network."""

    workdir: Path
    subnet: ipaddress.IPv4Network
    bridge: str
    private_key: Path
    known_hosts: Path
    hosts: dict[str, VmHost] = field(default_factory=dict)
    _next: int = 0

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def add(self, rack: str, *, name: str | None = None) -> VmHost:
        self._next += 1
        index = self._next
        name = name or f"host{index}"
        # Numbered across the process, not the lab: two labs may be open at once in one test process
        # (a module's and a test's own), and their hosts' names must not meet.
        unique = next(_HOST_NUMBERS)
        namespace = f"{NAMESPACE_PREFIX}{os.getpid()}-{unique}"
        veth = f"{VETH_PREFIX}{os.getpid()}x{unique}"
        address = str(self.subnet.network_address + FIRST_HOST_OCTET + index)
        home = self.workdir / "hosts" / name
        (home / "root").mkdir(parents=True)
        (home / "sshd").mkdir()

        _ip("netns", "add", namespace)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")

        host_key = home / "sshd" / "ssh_host_ed25519_key"
        _keygen(host_key, comment=name)
        config = home / "sshd" / "sshd_config"
        config.write_text(
            SSHD_CONFIG.format(
                address=address,
                host_key=host_key,
                pid_file=home / "sshd" / "sshd.pid",
                authorized_keys=self.workdir / "authorized_keys",
            )
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        user_home = home / "home"
        user_home.mkdir()
        # sshd daemonizes; the daemon and every session it opens live in the namespace, and in a
        # mount namespace where the SSH user's home is the host's own: a session's shell reads this
        # host's (empty) startup files, not this machine's, which may do anything (a pyenv rehash
        # waiting 60 s on a stale lock made every SSH command hang here).
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                'mount --bind "$1" "$2" && shift 2 && exec "$@"',
                name,
                str(user_home),
                str(Path("~" + SSH_USER).expanduser()),
                SSHD,
                "-f",
                str(config),
                "-E",
                str(home / "sshd" / "sshd.log"),
            ],
            check=True,
            timeout=30,
        )
        public_key = Path(f"{host_key}.pub").read_text().split()
        with self.known_hosts.open("a") as known:
            known.write(f"{address} {public_key[0]} {public_key[1]}\n")

        host = VmHost(
            name, rack, address, namespace, SSH_USER, self.private_key, self.known_hosts, home / "root"
        )
        self.hosts[name] = host  # removed on close even when it never answers
        _wait_for_ssh(host)
        return host

    def add_many(self, racks: Sequence[str]) -> list[VmHost]:
        """One host per entry of `racks`, e.g. `add_many(["a", "b", "c"])`."""
        return [self.add(rack) for rack in racks]

    def remove(self, name: str) -> None:
        """Take a host off the network for good: every process in it killed, its address gone."""
        host = self.hosts.pop(name)
        _kill_namespace(host.namespace)

    def close(self) -> None:
        for name in list(self.hosts):
            self.remove(name)
        _ip("link", "delete", self.bridge, check=False)


def _keygen(path: Path, *, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=30,
    )


def _wait_for_ssh(host: VmHost, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = host.ssh("true", check=False, timeout=15)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host.name} ({host.address}) does not answer SSH: {result.stderr.strip()}")
        time.sleep(0.2)


def missing_tools() -> list[str]:
    """What this machine lacks to make test hosts (root, iproute2, openssh-server)."""
    missing = [tool for tool in ("ip", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if not Path(SSHD).exists():
        missing.append("openssh-server (sshd)")
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    return missing


@contextlib.contextmanager
def vm_host_lab(workdir: Path) -> Iterator[VmHostLab]:
    """A lab of test hosts under `workdir`, torn down on exit (also when the body fails)."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"test hosts need {', '.join(missing)} (scripts/install-system-deps.sh installs them)")
    workdir.mkdir(parents=True, exist_ok=True)
    # Choosing a subnet and creating the bridge is one step for concurrent labs.
    with LAB_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        clean_stale_labs()
        subnet = _free_subnet()
        bridge = f"{BRIDGE_PREFIX}{os.getpid()}x{next(_LAB_NUMBERS)}"
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet.network_address + 1}/{subnet.prefixlen}", "dev", bridge)
        _ip("link", "set", bridge, "up")
    private_key = workdir / "id_ed25519"
    _keygen(private_key, comment="kafka-control-plane-tests")
    (workdir / "authorized_keys").write_text(Path(f"{private_key}.pub").read_text())
    known_hosts = workdir / "known_hosts"
    known_hosts.touch()
    lab = VmHostLab(workdir, subnet, bridge, private_key, known_hosts)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def vm_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmHostLab]:
    """An empty lab for the module; `vm_hosts.add_many(["a", "b", "c"])` makes three hosts in three racks."""
    with vm_host_lab(tmp_path_factory.mktemp("vm-hosts")) as lab:
        yield lab


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly generated SSH private key (OpenSSH format, no passphrase), as users paste them."""
    path = tmp_path_factory.mktemp("ssh-key") / "id_ed25519"
    _keygen(path, comment="kafka-control-plane-tests")
    return path.read_text()
