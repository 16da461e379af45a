"""The production profile and the published API description stay clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
