"""Secrets (values never returned) and SSH public keys: what users keep for their VMs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from gridvm.api.deps import Caller, Services
from gridvm.api.streaming import RAW_BODY
from gridvm.common.errors import PayloadTooLarge
from gridvm.schemas.identity import SecretOut, SshKeyCreate, SshKeyOut

router = APIRouter(tags=["secrets"])


@router.post(
    "/secrets",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=RAW_BODY,
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


@router.post("/ssh-keys", status_code=status.HTTP_201_CREATED, tags=["ssh-keys"])
def add_ssh_key(body: SshKeyCreate, svc: Services, who: Caller) -> SshKeyOut:
    """Keep an SSH public key on your account; `vm run --ssh-key NAME` installs it."""
    return svc.ssh_keys.add(who, body.name, body.public_key)


@router.get("/ssh-keys", tags=["ssh-keys"])
def list_ssh_keys(svc: Services, who: Caller) -> list[SshKeyOut]:
    return svc.ssh_keys.list_keys(who)


@router.delete("/ssh-keys/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["ssh-keys"])
def remove_ssh_key(name: str, svc: Services, who: Caller) -> None:
    svc.ssh_keys.remove(who, name)
