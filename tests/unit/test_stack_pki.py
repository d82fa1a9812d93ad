"""The stack's certificates: what TLS clients and Kubernetes' authenticator rely on."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from recon_stack.pki import CLIENT_IDENTITIES, ensure_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_apiserver_cert_names_every_address_clients_use(tmp_path: Path) -> None:
    paths = ensure_pki(tmp_path)
    cert = _cert(paths.cert("apiserver"))
    cert.verify_directly_issued_by(_cert(paths.ca_cert))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} <= set(
        sans.get_values_for_type(x509.DNSName)
    )
    ips = sans.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("127.0.0.1") in ips
    assert ipaddress.ip_address("10.0.0.1") in ips  # the `kubernetes` Service's cluster IP
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_client_certs_carry_the_user_and_groups_rbac_sees(tmp_path: Path) -> None:
    paths = ensure_pki(tmp_path)
    seen = {}
    for ident in CLIENT_IDENTITIES:
        cert = _cert(paths.cert(ident.file_stem))
        cert.verify_directly_issued_by(_cert(paths.ca_cert))
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
        seen[ident.file_stem] = (cn, orgs)
    assert seen["admin"][1] == ["system:masters"]
    assert seen["controller-manager"][0] == "system:kube-controller-manager"
    assert seen["scheduler"][0] == "system:kube-scheduler"


def test_private_keys_are_private_and_a_second_run_keeps_every_file(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for p in tmp_path.glob("*.key"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    ensure_pki(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before
    assert first.sa_private.exists() and first.sa_public.read_bytes().startswith(
        b"-----BEGIN PUBLIC KEY-----"
    )
