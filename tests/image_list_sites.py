"""Test fixtures for image lists: endorsers, a publishing site, and a plain HTTP server.

The HTTP server is Python's ``http.server`` (HTTP/1.0, no keep-alive), serving files
from a folder: tests put the list they want another site to fetch there.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gridvm.images.imagelist import document, endorser, smime


@dataclass(frozen=True)
class Endorsement:
    ca: endorser.Credentials
    signer: endorser.Credentials
    dn: str

    def write(self, folder: Path) -> tuple[Path, Path, Path]:
        """(cert, key, ca) PEM files for a server's settings and a subscriber."""
        folder.mkdir(parents=True, exist_ok=True)
        cert, key, ca = folder / "endorser.pem", folder / "endorser.key", folder / "ca.pem"
        cert.write_bytes(self.signer.cert_pem)
        key.write_bytes(self.signer.key_pem)
        ca.write_bytes(self.ca.cert_pem)
        return cert, key, ca


def make_endorsement(
    org: str = "Site A", name: str = "Site A endorser", ca: endorser.Credentials | None = None
) -> Endorsement:
    ca = ca or endorser.make_ca(org, f"{org} CA")
    signer = endorser.make_endorser(ca, org, name)
    return Endorsement(ca, signer, f"/O={org}/CN={name}")


def signed_content(message: bytes) -> bytes:
    """The JSON inside a list signed by ``smime.sign`` (no check of the signature)."""
    _, _, body = message.partition(b"\n\n")
    der = base64.b64decode(body)
    start = der.index(b'{\n  "hv:imagelist"')
    # The JSON ends where its object closes (the signature after it may hold any bytes,
    # "}\n" too); latin-1 maps bytes one to one, and the JSON is ASCII.
    _, length = json.JSONDecoder().raw_decode(der[start:].decode("latin-1"))
    end = start + length
    return der[start : end + 1] if der[end : end + 1] == b"\n" else der[start:end]


def tampered(message: bytes, old: bytes, new: bytes) -> bytes:
    """The signed list with bytes of its content changed (same length), signature kept."""
    assert len(old) == len(new)
    head, _, body = message.partition(b"\n\n")
    der = base64.b64decode(body)
    assert old in der
    return head + b"\n\n" + base64.encodebytes(der.replace(old, new, 1))


def resigned(message: bytes, by: Endorsement, **changes: Any) -> bytes:
    """The list's content with ``changes`` (ImageList fields), signed by ``by``."""
    image_list = document.parse(signed_content(message))
    fields = {**image_list.__dict__, **changes}
    return smime.sign(
        document.to_json(document.ImageList(**fields)), by.signer.cert_pem, by.signer.key_pem
    )


def past(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free loopback port; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
