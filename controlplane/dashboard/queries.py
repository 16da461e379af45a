"""What a signed-in person may see, and the read-only shapes the pages show.

Every page reads through these scoped querysets, so another organization's objects answer 404 exactly
as they do in the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet

from controlplane.api.permissions import OrganizationRolePermission, can_write, organizations_of
from controlplane.api.serializers import LOG_LINES_SHOWN
from controlplane.clusters.models import Broker, Cluster
from controlplane.operations.choices import ACTIVE_OPERATION_STATES
from controlplane.operations.models import Operation, OperationLog
from controlplane.tenancy.models import WRITE_ROLES, Organization
from monitoring.alerting.choices import IncidentState
from monitoring.alerting.models import Delivery, Incident, MaintenanceWindow, NotificationChannel, Silence


def visible_clusters(user: AbstractBaseUser) -> QuerySet[Cluster]:
    return Cluster.objects.filter(organization__in=organizations_of(user)).select_related("organization")


def listed_clusters(user: AbstractBaseUser) -> QuerySet[Cluster]:
    """Clusters with their operation in flight (and its steps, for the progress) in `active_operations`."""
    active = Operation.objects.filter(state__in=ACTIVE_OPERATION_STATES).prefetch_related("steps")
    return visible_clusters(user).prefetch_related(
        Prefetch("operations", queryset=active, to_attr="active_operations")
    )


def visible_operations(user: AbstractBaseUser) -> QuerySet[Operation]:
    return Operation.objects.filter(cluster__organization__in=organizations_of(user)).select_related(
        "cluster__organization"
    )


def visible_incidents(user: AbstractBaseUser) -> QuerySet[Incident]:
    return Incident.objects.filter(cluster__organization__in=organizations_of(user)).select_related(
        "cluster__organization"
    )


def firing_incident_count(user: AbstractBaseUser) -> int:
    return visible_incidents(user).filter(state=IncidentState.FIRING).count()


def visible_silences(user: AbstractBaseUser) -> QuerySet[Silence]:
    return Silence.objects.filter(organization__in=organizations_of(user)).select_related(
        "organization", "cluster"
    )


def visible_maintenance_windows(user: AbstractBaseUser) -> QuerySet[MaintenanceWindow]:
    return MaintenanceWindow.objects.filter(cluster__organization__in=organizations_of(user)).select_related(
        "cluster__organization"
    )


def visible_channels(user: AbstractBaseUser) -> QuerySet[NotificationChannel]:
    return NotificationChannel.objects.filter(organization__in=organizations_of(user)).select_related(
        "organization"
    )


def visible_deliveries(user: AbstractBaseUser) -> QuerySet[Delivery]:
    return Delivery.objects.filter(channel__organization__in=organizations_of(user)).select_related(
        "channel", "incident__cluster"
    )


def writable_organizations(user: AbstractBaseUser) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user, memberships__role__in=WRITE_ROLES)


def require_write(user: AbstractBaseUser, organization_id: int) -> None:
    """Viewers get 403 even for a hand-made POST: hiding the buttons is not the protection."""
    if not can_write(user, organization_id):
        raise PermissionDenied(OrganizationRolePermission.message)


@dataclass(frozen=True)
class Rack:
    name: str
    brokers: list[Broker]


def brokers_by_rack(cluster: Cluster) -> list[Rack]:
    """Racks in the cluster's order, then any rack a broker sits in that the cluster no longer lists."""
    brokers = list(cluster.brokers.order_by("node_id"))
    names = list(cluster.racks) + sorted({b.rack for b in brokers} - set(cluster.racks))
    return [Rack(name, [b for b in brokers if b.rack == name]) for name in names]


def operation_to_follow(cluster: Cluster) -> Operation | None:
    """The operation in flight, or else the most recent one, so its outcome stays in view."""
    operations = cluster.operations.prefetch_related("steps")
    return operations.filter(state__in=ACTIVE_OPERATION_STATES).first() or operations.first()


def log_tail(operation: Operation) -> list[OperationLog]:
    """The same window of log lines the REST API returns, oldest first, so live updates line up."""
    return list(reversed(operation.log_lines.select_related("step").order_by("-id")[:LOG_LINES_SHOWN]))
