from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.api.permissions import organizations_of
from controlplane.clusters.choices import ClusterStatus
from controlplane.clusters.models import Cluster


@login_required
def cluster_list(request: HttpRequest) -> HttpResponse:
    clusters = Cluster.objects.filter(organization__in=organizations_of(request.user)).exclude(
        status=ClusterStatus.DELETED
    )
    return render(request, "dashboard/cluster_list.html", {"clusters": clusters})
