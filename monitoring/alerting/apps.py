from django.apps import AppConfig


class AlertingConfig(AppConfig):
    """Alert rules, incidents and their lifecycle, silences, and on-call notification delivery."""

    name = "monitoring.alerting"
    label = "alerting"
