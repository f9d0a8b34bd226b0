"""Users, groups, roles and API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire


class Role(StrEnum):
    user = "user"
    admin = "admin"
    # A security officer inspects, certifies and revokes images (admins may too).
    officer = "officer"
    # The credential of a host agent: may register a host and sync its VMs, nothing else.
    agent = "agent"


class GroupCreate(Wire):
    name: str
    # A sub-group of this group in the fair-share tree (its usage counts for the parent).
    parent: str | None = None
    shares: float = Field(default=1.0, ge=0)


class GroupUpdate(Wire):
    shares: float | None = Field(default=None, ge=0)


class GroupOut(Wire):
    name: str
    created_at: datetime
    members: list[str] = []
    parent: str | None = None
    path: str = ""
    shares: float = 1.0
    # Members who publish images to the group (and add or remove its members).
    managers: list[str] = []


class MembershipSet(Wire):
    """Add a user to a group, or change whether they manage it (admins)."""

    manager: bool = False


class UserCreate(Wire):
    name: str
    group: str
    role: Role = Role.user


class UserOut(Wire):
    name: str
    role: Role
    groups: list[str]
    created_at: datetime


class TokenCreate(Wire):
    user: str | None = None
    description: str = ""


class TokenOut(Wire):
    id: str
    user: str
    description: str
    created_at: datetime
    last_used_at: datetime | None = None


class TokenCreated(TokenOut):
    """Returned once, when a token is made: the secret is not stored and never shown again."""

    token: str


class WhoAmI(Wire):
    name: str
    role: Role
    groups: list[str]


class SecretOut(Wire):
    """What is shown of a secret: never its value."""

    name: str
    size: int
    created_at: datetime


class SshKeyCreate(Wire):
    name: str
    public_key: str


class SshKeyOut(Wire):
    name: str
    fingerprint: str
    public_key: str
    created_at: datetime
