"""Plumbing every REST API of the control plane shares (clusters, operations, monitoring, alerting).

One error shape (`{"detail": ...}`, or field -> messages for invalid input), JSON bodies of bounded
depth, strict serializers, bounded pagination, the caller's organization, and the error answers every
operation documents. API errors are JSON, never Django's HTML pages (DEBUG or not).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.permissions import OrganizationRolePermission
from controlplane.clusters.actions import ClusterNameTaken, ClusterNotChangeable
from controlplane.dataplane.errors import ClusterUnreachable, DataPlaneConflict, DataPlaneInvalid
from controlplane.operations.actions import OperationConflict, OperationNotCancellable
from controlplane.tenancy.models import Membership, Organization
from provisioning.ansible.pool import PoolExhausted

logger = logging.getLogger(__name__)

# No request of this API nests deeper than a few levels; the limit keeps recursive code (parsing,
# validation, storing JSON) far from Python's recursion limit.
MAX_JSON_DEPTH = 32
# Offsets are stored as 64-bit integers by the databases; anything larger cannot name a row.
MAX_OFFSET = 2**31 - 1
SLUG = re.compile(r"[-a-zA-Z0-9_]+")


# Errors


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    operation = serializers.UUIDField(required=False, help_text="The operation in the way (409 only).")


ERRORS = {
    400: OpenApiResponse(
        {"type": "object", "additionalProperties": {}},
        description="Invalid input: field -> list of messages (or `detail` for a malformed body).",
    ),
    401: OpenApiResponse(ErrorSerializer, description="No valid API token or session."),
    403: OpenApiResponse(ErrorSerializer, description="Your role may not do this (viewer)."),
    404: OpenApiResponse(ErrorSerializer, description="No such object in your organizations."),
    409: OpenApiResponse(ErrorSerializer, description="The object's state does not allow this now."),
    413: OpenApiResponse(ErrorSerializer, description="The request body is too large."),
    415: OpenApiResponse(ErrorSerializer, description="The body is not JSON (Content-Type)."),
    429: OpenApiResponse(
        ErrorSerializer, description="Too many failed authentications; retry after `Retry-After` seconds."
    ),
    503: OpenApiResponse(
        ErrorSerializer,
        description="The cluster did not answer; nothing was changed. Retry after `Retry-After` seconds.",
    ),
}
# A cluster that did not answer is asked again after this long at the earliest.
UNREACHABLE_RETRY_AFTER_SECONDS = 10


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Domain exceptions as answers: conflicts are 409, a taken name is a field error."""
    if isinstance(exc, OperationConflict):
        body: dict[str, Any] = {"detail": str(exc), "code": "operation_in_progress"}
        if exc.running is not None:
            body["operation"] = str(exc.running.id)
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ClusterNotChangeable | OperationNotCancellable):
        return conflict(exc)
    if isinstance(exc, ClusterNameTaken):
        return Response({"name": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PoolExhausted):  # lost a race for a pool's last hosts after validation
        return Response({"brokers": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataPlaneInvalid):
        return Response({field: [message] for field, message in exc.errors.items()}, status=400)
    if isinstance(exc, DataPlaneConflict):
        return conflict(exc)
    if isinstance(exc, ClusterUnreachable):
        return Response(
            {"detail": str(exc), "code": "cluster_unreachable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER_SECONDS)},
        )
    # Imported here: rest_framework.views reads DRF's settings, which name this module's parser.
    from rest_framework.views import exception_handler as drf_exception_handler

    return drf_exception_handler(exc, context)


def conflict(exc: Exception) -> Response:
    return Response({"detail": str(exc), "code": "conflict"}, status=status.HTTP_409_CONFLICT)


def refuse(errors: Mapping[str, str]) -> None:
    """Raise domain validation messages (field -> message) as a 400."""
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})


@csrf_exempt  # it changes nothing; a CSRF refusal would be an HTML page
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Every /api/ path no route matches: JSON, and never Django's debug page listing every route."""
    detail = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
            detail += " API paths end with a slash."
        except Resolver404:
            pass
    return JsonResponse({"detail": detail}, status=404)


class ApiErrorMiddleware:
    """An unexpected exception under /api/ answers a JSON 500 (logged with its traceback) instead of
    Django's HTML error page, which in DEBUG shows settings and source."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        logger.exception("path=%s method=%s unhandled API error", request.path, request.method)
        return JsonResponse({"detail": "Internal server error; it has been logged."}, status=500)


# Input


class BoundedJSONParser(JSONParser):
    """JSON bodies nested at most `MAX_JSON_DEPTH` deep: deeper ones are 400, not a RecursionError."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    # Iterative on purpose: a recursive walk would hit the recursion limit it protects against.
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, instead of silently ignoring a typo, and values of another JSON
    type than the schema documents (DRF would read `5` as the name "5", or "true" as true)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; allowed: " + ", ".join(sorted(self.fields))] for name in unknown}
                )
            # Forms of the dashboard reuse these serializers with their text values.
            check_types = not self.context.get("form_values", False)
            wrong = check_types and {
                name: [message]
                for name, field in self.fields.items()
                if name in data and (message := json_type_error(field, data[name]))
            }
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


def json_type_error(field: serializers.Field, value: Any) -> str | None:
    """Why `value` is not of the JSON type the field is documented with (in DRF's words for that
    field); None when it is."""
    if value is None or field.read_only:
        return None  # DRF says itself whether null is allowed
    if isinstance(field, serializers.BooleanField):
        ok = isinstance(value, bool)
    elif isinstance(field, serializers.IntegerField):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(field, serializers.DecimalField | serializers.FloatField):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return "Expected a list of items."
        errors = [json_type_error(field.child, item) for item in value]
        return next((f"Item {i}: {e}" for i, e in enumerate(errors) if e), None)
    elif isinstance(field, serializers.DictField | serializers.Serializer):
        return None if isinstance(value, dict) else "Expected an object."
    elif isinstance(field, serializers.JSONField):
        return None
    else:  # text, choices, slugs, UUIDs, dates and times travel as strings
        return None if isinstance(value, str) else "Not a valid string."
    return None if ok else str(field.error_messages["invalid"])


class Pagination(LimitOffsetPagination):
    """`limit` and `offset` within bounds, or a 400 naming the parameter (DRF would silently use its
    default for a bad value, and pass an overflowing offset to the database)."""

    max_limit = 500

    def get_limit(self, request: Request) -> int:
        return _bounded_int(request, self.limit_query_param, 1, self.max_limit, self.default_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded_int(request, self.offset_query_param, 0, MAX_OFFSET, 0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters


def _bounded_int(request: Request, name: str, low: int, high: int, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ValidationError({name: [f"{name} must be a whole number from {low} to {high}."]})
    return value


def boolean_parameter(request: Request, name: str) -> bool:
    """A true/false query parameter (absent: false); anything else is a 400, not silently false."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() not in ("true", "false"):
        raise ValidationError({name: [f"{name} must be true or false."]})
    return raw.lower() == "true"


# Tenancy


def target_organization(request: Request, slug: str | None, *, write: bool) -> Organization:
    """The organization a request means: named by slug, or the caller's only one."""
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    if slug and not SLUG.fullmatch(slug):
        raise ValidationError({"organization": ["Not an organization slug (letters, digits, - and _)."]})
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
        if membership is None:
            raise ValidationError({"organization": [f"You are not a member of an organization {slug!r}."]})
    else:
        found = list(memberships[:2])
        if len(found) != 1:
            raise ValidationError(
                {"organization": ["Name the organization (its slug): you belong to several or none."]}
            )
        membership = found[0]
    if write and not membership.can_write:
        raise PermissionDenied(OrganizationRolePermission.message)
    return membership.organization


class ListFiltersOnly:
    """Query filters narrow lists only: `GET /clusters/{id}/?status=x` finds the cluster whatever
    `status` says (DRF would filter the detail lookup too, and answer 400 or 404)."""

    action: str | None

    def filter_queryset(self, queryset: Any) -> Any:
        return super().filter_queryset(queryset) if self.action == "list" else queryset  # type: ignore[misc]
