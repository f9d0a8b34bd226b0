"""Images: streamed upload and download, list, show, rename, share, delete."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from gridvm.client.errors import TransferError
from gridvm.client.files import CHUNK_SIZE, Progress, replacing
from gridvm.client.transport import Transport, decode
from gridvm.schemas.images import ImageOut, ImageUpdate, Visibility

_IMAGE = TypeAdapter(ImageOut)
_IMAGES = TypeAdapter(list[ImageOut])


def _ref(ref: str) -> str:
    return quote(ref, safe="")


class Images:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def upload(
        self,
        path: str | os.PathLike[str],
        name: str,
        visibility: Visibility | str = Visibility.private,
        progress: Progress | None = None,
    ) -> ImageOut:
        """Upload a disk image file (qcow2, raw, vmdk or vdi), streamed from disk.

        The server inspects the image and converts it to qcow2 before answering;
        a file it will not store raises ``InvalidRequest`` and leaves no image.
        """
        source = Path(path)
        with source.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            response = self._t.request(
                "POST",
                "/images",
                params={"name": name, "visibility": Visibility(visibility).value},
                content=_read_chunks(f, size, source, progress),
                headers={
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                },
                # After the last byte the server inspects and converts: no read limit.
                timeout=httpx.Timeout(self._t.timeout, read=None),
            )
        return decode(response, _IMAGE)

    def list(self, name: str | None = None) -> list[ImageOut]:
        """The images you may use: yours, your groups' shared ones and public ones."""
        return self._t.get("/images", _IMAGES, params={"name": name})

    def get(self, ref: str) -> ImageOut:
        """One image by id or by name (your own first, then shared ones)."""
        return self._t.get(f"/images/{_ref(ref)}", _IMAGE)

    def update(
        self, ref: str, name: str | None = None, visibility: Visibility | str | None = None
    ) -> ImageOut:
        """Rename an image and/or change who may use it."""
        change = ImageUpdate(
            name=name, visibility=None if visibility is None else Visibility(visibility)
        )
        body = change.model_dump(mode="json", exclude_none=True)
        return self._t.send("PATCH", f"/images/{_ref(ref)}", _IMAGE, json=body)

    def delete(self, ref: str) -> None:
        """Delete an image no VM uses."""
        self._t.request("DELETE", f"/images/{_ref(ref)}")

    def download(
        self,
        ref: str,
        dest_path: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> ImageOut:
        """Save the image (qcow2) to ``dest_path``, checking its size and digest.

        The data goes to a temporary file next to ``dest_path`` that is renamed
        into place only when complete and verified: a failed download leaves
        nothing behind and does not touch an existing ``dest_path``.
        """
        image = self.get(ref)
        with replacing(Path(dest_path)) as out:
            received, digest = self._receive(image, out, progress)
            _verify(image, received, digest)
        return image

    def _receive(
        self, image: ImageOut, out: BinaryIO, progress: Progress | None
    ) -> tuple[int, str]:
        sha = hashlib.sha256()
        received = 0
        with self._t.stream("GET", f"/images/{_ref(image.id)}/content") as response:
            declared = response.headers.get("content-length")
            for chunk in response.iter_bytes(CHUNK_SIZE):
                out.write(chunk)
                sha.update(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received)
        if declared is not None and declared.isdigit() and int(declared) != received:
            raise TransferError(
                f"the download of image {image.name!r} stopped after {received} of"
                f" {declared} bytes",
                hint="try again",
            )
        return received, f"sha256:{sha.hexdigest()}"


def _verify(image: ImageOut, received: int, digest: str) -> None:
    if received != image.size or (image.digest.startswith("sha256:") and digest != image.digest):
        raise TransferError(
            f"the download of image {image.name!r} is damaged: got {received} bytes with"
            f" digest {digest}, expected {image.size} bytes with digest {image.digest}",
            hint="try again; if it keeps failing, tell an administrator",
        )


def _read_chunks(
    f: BinaryIO, size: int, source: Path, progress: Progress | None
) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``f`` in chunks, reporting progress as they go."""
    sent = 0
    while sent < size:
        data = f.read(min(CHUNK_SIZE, size - sent))
        if not data:
            raise TransferError(
                f"{source} shrank from {size} to {sent} bytes while it was being uploaded",
                hint="upload a file nothing is writing to",
            )
        sent += len(data)
        if progress is not None:
            progress(sent)
        yield data
    if size == 0 and progress is not None:
        progress(0)
