"""Styled 403 and 404 pages with the navigation, never Django's debug page; the API keeps JSON; the
API documentation needs nothing from outside this server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from controlplane.clusters.models import Cluster
from tests.support.tenants import Tenant

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_a_missing_page_is_the_dashboards_404(tenant: Tenant, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    client = signed_in(tenant.viewer)

    for path in ("/no-such-page/", "/clusters/00000000-0000-0000-0000-000000000000/"):
        response = client.get(path)
        page = response.content.decode()
        assert response.status_code == 404
        assert "Page not found" in page and 'aria-label="Main"' in page, path
        assert "URLconf" not in page and "Traceback" not in page


def test_another_organizations_cluster_is_a_404_page(
    tenant: Tenant, other_tenant: Tenant, cluster: Cluster
) -> None:
    response = signed_in(other_tenant.owner).get(f"/clusters/{cluster.pk}/")
    assert response.status_code == 404 and b"Page not found" in response.content
    assert cluster.name.encode() not in response.content


def test_a_viewers_forged_post_is_a_403_page_saying_why(
    tenant: Tenant, cluster: Cluster, settings: Any
) -> None:
    settings.DEBUG = True
    response = signed_in(tenant.viewer).post(
        f"/clusters/{cluster.pk}/delete/", {"confirm_name": cluster.name}
    )
    assert response.status_code == 403
    assert b"read-only (viewer)" in response.content and b'aria-label="Main"' in response.content
    cluster.refresh_from_db()
    assert cluster.status == "requested"


def test_a_post_without_its_csrf_token_is_a_403_page(tenant: Tenant, cluster: Cluster) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.admin)
    response = client.post(f"/clusters/{cluster.pk}/delete/", {"confirm_name": cluster.name})
    assert response.status_code == 403 and b"did not come from this page" in response.content
    cluster.refresh_from_db()
    assert cluster.status == "requested"


def test_the_api_keeps_json_errors(tenant: Tenant, settings: Any) -> None:
    settings.DEBUG = True
    response = signed_in(tenant.viewer).get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and response.json()["detail"].startswith("No API endpoint")


def test_api_docs_load_everything_from_this_server(tenant: Tenant) -> None:
    client = signed_in(tenant.viewer)
    page = client.get("/api/docs/").content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url
