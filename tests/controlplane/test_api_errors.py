"""Input no endpoint expects answers a specific JSON 4xx, never a 500 or one of Django's HTML pages:
deeply nested bodies, bodies that are not objects, out-of-range pagination, unknown paths (DEBUG on),
and an unexpected exception under /api/."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.api.common import MAX_JSON_DEPTH
from controlplane.clusters.models import Cluster
from controlplane.operations.choices import OperationKind, OperationState
from controlplane.operations.models import Operation
from tests.support.alerting import make_cluster
from tests.support.tenants import Tenant, token_client

JSON_ENDPOINTS = [
    ("post", "/api/v1/clusters/"),
    ("post", "/api/v1/notification-channels/"),
    ("post", "/api/v1/silences/"),
    ("put", "/api/v1/alert-rules/broker_down/override/"),
    ("post", "/api/v1/tokens/"),
]
LISTS = [
    "/api/v1/clusters/",
    "/api/v1/operations/",
    "/api/v1/alerts/",
    "/api/v1/silences/",
    "/api/v1/notification-channels/",
    "/api/v1/tokens/",
]


@pytest.fixture
def cluster(tenant: Tenant) -> Cluster:
    return make_cluster(tenant.organization, name="payments")


def nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_deeply_nested_json_is_a_400(tenant: Tenant, method: str, path: str) -> None:
    client = token_client(tenant.owner)

    response = getattr(client, method)(path, nested(990), content_type="application/json")

    assert response.status_code == 400, response.content
    assert "nested deeper than" in response.json()["detail"]


def test_nesting_up_to_the_limit_is_parsed(tenant: Tenant) -> None:
    # Parsed, then refused for what it says: the field errors show the body was read.
    response = token_client(tenant.owner).post(
        "/api/v1/tokens/", nested(MAX_JSON_DEPTH - 1), content_type="application/json"
    )

    assert response.status_code == 400
    assert "name" in response.json()


@pytest.mark.parametrize("body", ["[]", '"x"', "5", "null", "[1, 2]"])
def test_override_body_that_is_not_an_object_is_a_400(tenant: Tenant, body: str) -> None:
    response = token_client(tenant.owner).put(
        "/api/v1/alert-rules/broker_down/override/", body, content_type="application/json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["non_field_errors"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=99999999999999999999", "limit"),
        ("limit=1000000", "limit"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=99999999999999999999", "offset"),
        ("offset=-1", "offset"),
    ],
)
def test_pagination_out_of_range_is_a_400(tenant: Tenant, path: str, query: str, parameter: str) -> None:
    response = token_client(tenant.viewer).get(f"{path}?{query}")

    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]


def test_pagination_within_range(tenant: Tenant, cluster: Cluster) -> None:
    body = token_client(tenant.viewer).get("/api/v1/clusters/?limit=500&offset=0").json()

    assert [c["id"] for c in body["results"]] == [str(cluster.pk)]


@pytest.mark.parametrize("path", ["/api/v1/alerts/0.5/", "/api/v1/nothing-here/", "/api/v2/clusters/"])
def test_unknown_api_paths_are_json_404s_even_in_debug(tenant: Tenant, settings, path: str) -> None:
    settings.DEBUG = True

    response = token_client(tenant.viewer).get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()
    assert b"urlpatterns" not in response.content and b"URLconf" not in response.content


def test_a_missing_trailing_slash_is_named(tenant: Tenant, settings) -> None:
    settings.DEBUG = True

    response = token_client(tenant.owner).post("/api/v1/clusters", {"name": "x"}, format="json")

    assert response.status_code == 404
    assert "end with a slash" in response.json()["detail"]


def test_an_unexpected_error_under_api_is_a_json_500_even_in_debug(
    tenant: Tenant, cluster: Cluster, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = True

    def broken(cluster_id: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("monitoring.lag_state.load", broken)
    client = token_client(tenant.viewer)
    client.raise_request_exception = False

    response = client.get(f"/api/v1/clusters/{cluster.pk}/consumer-groups/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b"secret internals" not in response.content


def test_a_cluster_lists_all_its_operations_not_only_active_ones(tenant: Tenant, cluster: Cluster) -> None:
    now = timezone.now()
    finished = [
        Operation.objects.create(
            cluster=cluster, kind=OperationKind.RESTART, state=state, requested_by_name="t", finished_at=now
        )
        for state in (OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED)
    ]
    running = Operation.objects.create(
        cluster=cluster, kind=OperationKind.SCALE, state=OperationState.RUNNING, requested_by_name="t"
    )

    body = token_client(tenant.viewer).get(f"/api/v1/clusters/{cluster.pk}/operations/").json()

    assert {o["id"] for o in body["results"]} == {str(o.pk) for o in [*finished, running]}
    assert body["count"] == 4


def test_list_filters_do_not_hide_a_detail(tenant: Tenant, cluster: Cluster) -> None:
    client = token_client(tenant.viewer)

    assert client.get(f"/api/v1/clusters/{cluster.pk}/?status=deleted").status_code == 200
    assert client.get(f"/api/v1/clusters/{cluster.pk}/anomalies/?status=nonsense").status_code == 200


def test_anonymous_requests_get_a_json_401() -> None:
    response = APIClient().get("/api/v1/clusters/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("path", "extra", "field", "words"),
    [
        ("/api/v1/silences/", {"ends_at": "9999-12-31T00:00:00Z"}, "ends_at", "within 365 days"),
        ("/api/v1/maintenance-windows/", {"ends_at": "9999-12-31T00:00:00Z"}, "ends_at", "within 365 days"),
        (
            "/api/v1/maintenance-windows/",
            {"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"},
            "ends_at",
            "in the future",
        ),
        (
            "/api/v1/silences/",
            {"starts_at": "9000-01-01T00:00:00Z", "ends_at": "9000-01-02T00:00:00Z"},
            "starts_at",
            "within 365 days",
        ),
    ],
)
def test_periods_must_lie_ahead_and_within_a_year(
    tenant: Tenant, cluster: Cluster, path: str, extra: dict, field: str, words: str
) -> None:
    body = {"cluster": str(cluster.pk), "comment": "deploy", **extra}

    response = token_client(tenant.admin).post(path, body, format="json")

    assert response.status_code == 400, response.content
    assert words in response.json()[field][0]


def test_a_browser_gets_json_errors_too(tenant: Tenant, settings) -> None:
    settings.DEBUG = True
    client = token_client(tenant.viewer)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

    for path in ("/api/v1/alerts/999999/", "/api/v1/clusters/?limit=0", "/api/v1/nowhere/"):
        response = client.get(path, HTTP_ACCEPT=browser)
        assert response["Content-Type"] == "application/json", path
        assert "detail" in response.json() or "limit" in response.json()


@pytest.mark.parametrize("path", ["/api/v1/alert-rules/", "/api/v1/alert-rules/prometheus/"])
def test_an_organization_that_is_no_slug_is_a_400(tenant: Tenant, path: str) -> None:
    # Found by schemathesis: a NUL in the slug reached PostgreSQL, which refuses it (500).
    response = token_client(tenant.viewer).get(path, {"organization": "acme\x00x"})

    assert response.status_code == 400
    assert "organization" in response.json()
