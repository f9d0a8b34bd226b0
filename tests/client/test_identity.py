"""Groups, users and tokens through the SDK, against a real server."""

from __future__ import annotations

import pytest

from gridvm.client import AuthenticationFailed, Client, ConflictError, PermissionDenied
from gridvm.schemas.identity import Role
from tests.servers import RunningServer


def test_health_and_whoami(gv: Client) -> None:
    assert gv.health() == {"status": "ok"}
    me = gv.whoami()
    assert (me.name, me.role, me.groups) == ("admin", Role.admin, ["admins"])


def test_a_new_user_gets_a_token_that_works_until_revoked(
    server: RunningServer, gv: Client
) -> None:
    assert gv.groups.create("physics").name == "physics"
    alice = gv.users.create("alice", "physics")
    assert (alice.role, alice.groups) == (Role.user, ["physics"])
    created = gv.tokens.create(user="alice", description="laptop")
    assert created.token.startswith("gvm_")
    assert (created.user, created.description) == ("alice", "laptop")

    assert "alice" in [u.name for u in gv.users.list()]
    assert {"admins", "physics"} <= {g.name for g in gv.groups.list()}
    listed = {t.id: t for t in gv.tokens.list()}
    assert listed[created.id].user == "alice"
    assert "token" not in listed[created.id].model_dump()

    with Client(server.url, created.token) as as_alice:
        assert as_alice.whoami().name == "alice"
        assert [g.name for g in as_alice.groups.list()] == ["physics"]
        with pytest.raises(PermissionDenied) as caught:
            as_alice.groups.create("mine")
        assert caught.value.status == 403
        gv.tokens.revoke(created.id)
        with pytest.raises(AuthenticationFailed) as refused:
            as_alice.whoami()
        assert refused.value.status == 401
    assert created.id not in {t.id for t in gv.tokens.list()}


def test_a_taken_name_is_a_conflict(gv: Client) -> None:
    gv.groups.create("bio")
    with pytest.raises(ConflictError, match="exists already"):
        gv.groups.create("bio")
