from django.contrib import admin

from controlplane.operations.models import Operation, OperationLog, OperationStep


class OperationStepInline(admin.TabularInline):
    model = OperationStep
    extra = 0
    can_delete = False
    readonly_fields = ["position", "name", "state", "attempts", "started_at", "finished_at", "error"]
    fields = readonly_fields


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    """Read-only: operations change only through the engine."""

    list_display = ["id", "cluster", "kind", "state", "requested_by_name", "created_at", "finished_at"]
    list_filter = ["kind", "state"]
    inlines = [OperationStepInline]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OperationLog)
class OperationLogAdmin(admin.ModelAdmin):
    list_display = ["at", "operation", "level", "message"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
