from django.contrib.auth import views as auth_views
from django.urls import path

from controlplane.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="dashboard/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.cluster_list, name="cluster-list"),
    path("clusters/new/", views.cluster_create, name="cluster-create"),
    path("clusters/new/placement/", views.cluster_placement, name="cluster-placement"),
    path("clusters/<uuid:pk>/", views.cluster_detail, name="cluster-detail"),
    path("clusters/<uuid:pk>/delete/", views.cluster_delete, name="cluster-delete"),
    path("clusters/<uuid:pk>/settings/", views.cluster_settings, name="cluster-settings"),
    path("operations/<uuid:pk>/", views.operation_detail, name="operation-detail"),
    path("operations/<uuid:pk>/cancel/", views.operation_cancel, name="operation-cancel"),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
