from django.contrib import admin

from controlplane.clusters.models import Broker, Cluster


class BrokerInline(admin.TabularInline):
    model = Broker
    extra = 0
    can_delete = False
    readonly_fields = ["node_id", "rack", "endpoint", "state", "state_detail", "last_seen_at"]
    fields = readonly_fields


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    """Read-only: clusters change through the API and dashboard, which run operations."""

    list_display = ["name", "organization", "backend", "broker_count", "status", "created_at"]
    list_filter = ["status", "backend", "organization"]
    search_fields = ["name"]
    inlines = [BrokerInline]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
