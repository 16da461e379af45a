"""Dashboard pages. Each view reads through the scoped queries, validates with a form and calls one
action; the rules live in the domain modules."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_filters import rest_framework as filters

from controlplane.api.permissions import can_write, organizations_of
from controlplane.api.serializers import ClusterUpdateSerializer
from controlplane.api.views import ClusterFilterSet, OperationFilterSet
from controlplane.audit.actions import Actor
from controlplane.clusters.actions import (
    CHANGEABLE_STATUSES,
    ClusterNameTaken,
    ClusterNotChangeable,
    request_cluster_create,
    request_cluster_delete,
    require_changeable,
    update_cluster_settings,
)
from controlplane.clusters.choices import Backend, ClusterStatus, DriftPolicy
from controlplane.clusters.models import Cluster
from controlplane.clusters.validation import plan_new_cluster
from controlplane.dashboard import operate
from controlplane.dashboard.forms import ApiTokenForm, ClusterForm, placement_preview
from controlplane.dashboard.panels import monitoring_context
from controlplane.dashboard.queries import (
    brokers_by_rack,
    listed_clusters,
    log_tail,
    operation_to_follow,
    require_write,
    visible_clusters,
    visible_operations,
    writable_organizations,
)
from controlplane.operations.actions import OperationConflict, OperationNotCancellable, request_cancel
from controlplane.operations.choices import ACTIVE_OPERATION_STATES, OperationKind, OperationState
from controlplane.operations.models import Operation
from controlplane.tenancy.actions import create_api_token, revoke_api_token
from controlplane.tenancy.models import ApiToken
from controlplane.tenancy.throttle import AuthenticationThrottled
from monitoring.models import HealthStatus
from provisioning.ansible.pool import PoolExhausted

# Session key holding a just-created token's secret until the next page shows it, once.
NEW_TOKEN_SESSION_KEY = "dashboard.new_api_token"
OPERATIONS_LISTED = 25
OPERATIONS_PER_PAGE = 50
OPERATION_FILTERS = ("state", "kind", "cluster")
CLUSTER_FILTERS = ("name", "status", "backend", "health")


class ClusterListFilterSet(ClusterFilterSet):
    """The API's cluster filters, and the health the last collection found."""

    health = filters.ChoiceFilter(field_name="health__status", choices=HealthStatus.choices)

    class Meta(ClusterFilterSet.Meta):
        fields = [*ClusterFilterSet.Meta.fields, "health"]


