"""Moving the test database through migrations, for tests of data migrations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets: list[tuple[str, str]] | None = None) -> Any:
    """Migrate to `targets` (every app's latest migration if None) and return the apps registry of
    the resulting state: historical models, as a data migration sees them."""
    executor = MigrationExecutor(connection)  # a fresh one: it reads what is applied now
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def fully_migrated_afterwards() -> Iterator[None]:
    """Whatever happens in the test, later tests get a database at the latest migrations."""
    try:
        yield
    finally:
        migrate()
