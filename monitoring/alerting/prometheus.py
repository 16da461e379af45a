"""Prometheus alerting rules generated from an organization's (or one cluster's) effective rules,
for teams that run their own Prometheus against the control plane's `/metrics`."""

from __future__ import annotations

from django.conf import settings

from controlplane.clusters.models import Cluster
from controlplane.tenancy.models import Organization
from monitoring.alerting.rules import effective_rules
from monitoring.prometheus_rules import render_rules


def prometheus_rules(organization: Organization, cluster: Cluster | None = None) -> str:
    """YAML for Prometheus' `rule_files`: one cluster's rules, or every cluster of the organization."""
    public_url = settings.CONTROLPLANE_PUBLIC_URL.rstrip("/")
    runbook_url = f"{public_url}/alerts/rules" if public_url else None
    rules = effective_rules(organization.pk, cluster.pk if cluster else None)
    if cluster is None:
        return render_rules(rules, organization=organization.slug, runbook_url=runbook_url)
    return render_rules(
        rules,
        organization=organization.slug,
        cluster=cluster.name,
        expected_brokers=cluster.broker_count,
        runbook_url=runbook_url,
    )
