from rest_framework.routers import DefaultRouter

from controlplane.api import views
from controlplane.api.targets import TargetViewSet
from controlplane.dataplane.api.urls import urlpatterns as dataplane_urls
from monitoring.alerting.api.urls import urlpatterns as alerting_urls
from monitoring.api.urls import urlpatterns as monitoring_urls

router = DefaultRouter()
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("operations", views.OperationViewSet, basename="operation")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("tokens", views.ApiTokenViewSet, basename="token")
router.register("targets", TargetViewSet, basename="target")

urlpatterns = router.urls + dataplane_urls + monitoring_urls + alerting_urls
