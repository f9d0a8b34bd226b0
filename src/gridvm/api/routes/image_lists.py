"""Signed HEPiX image lists: export this site's list, subscribe to other sites' lists.

``/image-list`` (officers and admins) is the signed list; ``/public/image-list`` and
its images (with a kernel-boot image's ``/kernel`` and ``/initrd``) answer without a
token only when the site publishes its list (``gridvm server --publish-image-list``):
other sites' subscribers fetch those.
"""

from __future__ import annotations

from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Response, status
from fastapi.responses import FileResponse

from gridvm.api.deps import Caller, Services
from gridvm.schemas.image_lists import SubscriptionCreate, SubscriptionOut

router = APIRouter(tags=["image lists"])

SMIME_TYPE = "application/pkcs7-mime"


@router.get("/image-list", response_class=Response)
def export_image_list(svc: Services, who: Caller) -> Response:
    """This site's public site and certified images, as an S/MIME-signed HEPiX image list."""
    signed = svc.image_lists.export(who)
    return Response(signed.message, media_type=SMIME_TYPE)


@router.get("/public/image-list", response_class=Response)
def published_image_list(svc: Services) -> Response:
    """The signed list, without a token (404 unless the site publishes its list)."""
    return Response(svc.image_lists.export(None).message, media_type=SMIME_TYPE)


@router.get("/public/image-list/images/{image_id}", response_class=FileResponse)
def published_image(image_id: str, svc: Services) -> FileResponse:
    """An image the published list names, as qcow2 (404 unless the list is published)."""
    path = svc.image_lists.published_image(image_id)
    return FileResponse(path, media_type="application/octet-stream", filename=f"{image_id}.qcow2")


@router.get("/public/image-list/images/{image_id}/{part}", response_class=FileResponse)
def published_boot_file(
    image_id: str, part: Literal["kernel", "initrd"], svc: Services
) -> FileResponse:
    """The kernel or initrd of a kernel-boot image the published list names (404 unless
    the list is published and the image boots with one)."""
    path = svc.image_lists.published_image(image_id, part)
    return FileResponse(path, media_type="application/octet-stream", filename=f"{image_id}.{part}")


@router.post("/image-lists", status_code=status.HTTP_201_CREATED)
async def subscribe(body: SubscriptionCreate, svc: Services, who: Caller) -> SubscriptionOut:
    """Follow another site's signed list (officers and admins); it is fetched at once, and
    the outcome is in ``last_error`` (None: its images were taken)."""
    return await anyio.to_thread.run_sync(lambda: svc.image_lists.subscribe(who, body))


@router.get("/image-lists")
def list_subscriptions(svc: Services, who: Caller) -> list[SubscriptionOut]:
    return svc.image_lists.list_subscriptions(who)


@router.post("/image-lists/{name}/refresh")
async def refresh(name: str, svc: Services, who: Caller) -> SubscriptionOut:
    """Fetch the list now and apply it; the outcome is in ``last_error``."""
    return await anyio.to_thread.run_sync(lambda: svc.image_lists.refresh(who, name))


@router.delete("/image-lists/{name}", status_code=status.HTTP_204_NO_CONTENT)
def unsubscribe(name: str, svc: Services, who: Caller) -> None:
    """Stop following a list: its images stay, without the list's certification."""
    svc.image_lists.remove(who, name)
