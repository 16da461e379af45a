"""Client security of clusters: each cluster's own certificate authority, the certificates it issues, and
how the control plane itself connects to a secured cluster.

A secured cluster authenticates every connection:

- clients on a SASL_SSL listener with SCRAM-SHA-512 (`scram`) and/or on an SSL listener that requires a
  client certificate (`mtls`), whose common name becomes the principal (`User:<CN>`);
- brokers among themselves and with the controllers over SSL with their own certificates (common name
  `BROKER_USER`, a super user);
- the control plane as `ADMIN_USER`, a super user: with SCRAM when the cluster has it (the credential is
  written into the cluster's metadata when the storage is formatted, so the first connection can
  authenticate), else with a short-lived certificate issued for each connection.

Keys are EC P-256. Pure functions over PEM text (the `cryptography` package); nothing here stores a
secret: the control plane keeps the CA's key encrypted (`controlplane.encryption`), backends keep the
brokers' keys beside their configuration.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.backends.base import SecuritySpec

SCRAM = "scram"
MTLS = "mtls"
AUTHENTICATIONS = (SCRAM, MTLS)
SCRAM_MECHANISM = "SCRAM-SHA-512"
# Kafka accepts 4096 to 16384; more iterations cost every client connection more CPU.
SCRAM_ITERATIONS = 8192
# Principals the control plane itself uses; user names may not take them.
ADMIN_USER = "kcp-admin"
BROKER_USER = "kcp-broker"
RESERVED_PREFIX = "kcp-"

CA_DAYS = 10 * 365
BROKER_CERTIFICATE_DAYS = 2 * 365
# A broker certificate with less than this left is issued again when its broker next starts.
BROKER_RENEW_BEFORE_DAYS = 30
ADMIN_CERTIFICATE_HOURS = 24
# Issued certificates are valid from a little before now: clocks of clients and brokers differ.
CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_pem: str
    private_key_pem: str
    serial: int
    not_after: datetime.datetime


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    """A bare common name: brokers map exactly that to the principal `User:<CN>`."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    # Unencrypted PKCS#8: Kafka's PEM keystore needs PKCS#8, and Java 17 cannot decrypt the PBES2
    # encryption `cryptography` writes; the key stays in files only the broker can read.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def new_certificate_authority(cluster_name: str) -> IssuedCertificate:
    """A self-signed CA for one cluster: it signs that cluster's broker and client certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{cluster_name} cluster CA")
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(
        _cert_pem(certificate), _key_pem(key), certificate.serial_number, certificate.not_valid_after_utc
    )


def issue_certificate(
    ca_certificate_pem: str,
    ca_private_key_pem: str,
    common_name: str,
    *,
    hosts: Sequence[str] = (),
    valid_for: datetime.timedelta,
) -> IssuedCertificate:
    """A certificate signed by the cluster's CA. With `hosts` it serves TLS for them (a broker) as well
    as authenticating as `common_name`; without, it only authenticates a client."""
    ca = x509.load_pem_x509_certificate(ca_certificate_pem.encode("ascii"))
    ca_key = serialization.load_pem_private_key(ca_private_key_pem.encode("ascii"), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if hosts else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + valid_for, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
        )
    certificate = builder.sign(ca_key, hashes.SHA256())
    return IssuedCertificate(
        _cert_pem(certificate), _key_pem(key), certificate.serial_number, certificate.not_valid_after_utc
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True)
class BrokerCertificate:
    """What a broker serves and authenticates with: its key, its certificate followed by the CA's, and
    when the certificate ends (seconds since the epoch)."""

    chain_pem: str
    not_after: int
    private_key_pem: str = field(repr=False)


def issue_broker_certificate(spec: SecuritySpec, hosts: Sequence[str]) -> BrokerCertificate:
    """A new certificate of the cluster's CA for a broker reached at `hosts` (the names and addresses
    clients and the other brokers check), authenticating as `BROKER_USER`."""
    issued = issue_certificate(
        spec.ca_certificate_pem,
        spec.ca_private_key_pem,
        BROKER_USER,
        hosts=hosts,
        valid_for=datetime.timedelta(days=BROKER_CERTIFICATE_DAYS),
    )
    return BrokerCertificate(
        chain_pem=issued.certificate_pem.strip() + "\n" + spec.ca_certificate_pem.strip() + "\n",
        not_after=int(issued.not_after.timestamp()),
        private_key_pem=issued.private_key_pem,
    )


def broker_certificate_identity(spec: SecuritySpec) -> str:
    """What a broker's certificate must have been issued for to be kept: the cluster's CA and its
    certificate generation (raised to rotate). Backends that keep certificates where the broker runs
    compare it with what they recorded there."""
    # A plan made before the cluster is recorded has no CA yet.
    issuer = (
        f"CA {certificate_facts(spec.ca_certificate_pem)[0]:x}"
        if spec.ca_certificate_pem
        else "the cluster's CA"
    )
    return f"{issuer}, generation {spec.certificate_generation}"


def renew_before(now: datetime.datetime | None = None) -> int:
    """A kept broker certificate ending before this (seconds since the epoch) is issued again."""
    return int(((now or _now()) + datetime.timedelta(days=BROKER_RENEW_BEFORE_DAYS)).timestamp())


def certificate_facts(certificate_pem: str) -> tuple[int, datetime.datetime, str]:
    """(serial, not after, issuer's common name) of a PEM certificate."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    issuer = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return certificate.serial_number, certificate.not_valid_after_utc, str(issuer[0].value) if issuer else ""


def signed_by(certificate_pem: str, ca_certificate_pem: str) -> bool:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    ca = x509.load_pem_x509_certificate(ca_certificate_pem.encode("ascii"))
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def new_password() -> str:
    """A generated SCRAM password: 192 random bits, in characters safe in any client configuration."""
    return secrets.token_urlsafe(24)


def admin_client_config(security: SecuritySpec) -> dict[str, str]:
    """librdkafka settings with which the control plane connects to a secured cluster (on its primary
    client listener: SCRAM when it has one, else mutual TLS)."""
    config = {"ssl.ca.pem": security.ca_certificate_pem}
    if SCRAM in security.authentication:
        return config | {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": SCRAM_MECHANISM,
            "sasl.username": ADMIN_USER,
            "sasl.password": security.admin_password,
        }
    issued = issue_certificate(
        security.ca_certificate_pem,
        security.ca_private_key_pem,
        ADMIN_USER,
        valid_for=datetime.timedelta(hours=ADMIN_CERTIFICATE_HOURS),
    )
    return config | {
        "security.protocol": "SSL",
        "ssl.certificate.pem": issued.certificate_pem,
        "ssl.key.pem": issued.private_key_pem,
    }


def client_protocols(authentication: Sequence[str]) -> Mapping[str, str]:
    """Authentication -> the security protocol its listener speaks (`PLAINTEXT` for none)."""
    if not authentication:
        return {"none": "PLAINTEXT"}
    return {
        auth: "SASL_SSL" if auth == SCRAM else "SSL" for auth in AUTHENTICATIONS if auth in authentication
    }
