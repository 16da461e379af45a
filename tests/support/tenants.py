"""Tenants, users with roles, and API clients authenticated with real API tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient

from controlplane.audit.actions import Actor
from controlplane.tenancy.actions import create_api_token, create_organization, set_membership
from controlplane.tenancy.models import Organization, Role

SYSTEM = Actor.system("tests")


@dataclass
class Tenant:
    organization: Organization
    owner: AbstractBaseUser
    admin: AbstractBaseUser
    viewer: AbstractBaseUser


def make_user(username: str) -> AbstractBaseUser:
    return get_user_model().objects.create_user(username=username, password="correct-horse-battery")


def make_tenant(name: str) -> Tenant:
    slug = name.lower()
    owner = make_user(f"{slug}-owner")
    organization = create_organization(name=name, owner=owner, actor=SYSTEM)
    admin = make_user(f"{slug}-admin")
    viewer = make_user(f"{slug}-viewer")
    set_membership(organization=organization, user=admin, role=Role.ADMIN, actor=SYSTEM)
    set_membership(organization=organization, user=viewer, role=Role.VIEWER, actor=SYSTEM)
    return Tenant(organization, owner, admin, viewer)


def token_client(user: AbstractBaseUser) -> APIClient:
    _, raw = create_api_token(user=user, name="tests", actor=SYSTEM)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def tenant(db: None) -> Tenant:
    return make_tenant("Acme")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    return make_tenant("Globex")


@pytest.fixture
def client_for() -> Callable[[AbstractBaseUser], APIClient]:
    return token_client
