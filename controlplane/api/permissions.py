from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from rest_framework import permissions
from rest_framework.request import Request

from controlplane.tenancy.models import WRITE_ROLES, Membership, Organization


def organizations_of(user: AbstractBaseUser) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user)


def can_write(user: AbstractBaseUser, organization_id: int) -> bool:
    return Membership.objects.filter(
        user=user, organization_id=organization_id, role__in=WRITE_ROLES
    ).exists()


class OrganizationRolePermission(permissions.BasePermission):
    """Members may read; owners and admins may change. Objects outside the caller's organizations
    never reach here: querysets are scoped, so they answer 404."""

    message = "Your role in this organization is read-only (viewer); ask an owner for the admin role."

    def has_object_permission(self, request: Request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_write(request.user, obj_organization_id(obj))


def obj_organization_id(obj: object) -> int:
    if hasattr(obj, "organization_id"):
        return obj.organization_id
    return obj.cluster.organization_id
