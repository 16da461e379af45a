from rest_framework.routers import SimpleRouter

from controlplane.dataplane.api import views

CLUSTER = r"clusters/(?P<cluster_id>[0-9a-fA-F-]{36})"

router = SimpleRouter()
router.register(f"{CLUSTER}/topics", views.TopicViewSet, basename="topic")
router.register(f"{CLUSTER}/users", views.UserViewSet, basename="kafka-user")
router.register(f"{CLUSTER}/acls", views.AclViewSet, basename="acl")

urlpatterns = router.urls
