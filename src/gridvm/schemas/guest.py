"""The guest API: what a running VM may tell the server and ask it, with its VM token.

A VM reports that it is ready (and its address), its progress, its public keys and
key/value data for its peers, and reads its group context: the other members of its
deployment, by role, once those it requires are ready.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire


class GuestReady(Wire):
    # The address the guest has (its peers use it); left out, the server keeps none.
    ip: str | None = Field(default=None, max_length=64)


class GuestProgress(Wire):
    percent: float | None = Field(default=None, ge=0, le=100)
    message: str | None = Field(default=None, max_length=256)


class GuestSelf(Wire):
    """Who the token's VM is."""

    vm_id: str
    name: str
    hostname: str
    deployment: str
    index: int
    role: str | None
    attempt: int
    boot: int


class ContextWait(StrEnum):
    none = "none"  # answer at once
    required = "required"  # until every member of the roles this VM requires is ready
    all = "all"  # until every member of the deployment is ready


class Peer(Wire):
    name: str
    role: str | None
    hostname: str
    ip: str | None
    state: str
    ready: bool
    public_keys: list[str] = Field(default_factory=list)
    data: dict[str, str] = Field(default_factory=dict)


class GuestContext(Wire):
    """The VM's view of its deployment."""

    me: str
    role: str | None
    complete: bool
    # Roles (or "deployment") with members not ready yet, for the wait asked.
    waiting_for: list[str] = Field(default_factory=list)
    # Capability -> the ready members that provide it (from the roles' "provides").
    provides: dict[str, list[str]] = Field(default_factory=dict)
    peers: list[Peer] = Field(default_factory=list)
    ready_at: datetime | None = None
