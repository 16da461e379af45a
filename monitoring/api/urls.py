from rest_framework.routers import SimpleRouter

from monitoring.api import views

router = SimpleRouter()
# Only detail routes (clusters/{id}/health/, clusters/{id}/metrics-history/): the clusters API owns
# clusters/ and clusters/{id}/.
router.register("clusters", views.ClusterMonitoringViewSet, basename="cluster-monitoring")
router.register(
    r"clusters/(?P<cluster_pk>[^/.]+)/consumer-groups", views.ConsumerGroupViewSet, basename="consumer-group"
)

urlpatterns = router.urls
