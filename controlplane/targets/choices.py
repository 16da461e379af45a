from django.db import models


class TargetKind(models.TextChoices):
    KUBERNETES = "kubernetes", "Kubernetes cluster"  # brokers as pods, applied with server-side apply
