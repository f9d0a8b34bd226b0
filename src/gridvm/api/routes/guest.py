"""The guest API: a running VM reports about itself and reads its group context.

Only VM tokens get in (``gvt.…``, in the guest at /run/gridvm/token), and a VM
token speaks for its own VM only. Guests reach these endpoints through their
host's agent (the virtio-serial guest channel) or directly where the network
allows. Long waits are async sleeps between short checks, so a thousand waiting
guests hold no worker threads.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from gridvm.api.deps import Services, services
from gridvm.common.errors import NotFound, PayloadTooLarge
from gridvm.schemas.guest import ContextWait, GuestContext, GuestProgress, GuestReady, GuestSelf
from gridvm.services.guest import MAX_VALUE_BYTES
from gridvm.services.guest_tokens import GuestIdentity

router = APIRouter(prefix="/guest", tags=["guest"])

POLL_S = 0.5
MAX_WAIT_S = 300.0


def guest_identity(request: Request) -> GuestIdentity:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    return services(request).guest.identify(token)


Guest = Annotated[GuestIdentity, Depends(guest_identity)]


class Format(StrEnum):
    json = "json"
    text = "text"  # for shell scripts: see context_text


@router.get("/self")
def whoami(svc: Services, vm: Guest) -> GuestSelf:
    return svc.guest.me(vm)


@router.post("/ready")
def ready(body: GuestReady, svc: Services, vm: Guest) -> GuestSelf:
    """The guest is up (its peers may now count on it); ``ip`` is its address."""
    return svc.guest.ready(vm, body)


@router.post("/progress", status_code=status.HTTP_204_NO_CONTENT)
def progress(body: GuestProgress, svc: Services, vm: Guest) -> None:
    svc.guest.progress(vm, body)


@router.put("/public-keys")
async def public_keys(request: Request, svc: Services, vm: Guest) -> list[str]:
    """Replace the VM's published OpenSSH public keys (text, one per line)."""
    text = (await _body(request)).decode("utf-8", errors="replace")
    return await anyio.to_thread.run_sync(svc.guest.set_public_keys, vm, text)


@router.put("/data/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def publish(key: str, request: Request, svc: Services, vm: Guest) -> None:
    """Publish ``key`` = the request body (UTF-8 text) for the VM's peers."""
    value = await _body(request)
    await anyio.to_thread.run_sync(svc.guest.publish, vm, key, value)


@router.delete("/data/{key}", status_code=status.HTTP_204_NO_CONTENT)
def unpublish(key: str, svc: Services, vm: Guest) -> None:
    svc.guest.unpublish(vm, key)


@router.get("/peers/{peer}/data/{key}", response_class=PlainTextResponse)
async def peer_value(
    peer: str,
    key: str,
    svc: Services,
    vm: Guest,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0,
) -> PlainTextResponse:
    """What a peer published under ``key`` (text); ``wait`` seconds for it to appear."""
    deadline = time.monotonic() + wait
    while True:
        value = await anyio.to_thread.run_sync(svc.guest.peer_value, vm, peer, key)
        if value is not None:
            return PlainTextResponse(value)
        if time.monotonic() >= deadline:
            raise NotFound(
                f"{peer} has published no {key!r}" + (f" within {wait:g}s" if wait else ""),
                hint="ask again later, or pass wait=SECONDS",
            )
        await anyio.sleep(POLL_S)


@router.get("/context", response_model=GuestContext)
async def context(
    svc: Services,
    vm: Guest,
    wait: ContextWait = ContextWait.none,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0,
    format: Format = Format.json,
) -> Response:
    """The VM's deployment: its peers, their roles, addresses, keys and data.

    With ``wait=required`` (or ``all``) and a ``timeout``, the answer comes when the
    context is complete or the time is up; ``complete`` tells which."""
    deadline = time.monotonic() + timeout
    while True:
        ctx = await anyio.to_thread.run_sync(svc.guest.context, vm, wait)
        if ctx.complete or time.monotonic() >= deadline:
            break
        await anyio.sleep(POLL_S)
    if format == Format.text:
        return PlainTextResponse(context_text(ctx))
    return Response(ctx.model_dump_json(), media_type="application/json")


def context_text(ctx: GuestContext) -> str:
    """``complete`` or ``waiting ROLE...`` on the first line, then one line per peer:
    ``NAME ROLE HOSTNAME IP ready|waiting`` (``-`` for no role or no address)."""
    lines = ["complete" if ctx.complete else " ".join(["waiting", *ctx.waiting_for])]
    for p in ctx.peers:
        state = "ready" if p.ready else "waiting"
        lines.append(f"{p.name} {p.role or '-'} {p.hostname} {p.ip or '-'} {state}")
    return "\n".join(lines) + "\n"


async def _body(request: Request) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_VALUE_BYTES:
            raise PayloadTooLarge(f"the body is at most {MAX_VALUE_BYTES} bytes")
    return bytes(data)