@login_required
@require_GET
def cluster_list(request: HttpRequest) -> HttpResponse:
    """The user's clusters, searched by name and filtered by status, backend and health as the API's
    list is; deleted ones only when asked for by status."""
    chosen = {name: value for name, value in request.GET.items() if name in CLUSTER_FILTERS and value}
    filters = ClusterListFilterSet(chosen, queryset=listed_clusters(request.user))
    valid = filters.is_valid()
    clusters = filters.qs if valid else Cluster.objects.none()
    if "status" not in chosen:
        clusters = clusters.exclude(status=ClusterStatus.DELETED)
    context = {
        "clusters": clusters.select_related("health"),
        "may_create": writable_organizations(request.user).exists(),
        "chosen": chosen,
        "filter_errors": [] if valid else [m for ms in filters.errors.values() for m in ms],
        "statuses": ClusterStatus.choices,
        "backends": Backend.choices,
        "health_statuses": HealthStatus.choices,
        "any_clusters": visible_clusters(request.user).exists(),
    }
    return render(request, "dashboard/cluster_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def cluster_create(request: HttpRequest) -> HttpResponse:
    organizations = list(writable_organizations(request.user))
    if not organizations:
        raise PermissionDenied("Creating a cluster needs the admin or owner role in an organization.")
    posted = request.method == "POST"
    previewing = "preview" in request.POST
    form = ClusterForm(request.POST if posted else None, organizations=organizations, dry_run=previewing)
    preview = placement_preview(request.POST if posted else form.initial_values())
    manifests = ""
    plan = None
    # "Preview" runs every check without creating anything, for browsers without JavaScript, and shows
    # the objects a Kubernetes cluster would get, or what other backends render (a host pool's
    # inventory and each broker's configuration).
    if posted and previewing and form.is_valid():
        plan = plan_new_cluster(form.target_organization(), form.spec).plan
        manifests = plan.manifests
    if posted and form.is_valid() and not previewing:
        try:
            cluster, _ = request_cluster_create(
                organization=form.target_organization(), spec=form.spec, actor=Actor.from_request(request)
            )
        except ClusterNameTaken as exc:
            form.add_error("name", str(exc))
        except PoolExhausted as exc:
            form.add_error("brokers", str(exc))
        else:
            messages.success(request, f"Cluster {cluster.name} requested; provisioning has been queued.")
            return redirect("dashboard:cluster-detail", pk=cluster.pk)
    return render(
        request,
        "dashboard/cluster_form.html",
        {"form": form, "preview": preview, "manifests": manifests, "plan": plan},
    )


@login_required
@require_GET
def cluster_placement(request: HttpRequest) -> HttpResponse:
    """The placement preview alone, fetched by the form's script as the layout fields change."""
    return render(request, "dashboard/_placement.html", {"preview": placement_preview(request.GET)})


def live_context(request: HttpRequest, cluster: Cluster) -> dict[str, object]:
    """What the cluster page's live parts show; the page and its refreshes share it. A deleted
    cluster has nothing live left: no health, groups or alerts shown as if it were serving."""
    operation = operation_to_follow(cluster)
    context: dict[str, object] = {
        "cluster": cluster,
        "operation": operation,
        "log_lines": log_tail(operation) if operation else [],
        "operations": cluster.operations.prefetch_related("steps")[:OPERATIONS_LISTED],
        "can_write": can_write(request.user, cluster.organization_id),
        "next_url": reverse("dashboard:cluster-detail", args=[cluster.pk]),
        "deleted": cluster.status == ClusterStatus.DELETED,
    }
    if not context["deleted"]:
        context.update(monitoring_context(cluster))
    return context


@login_required
@require_GET
def cluster_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    cluster = get_object_or_404(visible_clusters(request.user), pk=pk)
    racks = brokers_by_rack(cluster)
    context = {
        **live_context(request, cluster),
        "racks": racks,
        "widest_rack": max((len(rack.brokers) for rack in racks), default=0),
        "changeable": cluster.status in CHANGEABLE_STATUSES,
        "drift_policies": DriftPolicy.choices,
    }
    return render(request, "dashboard/cluster_detail.html", context)


@login_required
@require_GET
def cluster_monitoring(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """The cluster page's live parts alone (panels, operations), fetched by its script to refresh them
    in place."""
    cluster = get_object_or_404(visible_clusters(request.user), pk=pk)
    return render(request, "dashboard/_cluster_monitoring.html", live_context(request, cluster))


@login_required
@require_http_methods(["GET", "POST"])
def cluster_delete(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    cluster = get_object_or_404(visible_clusters(request.user), pk=pk)
    require_write(request.user, cluster.organization_id)
    error = ""
    if request.method == "POST":
        # Typing the name guards against deleting the wrong one of several similar clusters.
        if request.POST.get("confirm_name", "").strip() != cluster.name:
            error = f"Type {cluster.name} to confirm."
        else:
            try:
                request_cluster_delete(cluster=cluster, actor=Actor.from_request(request))
            except (OperationConflict, ClusterNotChangeable) as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Deleting cluster {cluster.name}.")
            return redirect("dashboard:cluster-detail", pk=cluster.pk)
    return render(request, "dashboard/cluster_delete.html", {"cluster": cluster, "error": error})


@login_required
@require_POST
def cluster_settings(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Self-healing, the drift policy and the metrics interval: the posted ones change, checked by
    the API's serializer (its messages shown as they are), without an operation."""
    cluster = get_object_or_404(visible_clusters(request.user), pk=pk)
    require_write(request.user, cluster.organization_id)
    fields = ClusterUpdateSerializer().fields
    changes = ClusterUpdateSerializer(
        data={name: request.POST[name] for name in fields if name in request.POST},
        context={"form_values": True},
    )
    if not changes.is_valid():
        for name, problems in changes.errors.items():
            label = fields[name].label if name in fields else "Settings"
            messages.error(request, f"{label}: {' '.join(str(problem) for problem in problems)}")
    elif changes.validated_data:
        try:
            update_cluster_settings(
                cluster=cluster, changes=changes.validated_data, actor=Actor.from_request(request)
            )
        except ClusterNotChangeable as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _settings_changed(cluster, changes.validated_data))
    return redirect("dashboard:cluster-detail", pk=cluster.pk)


def _settings_changed(cluster: Cluster, changes: Mapping[str, object]) -> str:
    said = []
    if "self_healing" in changes:
        said.append(f"Self-healing is now {'on' if cluster.self_healing else 'off'}")
    if "drift_policy" in changes:
        said.append(
            "Topic changes made outside the control plane are now reverted"
            if cluster.drift_policy == DriftPolicy.REVERT
            else "Topic changes made outside the control plane are now reported and left as they are"
        )
    if "collection_interval_seconds" in changes:
        said.append(f"Metrics are now collected every {cluster.collection_interval_seconds} s")
    return f"{'; '.join(said)} for {cluster.name}."


@login_required
@require_http_methods(["GET", "POST"])
def cluster_operate(request: HttpRequest, pk: uuid.UUID, kind: str) -> HttpResponse:
    """Scale, restart, replace a broker or upgrade: the form, then a confirmation saying what will
    happen, then the operation. Each step runs the API's checks again."""
    cluster = get_object_or_404(visible_clusters(request.user), pk=pk)
    require_write(request.user, cluster.organization_id)
    operation_kind = operate.KINDS.get(kind)
    if operation_kind is None:
        raise Http404(kind)
    posted = request.method == "POST"
    data = request.POST if posted else request.GET
    values: dict[str, object] = {}
    errors: dict[str | None, list[str]] = {}
    preview = None
    try:
        require_changeable(cluster)
    except (OperationConflict, ClusterNotChangeable) as exc:
        errors[None] = [str(exc)]
    # A rolling restart has nothing to fill in: its confirmation is the first page.
    reviewing = posted or not operation_kind.body().fields
    if reviewing and not errors:
        values, errors = operate.check(operation_kind, cluster, data)
    if reviewing and not errors and posted and "confirm" in data:
        try:
            operation_kind.start(cluster, values, Actor.from_request(request))
        except (OperationConflict, ClusterNotChangeable) as exc:
            errors[None] = [str(exc)]
        else:
            messages.success(request, f"{operation_kind.title} of {cluster.name} started.")
            return redirect("dashboard:cluster-detail", pk=cluster.pk)
    if reviewing and not errors:
        preview = operation_kind.preview(cluster, values)
    context = {
        "cluster": cluster,
        "kind": operation_kind,
        "values": values or {name: data.get(name, "") for name in operation_kind.body().fields},
        "errors": {name: found for name, found in errors.items() if name},
        "refusals": errors.get(None, []),
        "preview": preview,
        "brokers": cluster.brokers.order_by("node_id"),
        "versions": [v for v in settings.KAFKA_VERSIONS if v != cluster.kafka_version],
    }
    return render(request, "dashboard/operate.html", context)


@login_required
@require_GET
def operation_list(request: HttpRequest) -> HttpResponse:
    """Operations across every cluster the user can see, filtered as the API's list is."""
    chosen = {name: value for name, value in request.GET.items() if name in OPERATION_FILTERS and value}
    filters = OperationFilterSet(chosen, queryset=visible_operations(request.user).prefetch_related("steps"))
    valid = filters.is_valid()
    operations = filters.qs.order_by("-created_at", "-id") if valid else Operation.objects.none()
    query = {name: value for name, value in chosen.items()}
    context = {
        "page": Paginator(operations, OPERATIONS_PER_PAGE).get_page(request.GET.get("page")),
        "query": urlencode(query),
        "chosen": chosen,
        "filter_errors": [] if valid else [m for ms in filters.errors.values() for m in ms],
        "states": OperationState.choices,
        "kinds": OperationKind.choices,
        "clusters": visible_clusters(request.user).order_by("name"),
        "several_organizations": organizations_of(request.user).count() > 1,
    }
    return render(request, "dashboard/operation_list.html", context)


@login_required
@require_GET
def operation_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    operation = get_object_or_404(visible_operations(request.user).prefetch_related("steps"), pk=pk)
    context = {
        "operation": operation,
        "cluster": operation.cluster,
        "log_lines": operation.log_lines.select_related("step"),
        "can_write": can_write(request.user, operation.cluster.organization_id),
    }
    return render(request, "dashboard/operation_detail.html", context)


@login_required
@require_POST
def operation_cancel(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    operation = get_object_or_404(visible_operations(request.user), pk=pk)
    require_write(request.user, operation.cluster.organization_id)
    try:
        operation = request_cancel(operation=operation, actor=Actor.from_request(request))
    except OperationNotCancellable as exc:
        messages.warning(request, str(exc))
    else:
        if operation.state in ACTIVE_OPERATION_STATES:
            messages.info(request, "Cancellation requested; the operation stops after its current step.")
        else:
            messages.success(request, f"{operation.get_kind_display()} cancelled.")
    fallback = reverse("dashboard:cluster-detail", args=[operation.cluster_id])
    return redirect(safe_next(request, fallback))


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        token, raw = create_api_token(
            user=request.user,
            name=form.cleaned_data["name"],
            expires_at=form.expires_at(),
            actor=Actor.from_request(request),
        )
        # Redirect so a reload cannot create a second token; the secret rides in the session once.
        request.session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "raw": raw}
        return redirect("dashboard:token-list")
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        "new_token": request.session.pop(NEW_TOKEN_SESSION_KEY, None),
        "now": timezone.now(),
    }
    return render(request, "dashboard/token_list.html", context)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.filter(user=request.user), pk=pk)
    if token.revoked_at is None:
        revoke_api_token(token=token, actor=Actor.from_request(request))
        messages.success(request, f"Token {token.name} revoked; it no longer works.")
    return redirect("dashboard:token-list")


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


class LoginView(auth_views.LoginView):
    """Django's sign-in page; while the account or address is throttled it says so, with 429."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationThrottled as exc:
            # Unbound: validating the posted form would ask the throttle again.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            minutes = max(1, round(exc.retry_after / 60))
            throttled = f"Too many failed sign-ins. Try again in {minutes} min."
            context = self.get_context_data(form=form, throttled=throttled)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
