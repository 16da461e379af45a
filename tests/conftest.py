"""Fixtures shared by every test package live in tests/support and are loaded here."""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = [
    "tests.support.kafka",
    "tests.support.tenants",
    "tests.support.workers",
    "tests.support.http_receiver",
    "tests.support.browser",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Every test tenant has three users; the production hasher's deliberate slowness would dominate.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
