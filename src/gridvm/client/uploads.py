"""Resumable uploads: a session on the server that receives a file in chunks.

The protocol (tus-like; see ``gridvm.api.routes.uploads``): create a session with the
file's size, send chunks with ``Upload-Offset`` (the bytes the server already has),
then complete it, which turns the bytes into an image exactly as a one-shot upload.
A chunk that failed is sent again from the offset the server reports.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from gridvm.client.errors import (
    ApiError,
    ConflictError,
    ServerError,
    ServerUnreachable,
    TransferError,
)
from gridvm.client.files import Progress
from gridvm.client.transport import Transport, decode
from gridvm.schemas.images import ImageOut, UploadCreate, UploadOut, Visibility

UPLOAD_CHUNK = 32 * 1024 * 1024
RETRIES = 4

_UPLOAD = TypeAdapter(UploadOut)
_UPLOADS = TypeAdapter(list[UploadOut])
_IMAGE = TypeAdapter(ImageOut)


class UploadInterrupted(TransferError):
    """An upload stopped part-way; ``upload_id`` continues it (``resume=``)."""

    def __init__(self, message: str, hint: str | None, *, upload_id: str, received: int) -> None:
        super().__init__(message, hint)
        self.upload_id = upload_id
        self.received = received


class Uploads:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(
        self, name: str, total_bytes: int, visibility: Visibility | str = Visibility.private
    ) -> UploadOut:
        """Open a session for a file of ``total_bytes`` (refused at once if too large)."""
        body = UploadCreate(name=name, visibility=Visibility(visibility), total_bytes=total_bytes)
        return self._t.send("POST", "/uploads", _UPLOAD, json=body.model_dump(mode="json"))

    def get(self, upload_id: str) -> UploadOut:
        """The session, with the bytes the server has received so far."""
        return self._t.get(f"/uploads/{_id(upload_id)}", _UPLOAD)

    def list(self) -> list[UploadOut]:
        """Your sessions under way."""
        return self._t.get("/uploads", _UPLOADS)

    def send_chunk(self, upload_id: str, offset: int, data: bytes) -> UploadOut:
        """Append ``data`` at ``offset`` (which must be the bytes received so far)."""
        response = self._t.request(
            "PATCH",
            f"/uploads/{_id(upload_id)}",
            content=data,
            headers={
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        return decode(response, _UPLOAD)

    def complete(self, upload_id: str) -> ImageOut:
        """Turn the received bytes into an image (the session ends either way but for a
        quota refusal, after which it can be completed again)."""
        response = self._t.request(
            "POST",
            f"/uploads/{_id(upload_id)}/complete",
            timeout=httpx.Timeout(self._t.timeout, read=None),
        )
        return decode(response, _IMAGE)

    def abort(self, upload_id: str) -> None:
        """End the session and delete what it received."""
        self._t.request("DELETE", f"/uploads/{_id(upload_id)}")

    def send_file(
        self,
        path: Path,
        upload: UploadOut,
        *,
        progress: Progress | None = None,
        chunk_size: int | None = None,
        retries: int | None = None,
    ) -> UploadOut:
        """Send the rest of ``path`` from the server's offset on; each failed chunk is retried
        (after asking the server its offset) up to ``retries`` times. If it still fails,
        ``UploadInterrupted`` says how far it got."""
        chunk_size = chunk_size or UPLOAD_CHUNK
        retries = RETRIES if retries is None else retries
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if upload.total_bytes is not None and size != upload.total_bytes:
                raise TransferError(
                    f"{path} has {size} bytes but upload {upload.id} is for {upload.total_bytes}",
                    hint="resume an upload with the same file, or start a new one",
                )
            offset = upload.received_bytes
            if progress is not None:
                progress(offset)
            failures = 0
            while offset < size:
                data = _read_at(f, offset, min(chunk_size, size - offset), path)
                try:
                    upload = self.send_chunk(upload.id, offset, data)
                    offset = upload.received_bytes
                    failures = 0
                except (TransferError, ServerUnreachable, ServerError, ConflictError) as exc:
                    failures += 1
                    if failures > retries:
                        raise _interrupted(upload.id, offset, size, exc) from exc
                    time.sleep(min(0.5 * 2**failures, 8.0))
                    offset = self._offset_after_failure(upload.id, offset)
                if progress is not None:
                    progress(offset)
        return upload

    def _offset_after_failure(self, upload_id: str, offset: int) -> int:
        try:
            return self.get(upload_id).received_bytes
        except (TransferError, ServerUnreachable):
            return offset


def _interrupted(upload_id: str, offset: int, size: int, exc: ApiError) -> UploadInterrupted:
    return UploadInterrupted(
        f"the upload stopped after {offset} of {size} bytes: {exc.message}",
        f"continue it with: gridvm image upload FILE --resume {upload_id}",
        upload_id=upload_id,
        received=offset,
    )


def _read_at(f: BinaryIO, offset: int, length: int, path: Path) -> bytes:
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise TransferError(
            f"{path} shrank while it was being uploaded",
            hint="upload a file nothing is writing to",
        )
    return data


def _id(upload_id: str) -> str:
    return quote(upload_id, safe="")
