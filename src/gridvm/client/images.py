"""Images: streamed upload and download, list, show, rename, share, delete."""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from gridvm.client.errors import TransferError
from gridvm.client.files import CHUNK_SIZE, Progress
from gridvm.client.transport import Transport, decode
from gridvm.client.uploads import Uploads
from gridvm.schemas.images import ExportFormat, ImageCopy, ImageOut, ImageUpdate, Visibility

_IMAGE = TypeAdapter(ImageOut)
_IMAGES = TypeAdapter(list[ImageOut])


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _ref(ref: str) -> str:
    return quote(ref, safe="")


class Images:
    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self.uploads = Uploads(transport)

    def upload(
        self,
        path: str | os.PathLike[str],
        name: str,
        visibility: Visibility | str = Visibility.private,
        progress: Progress | None = None,
        *,
        resume: str | None = None,
        chunk_size: int | None = None,
    ) -> ImageOut:
        """Upload a disk image file (qcow2, raw, vmdk or vdi) in resumable chunks.

        The server inspects the image and converts it to qcow2 when the last chunk is in;
        a file it will not store raises ``InvalidRequest`` and leaves no image. A chunk
        that fails is retried; if the upload still stops, ``UploadInterrupted`` carries the
        session's id, and ``resume=`` that id continues from the bytes the server has.
        """
        source = Path(path)
        size = source.stat().st_size
        if resume is not None:
            upload = self.uploads.get(resume)
        else:
            upload = self.uploads.create(name, size, visibility)
        upload = self.uploads.send_file(source, upload, progress=progress, chunk_size=chunk_size)
        return self.uploads.complete(upload.id)

    def upload_at_once(
        self,
        path: str | os.PathLike[str],
        name: str,
        visibility: Visibility | str = Visibility.private,
        progress: Progress | None = None,
    ) -> ImageOut:
        """Upload a disk image file in one request (no resuming; for small files)."""
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

    def list(self, name: str | None = None, all_versions: bool = False) -> list[ImageOut]:
        """The images you may use: yours, your groups' shared ones and public ones; the
        latest version of each name, or every version with ``all_versions``."""
        return self._t.get(
            "/images", _IMAGES, params={"name": name, "all_versions": all_versions or None}
        )

    def versions(self, ref: str) -> builtins.list[ImageOut]:
        """Every version of the image's name (that you may see), oldest first."""
        return self._t.get(f"/images/{_ref(ref)}/versions", _IMAGES)

    def get(self, ref: str) -> ImageOut:
        """One image by id, ``NAME`` (its latest version) or ``NAME:N`` (your own first,
        then shared ones)."""
        return self._t.get(f"/images/{_ref(ref)}", _IMAGE)

    def update(
        self, ref: str, name: str | None = None, visibility: Visibility | str | None = None
    ) -> ImageOut:
        """Rename an image (every version of its name) and/or change who may use it."""
        change = ImageUpdate(
            name=name, visibility=None if visibility is None else Visibility(visibility)
        )
        body = change.model_dump(mode="json", exclude_none=True)
        return self._t.send("PATCH", f"/images/{_ref(ref)}", _IMAGE, json=body)

    def copy(self, ref: str, name: str) -> ImageOut:
        """Copy an image you may use (a site template, say) as your own private image
        ``name`` (a name you have already gets a new version). A copy of a site template or
        certified image is certified; of a user image, a user image."""
        body = ImageCopy(name=name).model_dump(mode="json")
        return self._t.send("POST", f"/images/{_ref(ref)}/copy", _IMAGE, json=body)

    def make_template(self, ref: str, template: bool = True) -> ImageOut:
        """Make an admin's image a public site template (``template=False``: stop that)."""
        method = "POST" if template else "DELETE"
        return self._t.send(method, f"/images/{_ref(ref)}/template", _IMAGE)

    def delete(self, ref: str, all_versions: bool = False) -> None:
        """Delete an image no VM uses: an id or ``NAME:N``; ``NAME`` when it has one version,
        or all its versions with ``all_versions``."""
        self._t.request(
            "DELETE", f"/images/{_ref(ref)}", params={"all_versions": all_versions or None}
        )

    def download(
        self,
        ref: str,
        dest_path: str | os.PathLike[str],
        progress: Progress | None = None,
        *,
        format: ExportFormat | str = ExportFormat.qcow2,
        resume: bool = False,
    ) -> ImageOut:
        """Save the image to ``dest_path`` as qcow2 (checked against its size and sha256
        digest) or as a raw disk (checked against its virtual size).

        The data goes to ``<dest_path>.part``, renamed into place only when complete and
        verified; a download that breaks off keeps that file. With ``resume``, the rest is
        asked for with a range request and appended to ``<dest_path>.part`` (or to
        ``dest_path`` itself when it is a partial copy), then the whole file is verified.
        """
        image = self.get(ref)
        fmt = ExportFormat(format)
        dest = Path(dest_path)
        part = dest.with_name(dest.name + ".part")
        expected = image.size if fmt == ExportFormat.qcow2 else image.virtual_size
        target = part
        if resume and not part.exists() and dest.exists() and dest.stat().st_size < expected:
            target = dest
        start = target.stat().st_size if resume and target.exists() else 0
        if start > expected:
            raise TransferError(
                f"{target} has {start} bytes, more than image {image.name!r} ({expected})",
                hint="it is not a partial copy of this image: download it again with --force",
            )
        sha = hashlib.sha256()
        with target.open("ab" if start else "wb") as out:
            if start:
                _hash_file(target, sha)
            received = start
            if received < expected:
                received = self._receive(image, fmt, out, sha, start, progress)
            out.flush()
            os.fsync(out.fileno())
        try:
            _verify(image, fmt, received, f"sha256:{sha.hexdigest()}")
        except TransferError as exc:
            target.unlink(missing_ok=True)  # a damaged copy is never left to be used
            if start:
                raise TransferError(
                    f"{exc.message}; {target} was not a partial copy of it and was removed",
                    hint="download it again (without --continue)",
                ) from exc
            raise
        if target != dest:
            target.replace(dest)
        return image

    def _receive(
        self,
        image: ImageOut,
        fmt: ExportFormat,
        out: BinaryIO,
        sha: _Hasher,
        start: int,
        progress: Progress | None,
    ) -> int:
        received = start
        headers = {"Range": f"bytes={start}-"} if start else None
        params = {"format": fmt.value} if fmt != ExportFormat.qcow2 else None
        path = f"/images/{_ref(image.id)}/content"
        with self._t.stream("GET", path, params=params, headers=headers) as response:
            if start and response.status_code != 206:
                raise TransferError(
                    f"the server sent the whole of image {image.name!r}, not the rest from"
                    f" byte {start}",
                    hint="download it again with --force",
                )
            declared = response.headers.get("content-length")
            if progress is not None:
                progress(received)
            try:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    out.write(chunk)
                    sha.update(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received)
            except httpx.HTTPError as exc:
                raise _broke_off(image, received, str(exc)) from exc
        if declared is not None and declared.isdigit() and int(declared) != received - start:
            raise _broke_off(image, received, f"{received - start} of {declared} bytes came")
        return received


def _broke_off(image: ImageOut, received: int, reason: str) -> TransferError:
    return TransferError(
        f"the download of image {image.name!r} stopped after {received} bytes ({reason})",
        hint="continue it with: gridvm image download REF -o FILE --continue",
    )


def _hash_file(path: Path, sha: _Hasher) -> None:
    with path.open("rb") as f:
        while block := f.read(CHUNK_SIZE):
            sha.update(block)


def _verify(image: ImageOut, fmt: ExportFormat, received: int, digest: str) -> None:
    if fmt == ExportFormat.raw:
        if received != image.virtual_size:
            raise TransferError(
                f"the raw download of image {image.name!r} has {received} bytes, not its"
                f" disk size of {image.virtual_size}",
                hint="try again; if it keeps failing, tell an administrator",
            )
        return
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
