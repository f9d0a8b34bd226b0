"""Secrets: store (raw request body), list (names only), delete. Values are never returned."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from gridvm.api.deps import Caller, Services
from gridvm.common.errors import PayloadTooLarge
from gridvm.schemas.identity import SecretOut

router = APIRouter(tags=["secrets"])


@router.post(
    "/secrets",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def create_secret(
    request: Request, svc: Services, who: Caller, name: Annotated[str, Query()]
) -> SecretOut:
    """Store a secret (a token, a proxy, a licence file) as the raw request body."""
    limit = svc.config.limits.max_secret_bytes
    value = bytearray()
    async for chunk in request.stream():
        value += chunk
        if len(value) > limit:
            raise PayloadTooLarge(f"secrets are at most {limit} bytes")
    return svc.secrets.create(who, name, bytes(value))


@router.get("/secrets")
def list_secrets(svc: Services, who: Caller) -> list[SecretOut]:
    return svc.secrets.list_secrets(who)


@router.delete("/secrets/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_secret(name: str, svc: Services, who: Caller) -> None:
    svc.secrets.delete(who, name)
