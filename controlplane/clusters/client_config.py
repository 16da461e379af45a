"""The ready-made client configuration of a cluster, for librdkafka/confluent-kafka and for Java
clients: where to connect, how to authenticate, which CA to trust. A user's own name and secret are
the placeholders `<user>` and `<password>` (or the files of its certificate): the API shows a secret
once, when it is created, and never here."""

from __future__ import annotations

from typing import Any

from controlplane.clusters.models import Cluster, ClusterSecurity
from provisioning import security

USER = "<user>"
PASSWORD = "<password>"
CA_FILE = "ca.pem"
CERTIFICATE_FILE = "<user>.crt"
KEY_FILE = "<user>.key"


def client_config(cluster: Cluster) -> dict[str, Any]:
    """bootstrap_servers, security_protocol, sasl_mechanism and ca_pem of the primary client listener
    (SCRAM when the cluster has it), then every listener and ready-to-use settings per client."""
    # Only the certificate: the row's secrets would be decrypted for nothing.
    ca_pem = (
        ClusterSecurity.objects.filter(cluster_id=cluster.pk)
        .values_list("ca_certificate_pem", flat=True)
        .first()
        if cluster.client_authentication
        else None
    )
    listeners = []
    for authentication, protocol in security.client_protocols(cluster.client_authentication).items():
        servers = (cluster.client_endpoints or {}).get(authentication) or (
            cluster.bootstrap_servers if not listeners else ""
        )
        mechanism = security.SCRAM_MECHANISM if authentication == security.SCRAM else None
        listeners.append(
            {
                "authentication": authentication,
                "bootstrap_servers": servers,
                "security_protocol": protocol,
                "sasl_mechanism": mechanism,
                "librdkafka": _librdkafka(servers, protocol, mechanism),
                "java": _java(servers, protocol, mechanism),
            }
        )
    primary = listeners[0]
    return {
        "bootstrap_servers": primary["bootstrap_servers"],
        "security_protocol": primary["security_protocol"],
        "sasl_mechanism": primary["sasl_mechanism"],
        "ca_pem": ca_pem,
        "listeners": listeners,
    }


def _librdkafka(servers: str, protocol: str, mechanism: str | None) -> dict[str, str]:
    config = {"bootstrap.servers": servers, "security.protocol": protocol}
    if protocol != "PLAINTEXT":
        config["ssl.ca.location"] = CA_FILE
    if mechanism is not None:
        config |= {"sasl.mechanism": mechanism, "sasl.username": USER, "sasl.password": PASSWORD}
    elif protocol == "SSL":
        config |= {"ssl.certificate.location": CERTIFICATE_FILE, "ssl.key.location": KEY_FILE}
    return config


def _java(servers: str, protocol: str, mechanism: str | None) -> str:
    """A Java client's properties (Kafka 2.7+ reads PEM files as keystores and truststores)."""
    lines = [f"bootstrap.servers={servers}", f"security.protocol={protocol}"]
    if protocol != "PLAINTEXT":
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={CA_FILE}"]
    if mechanism is not None:
        lines += [
            f"sasl.mechanism={mechanism}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{USER}" password="{PASSWORD}";',
        ]
    elif protocol == "SSL":
        # The key and certificate as given out (an unencrypted key is read inline only), each line
        # break written as \n.
        lines += [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.key=<contents of {KEY_FILE}>",
            f"ssl.keystore.certificate.chain=<contents of {CERTIFICATE_FILE}>",
        ]
    return "\n".join(lines) + "\n"
