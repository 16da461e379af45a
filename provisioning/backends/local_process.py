"""Process and port plumbing for the `local` backend (Linux: relies on /proc).

Broker processes outlive the Celery worker that started them, so a broker is identified by what the
state file recorded, never by a Popen object: its pid plus the kernel's start time of that pid (a pid
alone may have been reused by an unrelated process), and a launch token in its environment, which finds
a broker whose pid was never recorded because the worker died right after starting it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCH_TOKEN_ENV = "KCP_LOCAL_BROKER_TOKEN"

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Children started by this process and still running, kept so they can be reaped (a dead child stays
# a zombie, which looks alive to kill(pid, 0)); then their exit status, keyed by pid and start time
# because pids are reused.
_CHILDREN: dict[int, tuple[subprocess.Popen[bytes], int]] = {}
_EXIT_CODES: dict[tuple[int, int], int] = {}
# Brokers are started and stopped from several threads at once (`stop_all` stops every broker in
# parallel): two threads that find the same child ended must not both take it off the table, nor one
# take off a new child that was given the pid the other just reaped.
_CHILDREN_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProcessHandle:
    pid: int
    start_time: int  # clock ticks after boot, from /proc/<pid>/stat


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
    return raw[raw.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The start time of a live (non-zombie) process, or None when there is none with this pid."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def reap_children() -> None:
    with _CHILDREN_LOCK:
        for pid, (child, start_time) in list(_CHILDREN.items()):
            code = child.poll()
            if code is not None:
                _EXIT_CODES[(pid, start_time)] = code
                del _CHILDREN[pid]


def is_alive(pid: int, start_time: int) -> bool:
    reap_children()
    child = _CHILDREN.get(pid)
    if child is not None and child[1] == start_time:
        # Not reaped yet. Its /proc entry may already read as a zombie while its other threads are
        # still exiting; only once reaped is it gone for kill(pid, 0) and its exit status known.
        return True
    return process_start_time(pid) == start_time


def exit_description(handle: ProcessHandle) -> str | None:
    """How a child of this process ended, in words; None when it is not ours or still running."""
    reap_children()
    code = _EXIT_CODES.get((handle.pid, handle.start_time))
    if code is None:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by signal {-code} ({name})"
    return f"exited with status {code}"


def launch(
    argv: Sequence[str], *, log_path: Path, env: Mapping[str, str], cwd: Path, token: str
) -> ProcessHandle:
    """Start a process in its own session, output appended to `log_path`.

    A session of its own keeps the broker alive when the worker that launched it is killed (a signal
    to the worker's process group does not reach it) and gives one process group to signal on stop.
    """
    full_env = {**os.environ, **env, LAUNCH_TOKEN_ENV: token, "NO_COLOR": "1"}
    with log_path.open("ab") as log:
        log.write(
            f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} start: {' '.join(argv)}\n".encode()
        )
        log.flush()
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
            close_fds=True,  # never hand the cluster lock's descriptor to a broker
        )
    start_time = process_start_time(child.pid)
    if start_time is None:
        # It died before we could look at it; record an impossible start time so it reads as dead.
        start_time = -1
    with _CHILDREN_LOCK:
        _CHILDREN[child.pid] = (child, start_time)
    return ProcessHandle(child.pid, start_time)


def find_by_token(token: str) -> ProcessHandle | None:
    """The live process whose environment carries this launch token, if any."""
    needle = f"{LAUNCH_TOKEN_ENV}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pid = int(entry.name)
            start_time = process_start_time(pid)
            if start_time is not None:
                return ProcessHandle(pid, start_time)
    return None


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# How long a SIGKILLed process may take to disappear (the kernel frees a large heap first).
KILL_WAIT_SECONDS = 30.0


def stop(handle: ProcessHandle, *, grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds (at once when `grace` is 0); a
    no-op when it is already gone. The identity check comes first so a reused pid is never signalled.
    """
    if not is_alive(handle.pid, handle.start_time):
        return
    if grace > 0:
        _signal_group(handle.pid, signal.SIGTERM)
        if wait_until(lambda: not is_alive(handle.pid, handle.start_time), grace):
            return
    _signal_group(handle.pid, signal.SIGKILL)
    wait_until(lambda: not is_alive(handle.pid, handle.start_time), KILL_WAIT_SECONDS)


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)  # the broker leads its own session, so its pgid is its pid
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def tail(path: Path, lines: int) -> list[str]:
    """The last non-empty lines of a log, without terminal colour codes."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    cleaned = [_ANSI_ESCAPE.sub("", line).rstrip() for line in text.splitlines()]
    return [line for line in cleaned if line][-lines:]


def pick_free_port(host: str, *, exclude: set[int]) -> int:
    """A port nobody listens on now. The caller records it before launching so two launches never
    pick the same one; a process grabbing it in between is caught when the broker fails to bind."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port
    raise OSError(errno.EADDRINUSE, f"no free port on {host}")


def port_is_free(host: str, port: int, *, settle: float = 1.0) -> bool:
    """Whether a server could bind `port` now.

    SO_REUSEADDR, as servers set it, so connections of a stopped broker lingering in TIME_WAIT do not
    count as taken. Right after a process is killed its sockets take a moment to be torn down and
    binding fails meanwhile, so a failure only counts once it lasts `settle` seconds.
    """
    return wait_until(lambda: _can_bind(host, port), settle, interval=0.02)


def _can_bind(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def accepts_connections(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None) -> Iterator[bool]:
    """An exclusive flock on `path`, released when the holder exits, even by SIGKILL.

    Yields False when `timeout` passed without the lock. The file may be unlinked by its holder (when
    a cluster is deleted); a waiter that then gets the lock on the unlinked file retries on the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            acquired = _flock(fd, deadline)
        except BaseException:
            os.close(fd)
            raise
        if acquired and not _same_file(fd, path):
            os.close(fd)
            continue
        break
    try:
        yield acquired
    finally:
        if acquired:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _flock(fd: int, deadline: float | None) -> bool:
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
