from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster
from controlplane.tenancy.models import Organization
from monitoring.alerting.prometheus import prometheus_rules


class Command(BaseCommand):
    help = "Print Prometheus alerting rules for an organization's clusters, or for one cluster."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("--cluster", help="one cluster's name; default: every cluster")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(f"No organization {options['organization']!r}.")
        cluster = None
        if options["cluster"]:
            cluster = (
                Cluster.objects.filter(organization=organization, name=options["cluster"])
                .exclude(status=ClusterStatus.DELETED)
                .first()
            )
            if cluster is None:
                raise CommandError(f"No cluster {options['cluster']!r} in {organization.slug}.")
        self.stdout.write(prometheus_rules(organization, cluster), ending="")
