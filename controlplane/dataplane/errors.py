"""What data-plane actions refuse with; the API maps each to its status code (400, 409, 503)."""

from __future__ import annotations

from collections.abc import Mapping


class DataPlaneInvalid(Exception):
    """The request cannot be carried out as asked: field -> message (400)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


class DataPlaneConflict(Exception):
    """The object's state does not allow it now: it exists, is protected, is Kafka's own (409)."""


class ClusterUnreachable(Exception):
    """The cluster did not answer; nothing was changed and the same request may be sent again (503)."""
