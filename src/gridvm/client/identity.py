"""Groups, users and API tokens."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport, decode
from gridvm.schemas.identity import (
    GroupCreate,
    GroupOut,
    GroupUpdate,
    MembershipSet,
    Role,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)

_GROUP = TypeAdapter(GroupOut)
_GROUPS = TypeAdapter(list[GroupOut])
_USER = TypeAdapter(UserOut)
_USERS = TypeAdapter(list[UserOut])
_TOKEN_CREATED = TypeAdapter(TokenCreated)
_TOKENS = TypeAdapter(list[TokenOut])


class Groups:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, name: str, *, parent: str | None = None, shares: float = 1.0) -> GroupOut:
        """Create a group (admins only), optionally as a sub-group of ``parent``."""
        body = GroupCreate(name=name, parent=parent, shares=shares).model_dump(mode="json")
        return self._t.send("POST", "/groups", _GROUP, json=body)

    def set_shares(self, name: str, shares: float) -> GroupOut:
        """Set the group's fair-share shares (admins only)."""
        body = GroupUpdate(shares=shares).model_dump(mode="json")
        return self._t.send("PATCH", f"/groups/{quote(name, safe='')}", _GROUP, json=body)

    def list(self) -> list[GroupOut]:
        """All groups for an admin; your own groups otherwise."""
        return self._t.get("/groups", _GROUPS)

    def set_member(self, name: str, user: str, *, manager: bool = False) -> GroupOut:
        """Add ``user`` to the group, or set whether they manage it (managers publish images
        to the group). Admins; a manager of the group may add plain members."""
        body = MembershipSet(manager=manager).model_dump(mode="json")
        path = f"/groups/{quote(name, safe='')}/members/{quote(user, safe='')}"
        return self._t.send("PUT", path, _GROUP, json=body)

    def remove_member(self, name: str, user: str) -> GroupOut:
        """Take ``user`` out of the group (not out of their primary group)."""
        path = f"/groups/{quote(name, safe='')}/members/{quote(user, safe='')}"
        return decode(self._t.request("DELETE", path), _GROUP)


class Users:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, name: str, group: str, role: Role | str = Role.user) -> UserOut:
        """Create a user in ``group`` (admins only)."""
        body = UserCreate(name=name, group=group, role=Role(role)).model_dump(mode="json")
        return self._t.send("POST", "/users", _USER, json=body)

    def list(self) -> list[UserOut]:
        """All users (admins only)."""
        return self._t.get("/users", _USERS)


class Tokens:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, user: str | None = None, description: str = "") -> TokenCreated:
        """A new token for yourself, or (admins) for ``user``: its secret is returned only now."""
        body = TokenCreate(user=user, description=description).model_dump(mode="json")
        return self._t.send("POST", "/tokens", _TOKEN_CREATED, json=body)

    def list(self) -> list[TokenOut]:
        """Your tokens (everyone's for an admin), without their secrets."""
        return self._t.get("/tokens", _TOKENS)

    def revoke(self, token_id: str) -> None:
        """Revoke a token: it stops working at once."""
        self._t.request("DELETE", f"/tokens/{quote(token_id, safe='')}")
