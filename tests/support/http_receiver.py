"""A real HTTP server on loopback that records what it receives, for notification tests.

Notifiers post to it exactly as they would to PagerDuty, Slack or a customer's webhook endpoint,
over a real socket. It can be told to fail the next N requests with a given status, or to answer
slowly, to exercise retry classification and timeouts.

    def test_something(http_receiver: HttpReceiver) -> None:
        http_receiver.fail_first(2, status=503)
        ...post to http_receiver.url_for("/hook")...
        request = http_receiver.wait_for_requests(3)[-1]
        assert request.json()["event"] == "trigger"

Loaded as a pytest plugin by `tests/conftest.py`, which provides the `http_receiver` fixture. Using it
allows notifications to 127.0.0.1 (`allow_loopback_receivers`), which they refuse otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    received_at: float = 0.0  # time.monotonic() when the request was read

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode()


@dataclass(frozen=True)
class ProgrammedResponse:
    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpReceiver:
    """Threaded HTTP server on 127.0.0.1 with a free port; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._queued: deque[ProgrammedResponse] = deque()
        self._default = ProgrammedResponse()
        self._delay_seconds = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                response = receiver._record(
                    RecordedRequest(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        received_at=time.monotonic(),
                    )
                )
                if receiver._delay_seconds:
                    receiver._stopping.wait(receiver._delay_seconds)
                try:
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests); nothing left to answer

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean; requests are recorded instead

        self._server = ThreadingHTTPServer((self._host, 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop(), and so every test's teardown, quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="http-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}"

    # Programming responses

    def respond_with(
        self, status: int = 200, body: bytes | str = b"ok", headers: Mapping[str, str] | None = None
    ) -> None:
        """The answer to every request not covered by `fail_first`."""
        with self._lock:
            self._default = ProgrammedResponse(status, _bytes(body), dict(headers or {}))

    def fail_first(
        self,
        count: int,
        status: int = 500,
        body: bytes | str = b"failure programmed by the test",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `count` requests with `status`, then go back to the default answer."""
        with self._lock:
            self._queued.extend(
                ProgrammedResponse(status, _bytes(body), dict(headers or {})) for _ in range(count)
            )

    def delay_responses(self, seconds: float) -> None:
        """Hold each answer this long (to make a client's timeout expire)."""
        self._delay_seconds = seconds

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queued.clear()
            self._default = ProgrammedResponse()
        self._delay_seconds = 0.0

    # Inspecting what arrived

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; fail the test if they do not."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} requests, received {len(self._requests)}")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> ProgrammedResponse:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            return self._queued.popleft() if self._queued else self._default


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


@pytest.fixture
def allow_loopback_receivers(settings: Any) -> None:
    """Notifications refuse loopback targets; the receivers of the tests live there, so the tests
    allow them the way an operator allows an on-premise receiver (NOTIFICATION_ALLOWED_HOSTS).
    `start_worker` passes the setting on to worker processes."""
    settings.NOTIFICATION_ALLOWED_HOSTS = [*settings.NOTIFICATION_ALLOWED_HOSTS, "127.0.0.1"]


@pytest.fixture
def http_receiver(allow_loopback_receivers: None) -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver
