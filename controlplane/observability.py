"""What operators of the control plane itself watch: request metrics, /healthz, /readyz, /metrics."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rest_framework.exceptions import AuthenticationFailed

REQUESTS = Counter("controlplane_http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram("controlplane_http_request_duration_seconds", "HTTP request latency", ["method", "route"])
MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _route(request: HttpRequest) -> str:
    # The URL pattern, not the path: ids in paths would make the label set unbounded.
    try:
        return resolve(request.path_info).route or "unmatched"
    except Resolver404:
        return "unmatched"


class RequestMetricsMiddleware:
    """Counts and times requests; refuses bodies over the size limit before anything parses them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self._too_large(request) or self.get_response(request)
        route = _route(request)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    @staticmethod
    def _too_large(request: HttpRequest) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if length > MAX_BODY_BYTES:
            return JsonResponse(
                {"detail": f"Request body of {length} bytes exceeds the limit of {MAX_BODY_BYTES} bytes."},
                status=413,
            )
        return None


class DomainCollector(Collector):
    """Clusters by status and operations by kind and state, read from the database at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only: without this, registering would query the database at import time.
        yield GaugeMetricFamily("controlplane_clusters", "Clusters by status", labels=["status", "backend"])
        yield GaugeMetricFamily(
            "controlplane_operations", "Operations by kind and state", labels=["kind", "state"]
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from controlplane.clusters.models import Cluster
        from controlplane.operations.models import Operation

        clusters = GaugeMetricFamily(
            "controlplane_clusters", "Clusters by status", labels=["status", "backend"]
        )
        for row in Cluster.objects.values("status", "backend").annotate(n=Count("id")):
            clusters.add_metric([row["status"], row["backend"]], row["n"])
        yield clusters
        operations = GaugeMetricFamily(
            "controlplane_operations", "Operations by kind and state", labels=["kind", "state"]
        )
        for row in Operation.objects.values("kind", "state").annotate(n=Count("id")):
            operations.add_metric([row["kind"], row["state"]], row["n"])
        yield operations


_domain_collector = DomainCollector()
REGISTRY.register(_domain_collector)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, naming every organization's clusters and consumer groups: only for the
    operator's Prometheus (`METRICS_BEARER_TOKEN`) and staff API tokens."""
    from controlplane.api.authentication import authenticate_token, bearer_token
    from controlplane.tenancy import throttle

    denied = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
    denied["WWW-Authenticate"] = 'Bearer realm="metrics"'
    try:
        raw = bearer_token(request)
    except AuthenticationFailed:
        return denied
    if raw is None:
        return denied
    configured = settings.METRICS_BEARER_TOKEN
    if not (configured and hmac.compare_digest(raw.encode(), configured.encode())):
        try:
            token = authenticate_token(raw, address=throttle.client_address(request))
        except throttle.AuthenticationThrottled as exc:
            limited = HttpResponse(f"{exc}\n", status=429, content_type="text/plain")
            limited["Retry-After"] = str(exc.retry_after)
            return limited
        if token is None or not token.user.is_staff:
            return denied
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database: {exc}"
    return None


def _check_task_transport() -> str | None:
    from controlplane.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"task transport: {exc}"
    return None


def readyz(request: HttpRequest) -> JsonResponse:
    problems = [p for p in (_check_database(), _check_task_transport()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ready"})
