from rest_framework.routers import SimpleRouter

from controlplane.dataplane.api import views

CLUSTER = r"clusters/(?P<cluster_id>[0-9a-fA-F-]{36})"

router = SimpleRouter()
router.register(f"{CLUSTER}/topics", views.TopicViewSet, basename="topic")

urlpatterns = router.urls
