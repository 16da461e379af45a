from rest_framework.routers import DefaultRouter

from controlplane.api import views

router = DefaultRouter()
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("operations", views.OperationViewSet, basename="operation")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = router.urls
