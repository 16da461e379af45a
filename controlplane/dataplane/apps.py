from django.apps import AppConfig


class DataplaneConfig(AppConfig):
    name = "controlplane.dataplane"
    label = "dataplane"
