"""What PostgreSQL says of the statements this session prepared (`monitoring.collection_sql`)."""

from __future__ import annotations

from django.db import connection


def generic_plans_of(beginning: str) -> int:
    """How many times this session ran its prepared statements starting with `beginning` on the
    generic plan (0 when it has none)."""
    return sum(prepared_statements(beginning))


def prepared_statements(beginning: str) -> list[int]:
    """The generic-plan runs of each statement this session prepared that starts with `beginning`
    (placeholders are `$1`, `$2`, ...): one element per distinct statement."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans FROM pg_prepared_statements")
        return [plans for statement, plans in cursor.fetchall() if statement.startswith(beginning)]
