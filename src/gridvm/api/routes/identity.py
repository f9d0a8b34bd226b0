"""Health, who am I, groups, users, tokens."""

from __future__ import annotations

from fastapi import APIRouter, status

from gridvm.api.deps import Caller, Services
from gridvm.schemas.identity import (
    GroupCreate,
    GroupOut,
    GroupUpdate,
    MembershipSet,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    WhoAmI,
)

router = APIRouter()


@router.get("/health", tags=["meta"])
def health() -> dict[str, str]:
    """The one endpoint that needs no token."""
    return {"status": "ok"}


@router.get("/whoami", tags=["identity"])
def whoami(svc: Services, who: Caller) -> WhoAmI:
    return svc.identity.whoami(who)


@router.post("/groups", status_code=status.HTTP_201_CREATED, tags=["identity"])
def create_group(body: GroupCreate, svc: Services, who: Caller) -> GroupOut:
    return svc.identity.create_group(who, body.name, body.parent, body.shares)


@router.patch("/groups/{name}", tags=["identity"])
def update_group(name: str, body: GroupUpdate, svc: Services, who: Caller) -> GroupOut:
    """Change a group's fair-share shares (admins)."""
    return svc.identity.update_group(who, name, body.shares)


@router.put("/groups/{name}/members/{user}", tags=["identity"])
def set_member(name: str, user: str, body: MembershipSet, svc: Services, who: Caller) -> GroupOut:
    """Add a user to the group, or set whether they manage it (admins; a manager of the
    group may add plain members)."""
    return svc.identity.set_member(who, name, user, body.manager)


@router.delete("/groups/{name}/members/{user}", tags=["identity"])
def remove_member(name: str, user: str, svc: Services, who: Caller) -> GroupOut:
    """Take a user out of the group (not out of their primary group)."""
    return svc.identity.remove_member(who, name, user)


@router.get("/groups", tags=["identity"])
def list_groups(svc: Services, who: Caller) -> list[GroupOut]:
    return svc.identity.list_groups(who)


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["identity"])
def create_user(body: UserCreate, svc: Services, who: Caller) -> UserOut:
    return svc.identity.create_user(who, body.name, body.group, body.role)


@router.get("/users", tags=["identity"])
def list_users(svc: Services, who: Caller) -> list[UserOut]:
    return svc.identity.list_users(who)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["identity"])
def create_token(body: TokenCreate, svc: Services, who: Caller) -> TokenCreated:
    return svc.identity.create_token(who, body.user, body.description)


@router.get("/tokens", tags=["identity"])
def list_tokens(svc: Services, who: Caller) -> list[TokenOut]:
    return svc.identity.list_tokens(who)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["identity"])
def revoke_token(token_id: str, svc: Services, who: Caller) -> None:
    svc.identity.revoke_token(who, token_id)
