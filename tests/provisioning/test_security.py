"""A cluster's CA, the certificates it issues, the control plane's own client settings, and a secured
cluster's broker configuration. That brokers and clients accept all of it is proven on real Apache
Kafka (tests/dataplane/test_on_apache_kafka.py)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioning import kafka_config, security
from provisioning.backends.base import BrokerSpec, ClusterSpec, NodeSize, SecuritySpec
from provisioning.kafka_config import BrokerTls, NodeAddress

CA = security.new_certificate_authority("orders")


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def secured_spec(*authentication: str) -> ClusterSpec:
    return ClusterSpec(
        cluster_id="6f1c2e1a-3b7d-4c55-9a0e-2f5b8d7c9e01",
        name="orders",
        kafka_version="4.4.0",
        brokers=tuple(BrokerSpec(node_id=n, rack=r) for n, r in ((1, "a"), (2, "b"), (3, "c"))),
        replication_factor=3,
        min_insync_replicas=2,
        node_size=NodeSize(cpu=1, memory_mb=1024, disk_gb=10),
        security=SecuritySpec(
            authentication, CA.certificate_pem, CA.private_key_pem, "s3cret-admin-password"
        ),
    )


def test_a_broker_certificate_serves_its_hosts_and_authenticates_as_a_broker() -> None:
    issued = security.issue_certificate(
        CA.certificate_pem,
        CA.private_key_pem,
        security.BROKER_USER,
        hosts=["127.0.0.1", "kafka-1.internal"],
        valid_for=datetime.timedelta(days=10),
    )

    certificate = load(issued.certificate_pem)
    assert security.signed_by(issued.certificate_pem, CA.certificate_pem)
    assert certificate.subject.rfc4514_string() == f"CN={security.BROKER_USER}"
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["kafka-1.internal"]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_a_client_certificate_only_authenticates_and_never_outlives_its_ca() -> None:
    issued = security.issue_certificate(
        CA.certificate_pem, CA.private_key_pem, "alice", valid_for=datetime.timedelta(days=100 * 365)
    )

    certificate = load(issued.certificate_pem)
    assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert certificate.not_valid_after_utc == load(CA.certificate_pem).not_valid_after_utc


def test_another_clusters_ca_is_not_trusted() -> None:
    other = security.new_certificate_authority("payments")
    issued = security.issue_certificate(
        other.certificate_pem, other.private_key_pem, "alice", valid_for=datetime.timedelta(days=1)
    )

    assert not security.signed_by(issued.certificate_pem, CA.certificate_pem)


def test_the_control_plane_uses_scram_when_the_cluster_has_it() -> None:
    config = security.admin_client_config(secured_spec("scram", "mtls").security)

    assert config["security.protocol"] == "SASL_SSL"
    assert (config["sasl.username"], config["sasl.password"]) == (
        security.ADMIN_USER,
        "s3cret-admin-password",
    )
    assert config["ssl.ca.pem"] == CA.certificate_pem


def test_else_a_short_lived_certificate_of_its_own() -> None:
    config = security.admin_client_config(secured_spec("mtls").security)

    assert config["security.protocol"] == "SSL"
    certificate = load(config["ssl.certificate.pem"])
    assert certificate.subject.rfc4514_string() == f"CN={security.ADMIN_USER}"
    lifetime = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert lifetime <= datetime.timedelta(hours=security.ADMIN_CERTIFICATE_HOURS)


def test_secrets_never_show_in_a_spec() -> None:
    assert "s3cret" not in repr(secured_spec("scram"))
    assert CA.private_key_pem not in repr(secured_spec("scram"))


def _render(spec: ClusterSpec) -> dict[str, str]:
    addresses = {
        b.node_id: NodeAddress(
            b.node_id,
            "127.0.0.1",
            9000 + b.node_id,
            9100 + b.node_id,
            listener_ports={name: port + b.node_id for name, port in (("INTERNAL", 9200), ("MTLS", 9300))},
        )
        for b in spec.brokers
    }
    tls = BrokerTls(
        certificate_chain_pem="CHAIN\nLINES",
        ca_certificate_pem=CA.certificate_pem,
        private_key_pem="KEY\nLINES",
    )
    text = kafka_config.render_server_properties(
        spec,
        1,
        addresses=addresses,
        controllers=(1, 2, 3),
        quorum=kafka_config.QuorumStyle.DYNAMIC,
        log_dir="/data",
        tls=tls,
    )
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_a_secured_broker_has_no_plaintext_listener() -> None:
    props = _render(secured_spec("scram", "mtls"))

    assert props["listeners"] == (
        "INTERNAL://127.0.0.1:9201,SCRAM://127.0.0.1:9001,MTLS://127.0.0.1:9301,CONTROLLER://127.0.0.1:9101"
    )
    assert props["listener.security.protocol.map"] == "INTERNAL:SSL,SCRAM:SASL_SSL,MTLS:SSL,CONTROLLER:SSL"
    assert props["inter.broker.listener.name"] == "INTERNAL"
    for listener in ("internal", "mtls", "controller"):
        assert props[f"listener.name.{listener}.ssl.client.auth"] == "required"
    assert props["listener.name.scram.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["super.users"] == f"User:{security.ADMIN_USER};User:{security.BROKER_USER}"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    # PEM text on one line, each line break escaped as a properties file reads it back.
    assert props["ssl.keystore.key"] == "KEY\\nLINES"
    assert props["ssl.keystore.certificate.chain"] == "CHAIN\\nLINES"
    assert "s3cret" not in "".join(props.values())


def test_a_secured_dedicated_controller_speaks_ssl_with_certificates() -> None:
    spec = secured_spec("scram")
    where = {
        "addresses": {9: NodeAddress(9, "127.0.0.1", 9009, 9109)},
        "controllers": (9,),
        "quorum": kafka_config.QuorumStyle.DYNAMIC,
        "log_dir": "/data",
    }
    tls = BrokerTls(
        certificate_chain_pem="CHAIN", ca_certificate_pem=CA.certificate_pem, private_key_pem="KEY"
    )

    text = kafka_config.render_controller_properties(spec, 9, tls=tls, **where)
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))

    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["authorizer.class.name"] == kafka_config.STANDARD_AUTHORIZER
    with pytest.raises(kafka_config.KafkaConfigError, match="no certificate"):
        kafka_config.render_controller_properties(spec, 9, **where)


def test_scram_only_keeps_one_client_listener() -> None:
    props = _render(secured_spec("scram"))

    assert props["advertised.listeners"] == "INTERNAL://127.0.0.1:9201,SCRAM://127.0.0.1:9001"
    assert "listener.name.mtls.ssl.client.auth" not in props


def test_the_control_planes_credential_is_formatted_into_the_first_metadata() -> None:
    spec = secured_spec("scram")
    args = kafka_config.storage_format_args(
        spec,
        1,
        config_path="/c",
        addresses={1: NodeAddress(1, "127.0.0.1", 9001, 9101)},
        controllers=(1,),
        quorum=kafka_config.QuorumStyle.DYNAMIC,
    )

    assert args[-2:] == [
        "--add-scram",
        f'SCRAM-SHA-512=[name={security.ADMIN_USER},password="s3cret-admin-password"]',
    ]
    mtls_only = kafka_config.storage_format_args(
        secured_spec("mtls"),
        1,
        config_path="/c",
        addresses={1: NodeAddress(1, "127.0.0.1", 9001, 9101)},
        controllers=(1,),
        quorum=kafka_config.QuorumStyle.DYNAMIC,
    )
    assert "--add-scram" not in mtls_only
