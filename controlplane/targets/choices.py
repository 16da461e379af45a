from django.db import models


class TargetKind(models.TextChoices):
    KUBERNETES = "kubernetes", "Kubernetes cluster"  # brokers as pods, applied with server-side apply
    VM = "vm", "VM host pool"  # brokers on the pool's hosts, installed by Ansible over SSH
