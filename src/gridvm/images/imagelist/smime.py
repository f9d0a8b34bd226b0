"""S/MIME signatures of image lists, in the form vmcatcher reads.

A list is signed "opaque" (PKCS#7 signed-data that carries the JSON, as
``openssl smime -sign -nodetach`` makes it), by the endorser's certificate and key.
Signing uses ``cryptography``; verifying runs ``openssl smime -verify`` (argv only,
files in a private temporary directory): it checks the signature, the content and
the signer's chain to the subscriber's CA, then the signer's DN is compared here.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from gridvm.common.errors import InvalidInput, ToolFailed

OPENSSL = "openssl"
VERIFY_TIMEOUT_S = 60
# OpenSSL's short names in its one-line DN form (/C=DE/O=Example/CN=Name).
_SHORT = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
}


def openssl_dn(name: x509.Name) -> str:
    """``name`` in OpenSSL's one-line form, the form image lists give DNs in."""
    parts = []
    for rdn in name.rdns:
        attrs = [f"{_SHORT.get(a.oid, a.oid.dotted_string)}={a.value!s}" for a in rdn]
        parts.append("+".join(attrs))
    return "".join(f"/{p}" for p in parts)


def same_dn(a: str, b: str) -> bool:
    """Whether two one-line DNs name the same subject (spaces around separators aside)."""

    def norm(dn: str) -> str:
        return "/".join(p.strip() for p in dn.strip().split("/"))

    return norm(a) == norm(b)


def sign(content: bytes, cert_pem: bytes, key_pem: bytes) -> bytes:
    """``content`` signed opaque (the content inside the signature), as an S/MIME message:
    what ``openssl smime -sign -nodetach`` writes and vmcatcher reads."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise InvalidInput("the endorser key must be an RSA or EC private key")
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    body = base64.encodebytes(der).decode()
    return (
        "MIME-Version: 1.0\n"
        'Content-Disposition: attachment; filename="smime.p7m"\n'
        'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\n'
        "Content-Transfer-Encoding: base64\n\n" + body
    ).encode()


@dataclass(frozen=True)
class Verified:
    content: bytes
    signer_dn: str


def verify(message: bytes, ca_pem: str) -> Verified:
    """The content of a signed list, if its signature is good and its signer chains to
    ``ca_pem``; otherwise InvalidInput saying what failed."""
    with tempfile.TemporaryDirectory(prefix="gridvm-imagelist-") as tmp:
        folder = Path(tmp)
        (folder / "list.smime").write_bytes(message)
        (folder / "ca.pem").write_text(ca_pem)
        argv = [
            OPENSSL, "smime", "-verify",
            "-in", str(folder / "list.smime"),
            "-CAfile", str(folder / "ca.pem"),
            "-signer", str(folder / "signer.pem"),
            "-out", str(folder / "content"),
            "-purpose", "any",
        ]  # fmt: skip
        try:
            done = subprocess.run(argv, capture_output=True, timeout=VERIFY_TIMEOUT_S, check=False)
        except FileNotFoundError:
            raise ToolFailed(
                "openssl is not installed", hint="install it: apt-get install openssl"
            ) from None
        if done.returncode != 0:
            detail = _openssl_reason(done.stderr.decode(errors="replace"))
            raise InvalidInput(
                f"the image list's signature does not verify: {detail}",
                hint="nothing was taken from it; ask its publisher, or check the subscription's CA",
            )
        signer = x509.load_pem_x509_certificate((folder / "signer.pem").read_bytes())
        return Verified((folder / "content").read_bytes(), openssl_dn(signer.subject))


def _openssl_reason(stderr: str) -> str:
    """What openssl's complaint means (its lines name the failing check)."""
    text = stderr.lower()
    if "unable to get local issuer" in text or "self-signed" in text or "self signed" in text:
        return "its signer's certificate was not issued by the subscription's CA"
    if "certificate has expired" in text or "not yet valid" in text:
        return "its signer's certificate is expired or not yet valid"
    if "certificate verify error" in text:
        return "its signer's certificate does not verify against the subscription's CA"
    if any(k in text for k in ("digest failure", "signature failure", "asn1", "base64")):
        return "its content or signature was changed after signing"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "openssl refused it"
