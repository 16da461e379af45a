from rest_framework.routers import SimpleRouter

from monitoring.alerting.api import views

router = SimpleRouter()
router.register("alerts", views.IncidentViewSet, basename="alert")
router.register("silences", views.SilenceViewSet, basename="silence")
router.register("maintenance-windows", views.MaintenanceWindowViewSet, basename="maintenance-window")
router.register("alert-rules", views.AlertRuleViewSet, basename="alert-rule")
router.register("notification-channels", views.NotificationChannelViewSet, basename="notification-channel")

urlpatterns = router.urls
