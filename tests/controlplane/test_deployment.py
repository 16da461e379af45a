"""The production profile and the published API description stay clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from controlplane.clusters.specs import get_backend
from tests.support.tenants import Tenant, token_client

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_profile_passes_check_deploy(tmp_path: Path) -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "CONTROLPLANE_ENV": "production",
            "CONTROLPLANE_VAR_DIR": str(tmp_path),
            "SECRET_KEY": "x" * 64 + "-a-long-random-production-secret",
            "SECRETS_ENCRYPTION_KEYS": "8Jz0b3cR0YJ0m0kT5Qb7XfY2rQn6sV9wL1aE4dG7hK0=",
            "ALLOWED_HOSTS": "kafka.example.com",
            "DATABASE_URL": "postgres://kcp@db.invalid:5432/kcp",
            "REDIS_URL": "redis://redis.invalid:6379/0",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {"CONTROLPLANE_ENV": "production", "CONTROLPLANE_VAR_DIR": str(tmp_path), "SECRET_KEY": ""}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_encryption_keys(tmp_path: Path) -> None:
    env = {
        "CONTROLPLANE_ENV": "production",
        "CONTROLPLANE_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 64,
        "SECRETS_ENCRYPTION_KEYS": "",
    }
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRETS_ENCRYPTION_KEYS must be set" in result.stderr


def test_openapi_schema_is_valid_without_warnings(tmp_path: Path) -> None:
    result = manage(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
        env={"CONTROLPLANE_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "/api/v1/clusters/" in (tmp_path / "schema.yaml").read_text()


def test_an_installation_can_leave_a_backend_out(tmp_path: Path) -> None:
    """CONTROLPLANE_DISABLED_BACKENDS (the Helm chart leaves `local` out: its brokers would run inside
    a worker pod) removes backends from those the installation offers."""
    shown = "from django.conf import settings; print(','.join(sorted(settings.CONTROLPLANE_BACKENDS)))"
    env = {"CONTROLPLANE_VAR_DIR": str(tmp_path)}
    offered = manage("shell", "--no-imports", "-c", shown, env=env)
    left_out = manage(
        "shell", "--no-imports", "-c", shown, env={**env, "CONTROLPLANE_DISABLED_BACKENDS": "local"}
    )
    assert offered.returncode == left_out.returncode == 0, offered.stderr + left_out.stderr
    assert "local" in offered.stdout.split(",")
    assert left_out.stdout.strip().split(",") == [
        b for b in offered.stdout.strip().split(",") if b != "local"
    ]


def test_asking_for_a_backend_left_out_is_a_400(tenant: Tenant, settings: Any) -> None:
    settings.CONTROLPLANE_BACKENDS = {
        name: factory for name, factory in settings.CONTROLPLANE_BACKENDS.items() if name != "local"
    }
    get_backend.cache_clear()
    response = token_client(tenant.admin).post(
        "/api/v1/clusters/", {"name": "orders", "brokers": 1, "backend": "local"}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "'local' backend is not configured on this installation" in json.dumps(response.json())


def test_a_malformed_trusted_proxy_network_stops_the_start(tmp_path: Path) -> None:
    result = manage(
        "check", env={"CONTROLPLANE_VAR_DIR": str(tmp_path), "TRUSTED_PROXIES": "10.0.0.0/8,ingress"}
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr and "ingress" in result.stderr
