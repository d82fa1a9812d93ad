"""The stack's certificates: one CA, the API server's serving cert, client certs, SA keys.

Everything is generated locally on first `up` and reused afterwards, so a warm start does
no key generation and kubeconfigs handed out earlier keep working. Keys are ECDSA P-256:
Kubernetes accepts them everywhere, and generating them costs milliseconds on a small
machine where RSA-2048 would cost a noticeable part of the start-up budget.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names a client may use for the API server: loopback from this machine, and the
# in-cluster service names a pod's kubeconfig or a chart might put in front of it.
APISERVER_DNS_SANS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
# The first address of the service range (10.0.0.0/24) is the `kubernetes` Service's IP;
# 10.200.0.1 is the real node's address inside the stack's network namespace, where the
# API server is reached through the stack's bridge (`components.NODE_IP`).
APISERVER_IP_SANS = ("127.0.0.1", "10.0.0.1", "10.200.0.1")

VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class KeyPair:
    """PEM-encoded certificate and private key."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ClientIdentity:
    """A user as Kubernetes' x509 authenticator sees it: CN is the name, O the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


# Bootstrap RBAC binds these exact user names, so the components get their usual rights.
CLIENT_IDENTITIES = (
    ClientIdentity("admin", "recon-admin", ("system:masters",)),
    ClientIdentity("controller-manager", "system:kube-controller-manager"),
    ClientIdentity("scheduler", "system:kube-scheduler"),
    # The real node: the Node authorizer and NodeRestriction know a kubelet by this name
    # and group; bootstrap RBAC gives system:kube-proxy the node-proxier role.
    ClientIdentity("kubelet", "system:node:local-gpu-0", ("system:nodes",)),
    ClientIdentity("kube-proxy", "system:kube-proxy"),
    # The API server itself when it calls a kubelet (logs, exec): the kubelet's webhook
    # authorizer lets system:masters through.
    ClientIdentity(
        "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
    ),
)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    # Back-dated a little so a cert is valid at once even with small clock differences.
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def make_ca(common_name: str = "recon-stack-ca") -> KeyPair:
    key = _new_key()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    orgs: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
) -> KeyPair:
    """A leaf certificate signed by ``ca`` for serving, client auth, or both."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the stack CA key must be an EC key")
    key = _new_key()
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_service_account_keys() -> KeyPair:
    """The key pair that signs ServiceAccount tokens; ``cert_pem`` holds the public key."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(public, _key_pem(key))


@dataclass(frozen=True)
class PkiPaths:
    """Where each PEM file of a state directory's PKI lives."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def sa_public(self) -> Path:
        return self.root / "sa.pub"

    @property
    def sa_private(self) -> Path:
        return self.root / "sa.key"

    def cert(self, stem: str) -> Path:
        return self.root / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.root / f"{stem}.key"


def _write_pair(cert_path: Path, key_path: Path, pair: KeyPair) -> None:
    cert_path.write_bytes(pair.cert_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pair.key_pem)


def _has_ip_sans(cert_path: Path, wanted: Sequence[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        # Not a certificate at all: left for the API server to refuse with its own error,
        # which names the file.
        return True
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(wanted) <= present


def ensure_pki(root: Path) -> PkiPaths:
    """Create the CA, the API server's serving cert, client certs and SA keys once.

    Files already present are kept: regenerating them would invalidate every kubeconfig
    and ServiceAccount token issued before.
    """
    paths = PkiPaths(root)
    root.mkdir(parents=True, exist_ok=True)
    if paths.ca_cert.exists() and paths.ca_key.exists():
        ca = KeyPair(paths.ca_cert.read_bytes(), paths.ca_key.read_bytes())
    else:
        ca = make_ca()
        _write_pair(paths.ca_cert, paths.ca_key, ca)
    leaves: dict[str, Callable[[], KeyPair]] = {
        "apiserver": lambda: issue(
            ca,
            "kube-apiserver",
            dns_names=APISERVER_DNS_SANS,
            ip_addresses=APISERVER_IP_SANS,
            server=True,
        ),
    }
    for ident in CLIENT_IDENTITIES:
        leaves[ident.file_stem] = partial(issue, ca, ident.user, orgs=ident.groups, client=True)
    if paths.cert("apiserver").exists() and not _has_ip_sans(
        paths.cert("apiserver"), APISERVER_IP_SANS
    ):
        # A state directory from before an address was added: reissue, or clients that
        # dial the new address would fail TLS verification.
        paths.cert("apiserver").unlink()
    for stem, make in leaves.items():
        if not (paths.cert(stem).exists() and paths.key(stem).exists()):
            _write_pair(paths.cert(stem), paths.key(stem), make())
    if not (paths.sa_public.exists() and paths.sa_private.exists()):
        _write_pair(paths.sa_public, paths.sa_private, make_service_account_keys())
    return paths
