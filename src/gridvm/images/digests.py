"""Image digests: ``sha256:`` followed by 64 lower-case hex digits.

A digest string from a request or a server reply becomes a file name only
through ``parse_digest``, so it can never name an arbitrary path.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from gridvm.common.errors import InvalidInput

DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
HEX_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 1024 * 1024


def parse_digest(digest: str) -> str:
    """Return the hex part of a ``sha256:<64 lower-case hex>`` digest, or raise InvalidInput."""
    match = DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        shown = digest[:80] if isinstance(digest, str) else type(digest).__name__
        raise InvalidInput(
            f"{shown!r} is not an image digest",
            hint="a digest is 'sha256:' followed by 64 lower-case hex digits",
        )
    return match.group(1)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    return file_hexdigest(path, "sha256")


def file_hexdigest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's content by a ``hashlib`` algorithm (``sha256``, ``sha512``...)."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()
