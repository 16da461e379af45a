"""Fixtures shared by every test package live in tests/support and are loaded here."""

pytest_plugins = [
    "tests.support.kafka",
    "tests.support.tenants",
    "tests.support.workers",
    "tests.support.http_receiver",
]
