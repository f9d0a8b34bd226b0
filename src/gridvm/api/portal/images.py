"""The "My images" page: list, add from a template, upload, rename, share, delete.

Every form works without JavaScript (post, redirect, get); images.js adds a resumable
upload with a progress bar through the REST API (retrying failed chunks, resuming an upload
cut off by a reload) and submits the checkboxes on change. The caller's unfinished uploads
are listed with a "Discard" button.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile

from gridvm.api.deps import services
from gridvm.api.portal.image_rows import image_rows, templates_of
from gridvm.api.portal.rendering import error_text, redirect, render
from gridvm.api.portal.session import PortalSession, checked_form, form_text
from gridvm.common.errors import GridvmError, InvalidInput, PayloadTooLarge
from gridvm.common.units import format_size
from gridvm.schemas.images import ImageOut, ImageUpdate, Visibility
from gridvm.services.web_sessions import OpenSession

router = APIRouter()

PAGE = "/ui/images"
READ_BLOCK = 1024 * 1024
IMAGE_SUFFIXES = (".qcow2", ".qcow", ".img", ".raw", ".vmdk", ".vdi")
# The chunk size images.js sends (the form's data-chunk-bytes).
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024


def _page(
    request: Request,
    session: OpenSession,
    *,
    shared: bool = False,
    status_code: int = 200,
    **context: Any,
) -> Any:
    svc = services(request)
    who = session.principal
    return render(
        request,
        "images.html",
        session,
        status_code=status_code,
        active="images",
        rows=image_rows(svc, who, shared),
        templates=templates_of(svc, who),
        shared=shared,
        entered=context.pop("entered", {}),
        max_upload=svc.config.limits.max_upload_bytes,
        chunk_bytes=UPLOAD_CHUNK_BYTES,
        uploads=svc.uploads.list_uploads(who),
        **context,
    )


def _failed(
    request: Request, session: OpenSession, exc: GridvmError, form: FormData, **entered: str
) -> Any:
    """The page again with the error, what was entered, and the error's status."""
    shared = form_text(form, "shared_view") == "1"
    return _page(
        request,
        session,
        shared=shared,
        status_code=exc.http_status,
        error=error_text(exc),
        entered=entered,
    )


def _back(form: FormData) -> str:
    return f"{PAGE}?shared=1" if form_text(form, "shared_view") == "1" else PAGE


@router.get("/images")
def images_page(request: Request, session: PortalSession, shared: str = "") -> Any:
    return _page(request, session, shared=shared in ("1", "on", "true"))


@router.post("/images/copy")
async def copy_template(request: Request, session: PortalSession) -> Any:
    form = await checked_form(request, session)
    source, name = form_text(form, "template"), form_text(form, "name")
    try:
        if not source:
            raise InvalidInput("choose a template to add", hint="pick one in the Template list")
        if not name:
            raise InvalidInput("give the new image a name", hint="fill in New name")
        image = services(request).images.copy(session.principal, source, name)
    except GridvmError as exc:
        return _failed(request, session, exc, form, template=source, new_name=name)
    return redirect(_back(form), f"Added image {image.name}:{image.version} ({image.trust}).")


def _default_name(filename: str) -> str:
    for suffix in IMAGE_SUFFIXES:
        if filename.lower().endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return filename


def _blocks(f: BinaryIO) -> Iterator[bytes]:
    while block := f.read(READ_BLOCK):
        yield block


@router.post("/images/upload")
async def upload_image(request: Request, session: PortalSession) -> Any:
    """The form's file, streamed to the image store (the multipart parser spools it to a
    temporary file, so a large image is never held in memory)."""
    svc = services(request)
    limit = svc.config.limits.max_upload_bytes
    declared = request.headers.get("content-length")
    # Refused before a byte is spooled (the form's other fields need far less than a block).
    if declared and declared.isdigit() and int(declared) > limit + READ_BLOCK:
        raise PayloadTooLarge(
            f"the upload of {format_size(int(declared))} is larger than the site's limit",
            hint=f"images may be at most {format_size(limit)}",
        )
    form = await checked_form(request, session)
    try:
        name = form_text(form, "name")
        file = form.get("file")
        try:
            if not isinstance(file, UploadFile) or not file.filename:
                raise InvalidInput("choose an image file to upload", hint="use Image file")
            name = name or _default_name(file.filename)
            upload = file.file
            image: ImageOut = await anyio.to_thread.run_sync(
                lambda: svc.images.upload(
                    session.principal, name, Visibility.private, _blocks(upload)
                )
            )
        except GridvmError as exc:
            return _failed(request, session, exc, form, upload_name=name)
    finally:
        await form.close()
    return redirect(
        _back(form),
        f"Uploaded image {image.name}:{image.version} ({format_size(image.size)} stored).",
    )


@router.post("/images/{image_id}/rename")
async def rename_image(request: Request, session: PortalSession, image_id: str) -> Any:
    form = await checked_form(request, session)
    name = form_text(form, "name")
    try:
        if not name:
            raise InvalidInput("give the image a new name", hint="fill in the name and Rename")
        image = services(request).images.update(session.principal, image_id, ImageUpdate(name=name))
    except GridvmError as exc:
        return _failed(request, session, exc, form, **{f"rename-{image_id}": name})
    return redirect(_back(form), f"Renamed the image to {image.name}.")


@router.post("/images/{image_id}/share")
async def share_image(request: Request, session: PortalSession, image_id: str) -> Any:
    """The "Shared" checkbox: shared with the owner's group, or private again. A public
    image stays public while the box stays ticked."""
    form = await checked_form(request, session)
    wanted = form_text(form, "shared") in ("on", "1", "true")
    svc = services(request)
    try:
        current = svc.images.get(session.principal, image_id)
        shared_now = current.visibility != Visibility.private
        if wanted == shared_now:
            return redirect(_back(form), f"Image {current.name} is unchanged.")
        visibility = Visibility.group if wanted else Visibility.private
        image = svc.images.update(session.principal, image_id, ImageUpdate(visibility=visibility))
    except GridvmError as exc:
        return _failed(request, session, exc, form)
    if image.visibility == Visibility.group:
        return redirect(_back(form), f"Image {image.name} is shared with group {image.group}.")
    return redirect(_back(form), f"Image {image.name} is private: only its owner may use it.")


@router.post("/images/{image_id}/delete")
async def delete_image(request: Request, session: PortalSession, image_id: str) -> Any:
    form = await checked_form(request, session)
    svc = services(request)
    try:
        image = svc.images.get(session.principal, image_id)
        svc.images.delete(session.principal, image.id)
    except GridvmError as exc:
        return _failed(request, session, exc, form)
    return redirect(_back(form), f"Deleted image {image.name}:{image.version}.")


@router.post("/images/uploads/{upload_id}/discard")
async def discard_upload(request: Request, session: PortalSession, upload_id: str) -> Any:
    """Abort an unfinished upload: the session and the bytes it received are deleted."""
    form = await checked_form(request, session)
    svc = services(request)
    try:
        upload = svc.uploads.get(session.principal, upload_id)
        svc.uploads.abort(session.principal, upload.id)
    except GridvmError as exc:
        return _failed(request, session, exc, form)
    return redirect(
        _back(form),
        f"Discarded the unfinished upload of {upload.name}"
        f" ({format_size(upload.received_bytes)} received).",
    )
