"""One error shape for the whole API: `{"detail": ...}` plus field messages for validation errors."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from controlplane.clusters.actions import ClusterNameTaken, ClusterNotChangeable
from controlplane.operations.actions import OperationConflict, OperationNotCancellable


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OperationConflict):
        body: dict[str, Any] = {"detail": str(exc), "code": "operation_in_progress"}
        if exc.running is not None:
            body["operation"] = str(exc.running.id)
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ClusterNotChangeable | OperationNotCancellable):
        return Response({"detail": str(exc), "code": "conflict"}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ClusterNameTaken):
        return Response({"name": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
