"""A site CA and an image-list endorser certificate, made when a site has none.

A one-machine cloud has no grid CA: on first use the server makes a small CA and an
endorser certificate signed by it in its data dir. Other sites that subscribe to this
site's list are given ``ca.pem`` and the endorser's DN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Credentials:
    cert_pem: bytes
    key_pem: bytes


def _name(org: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def make_ca(org: str, common_name: str, days: int = 3650) -> Credentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    name = _name(org, common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Credentials(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_endorser(ca: Credentials, org: str, common_name: str, days: int = 825) -> Credentials:
    """An end-entity certificate for signing image lists, issued by ``ca``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(org, common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Credentials(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_or_create(folder: Path, site: str) -> Credentials:
    """The endorser in ``folder`` (``endorser.pem``, ``endorser.key``, and the CA that
    issued it, ``ca.pem`` / ``ca.key``), made on first use."""
    cert_path, key_path = folder / "endorser.pem", folder / "endorser.key"
    if cert_path.exists() and key_path.exists():
        return Credentials(cert_path.read_bytes(), key_path.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca = make_ca(f"gridvm site {site}", f"gridvm site CA {site}")
    endorser = make_endorser(ca, f"gridvm site {site}", f"gridvm image list endorser {site}")
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    _write_private(folder / "ca.key", ca.key_pem)
    _write_private(key_path, endorser.key_pem)
    cert_path.write_bytes(endorser.cert_pem)
    return endorser
