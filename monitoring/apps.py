from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Collection of cluster health and consumer lag, its history, and the Prometheus exporter."""

    name = "monitoring"
    label = "monitoring"

    def ready(self) -> None:
        from monitoring import exporter

        exporter.register()
