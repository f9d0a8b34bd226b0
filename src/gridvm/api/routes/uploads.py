"""Resumable uploads of disk images (a tus-like protocol).

1. ``POST /uploads`` ``{"name", "visibility", "total_bytes"}`` → 201 ``{"id",
   "received_bytes": 0, ...}``; refused at once (413) if ``total_bytes`` is over the
   site's upload limit or the owner's image storage quota.
2. ``PATCH /uploads/{id}`` with header ``Upload-Offset: N`` and a chunk as the raw body:
   appended if N equals the bytes received so far (→ 200, the session, and header
   ``Upload-Offset`` with the new count); otherwise 409 with ``received_bytes`` in the
   JSON body (and the header). A chunk cut off part-way keeps what arrived: ask
   ``HEAD``/``GET /uploads/{id}`` for the offset and go on from there.
3. ``POST /uploads/{id}/complete`` → 201, the image: ingested exactly like
   ``POST /images`` (format detection, conversion to qcow2, refusals, quota). It ends
   the session, also when the image is refused; a quota refusal (413) keeps it.
4. ``DELETE /uploads/{id}`` aborts: the session and its bytes are gone.

Sessions are their owner's only (others get 404) and are removed after a day idle.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import JSONResponse

from gridvm.api.deps import Caller, Services
from gridvm.api.streaming import RAW_BODY, blocking_chunks
from gridvm.common.errors import InvalidInput
from gridvm.schemas.base import ErrorBody
from gridvm.schemas.images import ImageOut, UploadCreate, UploadOut
from gridvm.services.uploads import OffsetMismatch

router = APIRouter(tags=["uploads"])


def _offset_headers(upload: UploadOut) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.received_bytes), "Cache-Control": "no-store"}
    if upload.total_bytes is not None:
        headers["Upload-Length"] = str(upload.total_bytes)
    return headers


@router.post("/uploads", status_code=status.HTTP_201_CREATED)
def create_upload(body: UploadCreate, svc: Services, who: Caller) -> UploadOut:
    """Open a resumable upload of a file of ``total_bytes`` bytes."""
    return svc.uploads.create(who, body)


@router.get("/uploads")
def list_uploads(svc: Services, who: Caller) -> list[UploadOut]:
    """Your uploads under way."""
    return svc.uploads.list_uploads(who)


@router.get("/uploads/{upload_id}")
def show_upload(upload_id: str, svc: Services, who: Caller, response: Response) -> UploadOut:
    """The session, with the bytes received so far (also in header ``Upload-Offset``)."""
    upload = svc.uploads.get(who, upload_id)
    response.headers.update(_offset_headers(upload))
    return upload


@router.head("/uploads/{upload_id}")
def upload_offset(upload_id: str, svc: Services, who: Caller) -> Response:
    """Headers ``Upload-Offset`` (bytes received) and ``Upload-Length``."""
    return Response(headers=_offset_headers(svc.uploads.get(who, upload_id)))


@router.patch("/uploads/{upload_id}", openapi_extra=RAW_BODY, response_model=UploadOut)
async def append_chunk(
    upload_id: str,
    request: Request,
    svc: Services,
    who: Caller,
    upload_offset: Annotated[str, Header(description="bytes received so far")],
) -> Response:
    """Append the raw body at ``Upload-Offset``; 409 with ``received_bytes`` if that is not
    where the received bytes end."""
    if not upload_offset.isdigit():
        raise InvalidInput(
            f"Upload-Offset {upload_offset!r} is not a byte count",
            hint="send the number of bytes the server has received (HEAD /uploads/ID)",
        )
    stream = request.stream().__aiter__()
    try:
        upload = await anyio.to_thread.run_sync(
            lambda: svc.uploads.append(who, upload_id, int(upload_offset), blocking_chunks(stream))
        )
    except OffsetMismatch as exc:
        body = ErrorBody(error=exc.code, message=exc.message, hint=exc.hint).model_dump()
        return JSONResponse(
            status_code=status.HTTP_409_CONFLICT,
            content={**body, "received_bytes": exc.received_bytes},
            headers={"Upload-Offset": str(exc.received_bytes)},
        )
    return JSONResponse(content=upload.model_dump(mode="json"), headers=_offset_headers(upload))


@router.post("/uploads/{upload_id}/complete", status_code=status.HTTP_201_CREATED)
def complete_upload(upload_id: str, svc: Services, who: Caller) -> ImageOut:
    """Make the image from the received bytes (as ``POST /images`` does) and end the session."""
    return svc.uploads.complete(who, upload_id)


@router.delete("/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
def abort_upload(upload_id: str, svc: Services, who: Caller) -> None:
    """Abort: the session and the bytes it received are deleted."""
    svc.uploads.abort(who, upload_id)
