"""Images: streamed upload, list, show, download, rename, share, delete."""

from __future__ import annotations

from typing import Annotated

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from gridvm.api.deps import Caller, Services
from gridvm.api.streaming import RAW_BODY, blocking_chunks
from gridvm.common.errors import PayloadTooLarge
from gridvm.common.units import format_size
from gridvm.schemas.images import ExportFormat, ImageCopy, ImageOut, ImageUpdate, Visibility

router = APIRouter(tags=["images"])


@router.post(
    "/images",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=RAW_BODY,
)
async def upload_image(
    request: Request,
    svc: Services,
    who: Caller,
    name: Annotated[str, Query(description="name of the new image")],
    visibility: Visibility = Visibility.private,
) -> ImageOut:
    """Upload a disk image (qcow2, raw, vmdk or vdi) as the raw request body."""
    limit = svc.config.limits.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the upload of {format_size(int(declared))} is larger than the site's limit",
            hint=f"images may be at most {format_size(limit)}",
        )
    stream = request.stream().__aiter__()
    return await anyio.to_thread.run_sync(
        lambda: svc.images.upload(who, name, visibility, blocking_chunks(stream))
    )


@router.get("/images")
def list_images(
    svc: Services, who: Caller, name: str | None = None, all_versions: bool = False
) -> list[ImageOut]:
    """The images you may use: the latest version of each name (``all_versions``: every one)."""
    return svc.images.list_images(who, name, all_versions)


@router.get("/images/{ref}/versions")
def image_versions(ref: str, svc: Services, who: Caller) -> list[ImageOut]:
    """Every version of the name ``ref`` resolves to (that you may see), oldest first."""
    return svc.images.versions(who, ref)


@router.get("/images/{ref}")
def show_image(ref: str, svc: Services, who: Caller) -> ImageOut:
    return svc.images.get(who, ref)


@router.patch("/images/{ref}")
def update_image(ref: str, body: ImageUpdate, svc: Services, who: Caller) -> ImageOut:
    return svc.images.update(who, ref, body)


@router.post("/images/{ref}/copy", status_code=status.HTTP_201_CREATED)
def copy_image(ref: str, body: ImageCopy, svc: Services, who: Caller) -> ImageOut:
    """Copy an image you may use as your own private image ``name`` (no bytes are copied;
    a copy of a site template or certified image is certified)."""
    return svc.images.copy(who, ref, body.name)


@router.delete("/images/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_image(ref: str, svc: Services, who: Caller, all_versions: bool = False) -> None:
    """Delete one image (an id, or NAME:N); NAME alone when it has one version, or every
    version of it with ``all_versions``."""
    svc.images.delete(who, ref, all_versions)


@router.get("/images/{ref}/content", response_class=FileResponse)
def download_image(
    ref: str, svc: Services, who: Caller, format: ExportFormat = ExportFormat.qcow2
) -> FileResponse:
    """The image as qcow2 (as stored), or ``format=raw`` (a sparse raw disk converted for
    this request). Range requests are honoured (206 with Content-Range)."""
    blob = svc.images.content(who, ref, format)
    cleanup = BackgroundTask(blob.path.unlink, missing_ok=True) if blob.temporary else None
    return FileResponse(
        blob.path,
        media_type="application/octet-stream",
        filename=blob.filename,
        background=cleanup,
    )


@router.post("/images/{ref}/template")
def add_template(ref: str, svc: Services, who: Caller) -> ImageOut:
    """Make an admin's image a site template: public, class ``site``; recipes may build on
    it when it was itself built from a recipe (admins only)."""
    return svc.templates.add(who, ref)


@router.delete("/images/{ref}/template")
def remove_template(ref: str, svc: Services, who: Caller) -> ImageOut:
    """Stop an admin-made template being one: it falls back to its certifications' class."""
    return svc.templates.remove(who, ref)
