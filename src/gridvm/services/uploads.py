"""Resumable uploads: a session per file, its bytes appended chunk by chunk to a file in the
image store's temp area, then ingested exactly as a one-shot upload.

A session belongs to its owner (others, admins included, get 404). Chunks must come in
order: each names the offset it starts at, which must equal the bytes received so far. The
session file is the truth about what was received; the row follows it after each chunk.
Sessions idle for a day are removed (``purge_idle``, from the server's periodic loop).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from gridvm.common.config import SiteLimits
from gridvm.common.errors import Conflict, ImageRejected, InvalidInput, NotFound, PayloadTooLarge
from gridvm.common.names import new_id, validate_name
from gridvm.common.units import format_size
from gridvm.images.blobstore import BlobStore
from gridvm.schemas.images import ImageOut, UploadCreate, UploadOut, Visibility
from gridvm.services.image_sharing import check_publish
from gridvm.services.images import QUOTA_HINT, ImageService
from gridvm.services.principal import Principal
from gridvm.services.storage_quotas import storage_refusal
from gridvm.store.db import Database
from gridvm.store.models import Upload, utcnow

log = logging.getLogger(__name__)

IDLE_LIMIT = timedelta(days=1)
READ_BLOCK = 1024 * 1024


class OffsetMismatch(Conflict):
    """A chunk that does not start where the received bytes end."""

    def __init__(self, message: str, hint: str, *, received_bytes: int) -> None:
        super().__init__(message, hint)
        self.received_bytes = received_bytes


def upload_out(row: Upload) -> UploadOut:
    return UploadOut(
        id=row.id,
        name=row.name,
        visibility=Visibility(row.visibility),
        total_bytes=row.total_bytes,
        received_bytes=row.received_bytes,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class UploadService:
    def __init__(
        self, db: Database, blobs: BlobStore, limits: SiteLimits, images: ImageService
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.limits = limits
        self.images = images
        self.dir = blobs.tmp_dir / "sessions"
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self._last_purge = 0.0

    def _file(self, upload_id: str) -> Path:
        return self.dir / f"{upload_id}.part"

    def _row(self, who: Principal, upload_id: str) -> Upload:
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is None or row.owner_id != who.user_id:
                raise NotFound(
                    f"no upload {upload_id!r}",
                    hint="it may have been completed, aborted or removed after a day idle;"
                    " start the upload again",
                )
            s.expunge(row)
            return row

    # --- sessions -----------------------------------------------------------
    def create(self, who: Principal, req: UploadCreate) -> UploadOut:
        """Open a session; refused at once if the declared size is over the site's limit or
        the owner's storage quota, or the visibility is not theirs to give."""
        validate_name(req.name, what="image name")
        limit = self.limits.max_upload_bytes
        if req.total_bytes > limit:
            raise PayloadTooLarge(
                f"the upload of {format_size(req.total_bytes)} is larger than the site's limit",
                hint=f"images may be at most {format_size(limit)}",
            )
        with self.db.session() as s:
            check_publish(s, who, who.user_id, who.primary_group_id, req.visibility)
            refusal = storage_refusal(s, who.user_id, who.primary_group_id, req.total_bytes)
            if refusal is not None:
                raise PayloadTooLarge(f"image storage quota: {refusal}", hint=QUOTA_HINT)
            row = Upload(
                id=new_id("upl"),
                owner_id=who.user_id,
                name=req.name,
                visibility=req.visibility.value,
                total_bytes=req.total_bytes,
                received_bytes=0,
            )
            fd = os.open(self._file(row.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            s.add(row)
            s.flush()
            s.refresh(row)
            log.info("upload %s of %s opened for %s", row.id, req.name, who.name)
            return upload_out(row)

    def get(self, who: Principal, upload_id: str) -> UploadOut:
        return upload_out(self._row(who, upload_id))

    def list_uploads(self, who: Principal) -> list[UploadOut]:
        with self.db.session() as s:
            rows = s.scalars(
                select(Upload).where(Upload.owner_id == who.user_id).order_by(Upload.created_at)
            ).all()
            return [upload_out(r) for r in rows]

    def append(
        self, who: Principal, upload_id: str, offset: int, chunks: Iterable[bytes]
    ) -> UploadOut:
        """Append a chunk that starts at ``offset``. A chunk cut off by the client keeps the
        bytes that arrived (the client asks for the offset and goes on from there)."""
        row = self._row(who, upload_id)
        total = row.total_bytes if row.total_bytes is not None else self.limits.max_upload_bytes
        with self._locked(upload_id) as f:
            received = os.fstat(f.fileno()).st_size
            if offset != received:
                raise OffsetMismatch(
                    f"upload {upload_id} has {received} bytes; this chunk starts at {offset}",
                    hint=f"send the chunk that starts at byte {received} (Upload-Offset:"
                    f" {received})",
                    received_bytes=received,
                )
            try:
                for chunk in chunks:
                    if received + len(chunk) > total:
                        raise PayloadTooLarge(
                            f"upload {upload_id} was declared as {total} bytes; this chunk"
                            " goes past that",
                            hint="start a new upload with the file's real size",
                        )
                    f.write(chunk)
                    received += len(chunk)
            except (PayloadTooLarge, InvalidInput):
                f.flush()
                f.truncate(offset)  # a refused chunk leaves no trace
                raise
            finally:
                f.flush()
                self._record(upload_id, os.fstat(f.fileno()).st_size)
        return self.get(who, upload_id)

    def _record(self, upload_id: str, received: int) -> None:
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is not None:
                row.received_bytes = received
                row.updated_at = utcnow()

    def complete(self, who: Principal, upload_id: str) -> ImageOut:
        """Ingest the received bytes like a one-shot upload and end the session. A file the
        store refuses ends the session too (nothing is kept); a quota refusal keeps it, so
        that it can be completed once there is room (or aborted)."""
        row = self._row(who, upload_id)
        with self._locked(upload_id) as f:
            received = os.fstat(f.fileno()).st_size
            if row.total_bytes is not None and received != row.total_bytes:
                raise Conflict(
                    f"upload {upload_id} has {received} of {row.total_bytes} bytes",
                    hint=f"send the rest from byte {received} first",
                )
            try:
                image = self.images.upload(
                    who, row.name, Visibility(row.visibility), _read(self._file(upload_id))
                )
            except (ImageRejected, InvalidInput):
                self._end(upload_id)
                raise
            self._end(upload_id)
            return image

    def abort(self, who: Principal, upload_id: str) -> None:
        self._row(who, upload_id)
        with self._locked(upload_id):
            self._end(upload_id)

    def _end(self, upload_id: str) -> None:
        self._file(upload_id).unlink(missing_ok=True)
        with self.db.session() as s:
            row = s.get(Upload, upload_id)
            if row is not None:
                s.delete(row)

    @contextlib.contextmanager
    def _locked(self, upload_id: str) -> Iterator[BinaryIO]:
        """The session file, opened for appending and locked: one request at a time."""
        path = self._file(upload_id)
        try:
            f = path.open("ab")
        except FileNotFoundError:
            raise NotFound(f"upload {upload_id} has lost its data", hint="start again") from None
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(
                    f"upload {upload_id} is busy with another request",
                    hint="send one chunk at a time; try again when it is done",
                ) from None
            yield f

    # --- housekeeping ---------------------------------------------------------
    def purge_idle(self, *, idle: timedelta = IDLE_LIMIT, every_s: float = 600.0) -> int:
        """Remove sessions idle longer than ``idle`` (at most once per ``every_s``), and
        leftovers of cut-off uploads and exports in the temp area. Returns sessions removed."""
        now = time.monotonic()
        if now - self._last_purge < every_s:
            return 0
        self._last_purge = now
        cutoff = utcnow() - idle
        with self.db.session() as s:
            stale = list(s.scalars(select(Upload.id).where(Upload.updated_at < cutoff)).all())
        for upload_id in stale:
            try:
                with self._locked(upload_id):
                    self._end(upload_id)
            except NotFound:  # its file is gone already
                self._end(upload_id)
            except Conflict:  # a chunk is arriving right now: not idle after all
                continue
            log.info("upload %s removed after %s idle", upload_id, idle)
        self.blobs.purge_tmp(older_than_s=idle.total_seconds())
        return len(stale)


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(READ_BLOCK):
            yield block
