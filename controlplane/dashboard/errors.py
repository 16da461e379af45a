"""The dashboard's own 403 and 404 pages, with the navigation, for every path outside the API.

Django answers a missing page with its debug page while DEBUG is on (it lists every route) and a
plain one otherwise; `ErrorPageMiddleware` puts these pages in place of either. The API keeps its
JSON errors (`controlplane.api.common`).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

# Marks a response rendered here, so the middleware leaves it as it is.
STYLED = "_dashboard_error_page"

TITLES = {403: "Not allowed", 404: "Page not found"}
DEFAULT_MESSAGES = {
    403: "Your role in this organization does not allow this.",
    404: "There is nothing here, or it belongs to an organization you are not a member of.",
}


def error_page(request: HttpRequest, status: int, message: str = "") -> HttpResponse:
    context = {"status": status, "title": TITLES[status], "message": message or DEFAULT_MESSAGES[status]}
    response = HttpResponse(render_to_string("error.html", context, request=request), status=status)
    setattr(response, STYLED, True)
    return response


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: the reason the view gave (the API's wording for a viewer) is shown."""
    return error_page(request, 403, str(exception or ""))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404. The exception's text is not shown: Django's names the URL patterns tried."""
    return error_page(request, 404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form posted without its token (a forged request, or an expired page)."""
    return error_page(
        request,
        403,
        "The form was not accepted: it did not come from this page. Reload the page and try again.",
    )


class ErrorPageMiddleware:
    """Every HTML 403 or 404 outside /api/ becomes the dashboard's page, DEBUG or not."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in TITLES
            and not getattr(response, STYLED, False)
            and not request.path.startswith(("/api/", "/static/"))
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return error_page(request, response.status_code)
        return response
