"""A real Prometheus server (the Debian package's /usr/bin/prometheus) scraping test servers.

`PrometheusServer` starts one on a free loopback port with its own temporary configuration and TSDB
directory, scraping the given targets every second, and queries it through its HTTP API. Tests that
use it skip, saying why, when the binary is not installed (`scripts/install-system-test-deps.sh`
installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from tests.support.kafka import free_port

PROMETHEUS_BINARY = "/usr/bin/prometheus"


def require_prometheus() -> str:
    """The binary's path; skips the calling test when it is missing."""
    binary = shutil.which("prometheus") or (PROMETHEUS_BINARY if Path(PROMETHEUS_BINARY).exists() else None)
    if binary is None:
        pytest.skip(
            "the prometheus binary is not installed (Debian package `prometheus`; "
            "scripts/install-system-test-deps.sh installs it)"
        )
    return binary


class PrometheusServer:
    """One Prometheus process on 127.0.0.1 scraping `targets` (URLs of /metrics pages) every second,
    with `bearer_token` if given, evaluating `rules` (a rule file's YAML text), if given, every second
    too."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        rules: str | None = None,
        job: str = "controlplane",
        bearer_token: str | None = None,
    ) -> None:
        self.binary = require_prometheus()
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self._log_path = self._dir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        scrape_configs = []
        for index, target in enumerate(targets):
            url = urlsplit(target)
            scrape_configs.append(
                {
                    "job_name": f"{job}-{index}",
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "metrics_path": url.path or "/metrics",
                    "scheme": url.scheme or "http",
                    "static_configs": [{"targets": [url.netloc]}],
                }
            )
            if bearer_token is not None:
                # As an operator's Prometheus does: /metrics answers only METRICS_BEARER_TOKEN.
                scrape_configs[-1]["authorization"] = {"type": "Bearer", "credentials": bearer_token}
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": scrape_configs,
        }
        if rules is not None:
            (self._dir / "rules.yml").write_text(rules)
            config["rule_files"] = [str(self._dir / "rules.yml")]
        self.config_path = self._dir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> None:
        command = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self._dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
        ]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with code {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {timeout} s:\n{self.log_tail()}")

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Instant query; the `result` list of the API's answer."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {expression!r} failed: {body}")
        return body["data"]["result"]

    def wait_for(self, expression: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Query until the result is not empty; fails with the scrape targets' state after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expression)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no result for {expression!r} after {timeout} s; targets: {self.targets()}; "
                    f"rules: {self.rules()}"
                )
            time.sleep(0.5)

    def targets(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/targets", timeout=5)
        return [
            {k: t.get(k) for k in ("scrapeUrl", "health", "lastError")}
            for t in response.json()["data"]["activeTargets"]
        ]

    def rules(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/rules", timeout=5)
        return [
            {k: r.get(k) for k in ("name", "query", "health", "lastError", "state")}
            for group in response.json()["data"]["groups"]
            for r in group["rules"]
        ]

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
