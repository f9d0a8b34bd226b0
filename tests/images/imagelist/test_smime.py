"""S/MIME signatures of image lists: signed opaque, verified with openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from gridvm.common.errors import InvalidInput
from gridvm.images.imagelist import endorser, smime
from tests.image_list_sites import make_endorsement, tampered

CONTENT = b'{\n  "hv:imagelist": {"dc:title": "hello"}\n}\n'


def test_signed_opaque_as_openssl_smime_nodetach_writes(tmp_path: Path) -> None:
    site = make_endorsement()
    message = smime.sign(CONTENT, site.signer.cert_pem, site.signer.key_pem)
    assert b"Content-Type: application/pkcs7-mime; smime-type=signed-data" in message
    verified = smime.verify(message, site.ca.cert_pem.decode())
    assert (verified.content, verified.signer_dn) == (CONTENT, site.dn)
    # openssl's own reading of it: the content comes out of the signature.
    (tmp_path / "m").write_bytes(message)
    (tmp_path / "ca").write_bytes(site.ca.cert_pem)
    out = subprocess.run(
        ["openssl", "smime", "-verify", "-in", str(tmp_path / "m"), "-CAfile",
         str(tmp_path / "ca"), "-purpose", "any"],
        capture_output=True, check=True,
    )  # fmt: skip
    assert out.stdout == CONTENT


def test_tampered_or_foreign_signatures_are_refused() -> None:
    site = make_endorsement()
    message = smime.sign(CONTENT, site.signer.cert_pem, site.signer.key_pem)
    with pytest.raises(InvalidInput, match="content or signature was changed"):
        smime.verify(tampered(message, b"hello", b"jello"), site.ca.cert_pem.decode())
    other = make_endorsement("Elsewhere")
    with pytest.raises(InvalidInput, match="not issued by the subscription's CA"):
        smime.verify(message, other.ca.cert_pem.decode())


def test_dns_in_openssl_one_line_form() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "org"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "terena"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GermanGrid"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Owen Synge"),
        ]
    )
    assert smime.openssl_dn(name) == "/DC=org/DC=terena/C=DE/O=GermanGrid/CN=Owen Synge"
    assert smime.same_dn("/O=Site/ CN=Endorser", "/O=Site/CN=Endorser")
    assert not smime.same_dn("/O=Site/CN=Endorser", "/O=Site/CN=Other")


def test_a_site_endorser_is_made_once(tmp_path: Path) -> None:
    first = endorser.load_or_create(tmp_path / "pki", "node1")
    assert endorser.load_or_create(tmp_path / "pki", "node1") == first
    assert (tmp_path / "pki" / "endorser.key").stat().st_mode & 0o777 == 0o600
    ca = (tmp_path / "pki" / "ca.pem").read_text()
    message = smime.sign(CONTENT, first.cert_pem, first.key_pem)
    assert (
        smime.verify(message, ca).signer_dn
        == "/O=gridvm site node1/CN=gridvm image list endorser node1"
    )
