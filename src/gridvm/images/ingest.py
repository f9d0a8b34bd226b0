"""Turning an untrusted upload into a stored, self-contained qcow2 blob."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gridvm.common.errors import ImageRejected
from gridvm.images.blobstore import BlobStore
from gridvm.images.formats import convert_to_qcow2, inspect_untrusted
from gridvm.images.headers import ImageFormat

UPLOAD_NAME = "the upload"


@dataclass(frozen=True)
class IngestedImage:
    """The stored result of one upload."""

    digest: str  # "sha256:<hex>" of the stored qcow2
    format_uploaded: ImageFormat
    virtual_size: int
    size: int  # bytes of the stored qcow2
    upload_sha256: str  # hex sha256 of the bytes as uploaded


def ingest_image(
    store: BlobStore,
    chunks: Iterable[bytes],
    *,
    max_bytes: int,
    max_virtual_size: int,
) -> IngestedImage:
    """Receive, inspect, convert to qcow2 and store one uploaded image.

    Every format, qcow2 included, is converted (see ``formats``), and the
    result is inspected again before it enters the store. On any failure
    every temporary file is removed: nothing half-made stays under the store.
    """
    staged = store.receive(chunks, max_bytes=max_bytes)
    converted: Path | None = None
    try:
        info = inspect_untrusted(staged.path, max_virtual_size=max_virtual_size, name=UPLOAD_NAME)
        converted = store.make_temp(".qcow2")
        convert_to_qcow2(staged.path, info.format, converted)
        staged.discard()  # free the space before hashing the result
        result = inspect_untrusted(
            converted, max_virtual_size=max_virtual_size, name="the converted image"
        )
        if result.format != "qcow2" or result.virtual_size != info.virtual_size:
            raise ImageRejected(
                f"converting {UPLOAD_NAME} changed its virtual size from "
                f"{info.virtual_size} to {result.virtual_size} bytes",
                hint="report this to an administrator with the image",
            )
        size = converted.stat().st_size
        digest = store.add_file(converted)
    finally:
        staged.discard()
        if converted is not None:
            converted.unlink(missing_ok=True)
    return IngestedImage(
        digest=digest,
        format_uploaded=info.format,
        virtual_size=info.virtual_size,
        size=size,
        upload_sha256=staged.sha256,
    )
