from django.contrib.auth import views as auth_views
from django.urls import path

from controlplane.dashboard import dataplane, details, invitations, oncall, organization, targets, views

app_name = "dashboard"

# A cluster's topics and users (controlplane.dashboard.dataplane). Creating a topic has a path outside
# topics/, so that no topic name shadows it.
dataplane_urls = [
    path("clusters/<uuid:pk>/topics/", dataplane.topic_list, name="cluster-topics"),
    path("clusters/<uuid:pk>/new-topic/", dataplane.topic_create, name="cluster-topic-create"),
    path("clusters/<uuid:pk>/topics/<str:name>/", dataplane.topic_detail, name="cluster-topic"),
    path("clusters/<uuid:pk>/topics/<str:name>/edit/", dataplane.topic_edit, name="cluster-topic-edit"),
    path("clusters/<uuid:pk>/topics/<str:name>/delete/", dataplane.topic_delete, name="cluster-topic-delete"),
    path("clusters/<uuid:pk>/users/", dataplane.user_list, name="cluster-users"),
    path("clusters/<uuid:pk>/users/<str:name>/rotate/", dataplane.user_rotate, name="cluster-user-rotate"),
    path("clusters/<uuid:pk>/users/<str:name>/quota/", dataplane.user_quota, name="cluster-user-quota"),
    path("clusters/<uuid:pk>/users/<str:name>/delete/", dataplane.user_delete, name="cluster-user-delete"),
    path("clusters/<uuid:pk>/acls/", dataplane.acl_create, name="cluster-acl-create"),
    path("clusters/<uuid:pk>/acls/<uuid:rule_id>/delete/", dataplane.acl_delete, name="cluster-acl-delete"),
]

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.cluster_list, name="cluster-list"),
    path("clusters/new/", views.cluster_create, name="cluster-create"),
    path("clusters/new/placement/", views.cluster_placement, name="cluster-placement"),
    path("clusters/<uuid:pk>/", views.cluster_detail, name="cluster-detail"),
    path("clusters/<uuid:pk>/monitoring/", views.cluster_monitoring, name="cluster-monitoring"),
    path("clusters/<uuid:pk>/delete/", views.cluster_delete, name="cluster-delete"),
    path("clusters/<uuid:pk>/settings/", views.cluster_settings, name="cluster-settings"),
    path("clusters/<uuid:pk>/operate/<slug:kind>/", views.cluster_operate, name="cluster-operate"),
    path("clusters/<uuid:pk>/brokers/<int:node_id>/", details.broker_detail, name="broker-detail"),
    path("clusters/<uuid:pk>/groups/", details.group_list, name="group-list"),
    path("clusters/<uuid:pk>/groups/<path:group_id>/", details.group_detail, name="group-detail"),
    *dataplane_urls,
    path("operations/", views.operation_list, name="operation-list"),
    path("operations/<uuid:pk>/", views.operation_detail, name="operation-detail"),
    path("operations/<uuid:pk>/cancel/", views.operation_cancel, name="operation-cancel"),
    path("alerts/", oncall.alert_list, name="alert-list"),
    path("alerts/<int:pk>/", oncall.alert_detail, name="alert-detail"),
    path("alerts/<int:pk>/acknowledge/", oncall.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:pk>/resolve/", oncall.alert_resolve, name="alert-resolve"),
    path("oncall/channels/", oncall.channel_list, name="channel-list"),
    path("oncall/channels/<int:pk>/enabled/", oncall.channel_enabled, name="channel-enabled"),
    path("oncall/channels/<int:pk>/test/", oncall.channel_test, name="channel-test"),
    path("oncall/silences/", oncall.silence_list, name="silence-list"),
    path("oncall/silences/<int:pk>/expire/", oncall.silence_expire, name="silence-expire"),
    path("oncall/maintenance/", oncall.maintenance_list, name="maintenance-list"),
    path("oncall/maintenance/<int:pk>/end/", oncall.maintenance_end, name="maintenance-end"),
    path("organization/", organization.organization_home, name="organization"),
    path("organizations/<slug:slug>/members/", organization.member_list, name="member-list"),
    path("organizations/<slug:slug>/members/<int:pk>/role/", organization.member_role, name="member-role"),
    path(
        "organizations/<slug:slug>/members/<int:pk>/remove/", organization.member_remove, name="member-remove"
    ),
    path("organizations/<slug:slug>/audit/", organization.audit_log, name="audit-log"),
    path("organizations/<slug:slug>/invitations/", organization.invitation_create, name="invitation-create"),
    path(
        "organizations/<slug:slug>/invitations/<int:pk>/revoke/",
        organization.invitation_revoke,
        name="invitation-revoke",
    ),
    path("invitations/<str:key>/", invitations.invitation_accept, name="invitation-accept"),
    path("targets/", targets.target_list, name="target-list"),
    path("targets/<uuid:pk>/test/", targets.target_test, name="target-test"),
    path("targets/<uuid:pk>/delete/", targets.target_delete, name="target-delete"),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
