"""The server's content-addressed blob store.

Layout under ``root``::

    tmp/                 uploads and conversions in progress (mode 0700)
    sha256/<64 hex>      finished blobs, read-only, named by their sha256

A digest string from a request never becomes a path without passing
``digests.parse_digest``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from gridvm.common.errors import ImageRejected, InvalidInput, NotFound, PayloadTooLarge
from gridvm.common.units import format_size
from gridvm.images.digests import HEX_RE, parse_digest, sha256_file

CHUNK = 1024 * 1024
BLOB_MODE = 0o440


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class StagedBlob:
    """A received upload in the store's tmp dir, not yet part of the store."""

    path: Path
    sha256: str  # hex
    size: int

    def discard(self) -> None:
        """Delete the staged file (no error if it is already gone or was moved in)."""
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


class BlobStore:
    """Content-addressed files under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.tmp_dir = self.root / "tmp"
        self.blob_dir = self.root / "sha256"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(mode=0o700, exist_ok=True)
        self.blob_dir.mkdir(exist_ok=True)

    # --- staging ---------------------------------------------------------

    def make_temp(self, suffix: str = "") -> Path:
        """Create an empty mode-0600 file in the store's tmp dir (same file system)."""
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="part-", suffix=suffix)
        os.close(fd)
        return Path(name)

    def receive(self, chunks: Iterable[bytes], *, max_bytes: int) -> StagedBlob:
        """Stream ``chunks`` into a temp file, hashing as they come.

        Raises PayloadTooLarge as soon as more than ``max_bytes`` arrive and
        ImageRejected for an empty upload; in both cases, and if ``chunks``
        itself fails (client gone), the temp file is deleted.
        """
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        path = self.make_temp(".upload")
        h = hashlib.sha256()
        size = 0
        try:
            with path.open("wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"the upload is larger than the limit of {format_size(max_bytes)}",
                            hint="upload a smaller image (a sparse or compressed qcow2 is "
                            "often much smaller than raw) or ask an administrator to raise "
                            "the limit",
                        )
                    h.update(chunk)
                    f.write(chunk)
            if size == 0:
                raise ImageRejected("empty upload", hint="send the image file's content")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return StagedBlob(path=path, sha256=h.hexdigest(), size=size)

    # --- finished blobs --------------------------------------------------

    def add_file(self, path: Path) -> str:
        """Move a finished file into the store and return its ``sha256:<hex>`` digest.

        The file is consumed: if the store already holds that content the new
        file is deleted. It should live on the store's file system (e.g. in
        ``make_temp()``); otherwise it is copied.
        """
        hexdigest = sha256_file(path)
        final = self.blob_dir / hexdigest
        if final.exists():
            path.unlink(missing_ok=True)
            return f"sha256:{hexdigest}"
        with path.open("rb") as f:
            os.fsync(f.fileno())
        path.chmod(BLOB_MODE)
        try:
            path.replace(final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = self.make_temp(".copy")
            try:
                shutil.copyfile(path, tmp)
                tmp.chmod(BLOB_MODE)
                tmp.replace(final)
            finally:
                tmp.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        fsync_dir(self.blob_dir)
        return f"sha256:{hexdigest}"

    def path_of(self, digest: str) -> Path:
        """Path of a stored blob. InvalidInput for a malformed digest, NotFound if absent."""
        path = self.blob_dir / parse_digest(digest)
        if not path.is_file():
            raise NotFound(
                f"no blob {digest} in the image store",
                hint="check the image digest; the image may have been deleted",
            )
        return path

    def exists(self, digest: str) -> bool:
        return (self.blob_dir / parse_digest(digest)).is_file()

    def size_of(self, digest: str) -> int:
        return self.path_of(digest).stat().st_size

    def delete(self, digest: str, *, missing_ok: bool = False) -> None:
        """Remove a blob. Readers that already opened it keep reading the old content."""
        path = self.blob_dir / parse_digest(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            if not missing_ok:
                raise NotFound(
                    f"no blob {digest} in the image store",
                    hint="it was already deleted",
                ) from None

    def digests(self) -> Iterator[str]:
        """All stored digests (for garbage collection and audits)."""
        for entry in self.blob_dir.iterdir():
            if HEX_RE.fullmatch(entry.name) and entry.is_file():
                yield f"sha256:{entry.name}"

    def open_range(
        self, digest: str, start: int = 0, end: int | None = None, *, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` of a blob (``end`` None: to the end).

        The digest and range are checked now (InvalidInput, NotFound); bytes
        are read as the iterator is consumed.
        """
        path = self.path_of(digest)
        size = path.stat().st_size
        stop = size if end is None else end
        if not 0 <= start <= stop <= size:
            raise InvalidInput(
                f"byte range {start}-{stop} is outside blob {digest} of {size} bytes",
                hint=f"ask for a range within 0-{size}",
            )
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        return self._read_range(path, start, stop, chunk_size)

    @staticmethod
    def _read_range(path: Path, start: int, stop: int, chunk_size: int) -> Iterator[bytes]:
        with path.open("rb") as f:
            f.seek(start)
            left = stop - start
            while left > 0:
                block = f.read(min(chunk_size, left))
                if not block:
                    break
                left -= len(block)
                yield block

    # --- housekeeping ----------------------------------------------------

    def purge_tmp(self, *, older_than_s: float = 24 * 3600) -> int:
        """Delete leftovers of interrupted uploads older than ``older_than_s``; return how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in self.tmp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed
