"""Where a Kubernetes cluster's brokers go: one registered target, as plain data.

The control plane stores targets per organization (`controlplane.targets`); rendering and applying take
this frozen value, so both are testable without a database. The kubeconfig is a secret: it never shows
in a repr, a plan or a log line.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field

DEFAULT_TOPOLOGY_KEY = "topology.kubernetes.io/zone"
DEFAULT_NAMESPACE = "kafka"
# `{version}` is replaced by the cluster's Apache Kafka version (broker_image/ builds such images).
DEFAULT_IMAGE = "kafka-control-plane/kafka:{version}"

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]*(\{version\})?[A-Za-z0-9._@:-]*")


class VolumeRetention(enum.StrEnum):
    DELETE = "delete"  # a deleted cluster's (or removed broker's) volumes go with it
    RETAIN = "retain"  # they stay for an administrator to delete or re-attach


@dataclass(frozen=True)
class KubernetesTarget:
    name: str
    namespace: str = DEFAULT_NAMESPACE
    topology_key: str = DEFAULT_TOPOLOGY_KEY  # node label whose values are the racks (zones)
    storage_class: str = ""  # empty: the cluster's default storage class
    image: str = DEFAULT_IMAGE
    volume_retention: VolumeRetention = VolumeRetention.DELETE
    # Networks outside the Kubernetes cluster allowed to reach the client listener: the control plane
    # and clients running elsewhere. Pods inside the Kubernetes cluster are always allowed.
    allowed_cidrs: tuple[str, ...] = ()
    kubeconfig: str = field(default="", repr=False)  # YAML; empty: the in-cluster service account
    context: str = ""  # kubeconfig context; empty: its current context

    def image_for(self, kafka_version: str) -> str:
        return self.image.replace("{version}", kafka_version)

    @property
    def in_cluster(self) -> bool:
        return not self.kubeconfig


def target_errors(target: KubernetesTarget) -> dict[str, str]:
    """Field -> message for a target that Kubernetes would refuse or that rendering cannot use."""
    errors: dict[str, str] = {}
    if not _DNS1123_LABEL.fullmatch(target.namespace):
        errors["namespace"] = "a Kubernetes namespace: lowercase letters, digits and '-', at most 63"
    prefix, _, name = target.topology_key.rpartition("/")
    if not _QUALIFIED_NAME.fullmatch(name) or (prefix and not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        errors["topology_key"] = "a node label key such as topology.kubernetes.io/zone"
    if target.storage_class and not _DNS1123_SUBDOMAIN.fullmatch(target.storage_class):
        errors["storage_class"] = "a StorageClass name: lowercase letters, digits, '-' and '.'"
    if not _IMAGE.fullmatch(target.image):
        errors["image"] = "an image reference such as registry.example.com/kafka:{version}"
    for cidr in target.allowed_cidrs:
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            errors["allowed_cidrs"] = f"{cidr!r} is not a network such as 10.0.0.0/8"
            break
    return errors
