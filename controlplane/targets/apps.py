from django.apps import AppConfig


class TargetsConfig(AppConfig):
    name = "controlplane.targets"
    label = "targets"
