from __future__ import annotations

from tests.api.helpers import make_user
from tests.servers import RunningServer


def test_admin_makes_group_user_and_token(server: RunningServer) -> None:
    admin = server.client()
    assert admin.post("/api/v1/groups", json={"name": "physics"}).status_code == 201
    created = admin.post("/api/v1/users", json={"name": "alice", "group": "physics"})
    assert created.status_code == 201
    assert created.json()["groups"] == ["physics"]
    token = admin.post("/api/v1/tokens", json={"user": "alice", "description": "laptop"}).json()
    assert token["token"].startswith("gvm_")
    alice = server.client(token["token"])
    assert alice.get("/api/v1/whoami").json()["name"] == "alice"
    # The secret is shown once: listings never carry it.
    listed = admin.get("/api/v1/tokens").json()
    assert all("token" not in t for t in listed)
    assert token["token"] not in admin.get("/api/v1/tokens").text


def test_revoked_token_stops_working(server: RunningServer) -> None:
    alice = make_user(server, "alice")
    made = alice.post("/api/v1/tokens", json={"description": "temp"}).json()
    temp = server.client(made["token"])
    assert temp.get("/api/v1/whoami").status_code == 200
    assert alice.delete(f"/api/v1/tokens/{made['id']}").status_code == 204
    assert temp.get("/api/v1/whoami").status_code == 401


def test_users_cannot_do_admin_things(server: RunningServer) -> None:
    alice = make_user(server, "alice")
    response = alice.post("/api/v1/groups", json={"name": "mine"})
    assert response.status_code == 403
    assert response.json()["hint"]
    assert alice.post("/api/v1/tokens", json={"user": "admin"}).status_code == 403


def test_duplicate_and_bad_names_are_clear_errors(server: RunningServer) -> None:
    admin = server.client()
    admin.post("/api/v1/groups", json={"name": "physics"})
    again = admin.post("/api/v1/groups", json={"name": "physics"})
    assert again.status_code == 409
    bad = admin.post("/api/v1/users", json={"name": "../etc", "group": "physics"})
    assert bad.status_code == 422
    missing = admin.post("/api/v1/users", json={"name": "bob", "group": "nope"})
    assert missing.status_code == 404
    assert "gridvm group create nope" in missing.json()["hint"]
