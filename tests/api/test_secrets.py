from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import assigned, make_qcow2, make_user, register_host, upload
from tests.servers import RunningServer


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    return client


def test_secrets_are_stored_encrypted_and_never_shown_back(
    server: RunningServer, admin: httpx.Client
) -> None:
    made = admin.post(
        "/api/v1/secrets", params={"name": "grid-proxy"}, content=b"-----BEGIN PROXY----- s3cr3t"
    )
    assert made.status_code == 201
    assert made.json() == {
        "name": "grid-proxy",
        "size": 28,
        "created_at": made.json()["created_at"],
    }
    assert b"s3cr3t" not in admin.get("/api/v1/secrets").content
    key = (server.data_dir / "secrets.key").stat()
    assert key.st_mode & 0o777 == 0o600
    # Not in the database in clear.
    database = (
        (server.data_dir / "gridvm.db").read_bytes()
        if (server.data_dir / "gridvm.db").exists()
        else b""
    )
    assert b"s3cr3t" not in database
    assert admin.delete("/api/v1/secrets/grid-proxy").status_code == 204
    assert admin.get("/api/v1/secrets").json() == []


def test_bad_secrets_are_refused(server: RunningServer, admin: httpx.Client) -> None:
    assert admin.post("/api/v1/secrets", params={"name": "x"}, content=b"").status_code == 422
    assert admin.post("/api/v1/secrets", params={"name": "../x"}, content=b"v").status_code == 422
    assert (
        admin.post("/api/v1/secrets", params={"name": "big"}, content=b"x" * 70000).status_code
        == 413
    )
    admin.post("/api/v1/secrets", params={"name": "dup"}, content=b"1")
    assert admin.post("/api/v1/secrets", params={"name": "dup"}, content=b"2").status_code == 409


def test_unknown_or_another_users_secret_starts_nothing(
    server: RunningServer, admin: httpx.Client
) -> None:
    bob = make_user(server, "bob")
    bob.post("/api/v1/secrets", params={"name": "bobs"}, content=b"his")
    for name in ("nope", "bobs"):
        response = admin.post("/api/v1/vms", json={"image": "base", "secrets": [name]})
        assert response.status_code == 404
        assert f"no secret named '{name}'" in response.json()["message"]
    assert admin.get("/api/v1/vms").json() == []


@pytest.mark.parametrize("path", ["relative.txt", "/proc/x", "/a/../etc/passwd", "/"])
def test_files_must_go_to_a_sane_place(
    server: RunningServer, admin: httpx.Client, path: str
) -> None:
    body = {
        "image": "base",
        "files": [{"path": path, "content_b64": base64.b64encode(b"x").decode()}],
    }
    response = admin.post("/api/v1/vms", json=body)
    assert response.status_code == 422
    assert "not a place for a file" in response.json()["message"]


def test_files_above_the_limit_are_refused(server: RunningServer, admin: httpx.Client) -> None:
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    response = admin.post(
        "/api/v1/vms", json={"image": "base", "files": [{"path": "/root/big", "content_b64": big}]}
    )
    assert response.status_code == 422
    assert "more than 1 MiB" in response.json()["message"]


def test_only_the_vms_host_agent_gets_its_secrets(
    server: RunningServer, admin: httpx.Client
) -> None:
    admin.post("/api/v1/secrets", params={"name": "token"}, content=b"t0ken")
    agent = register_host(server)
    other = register_host(server, "node2", cores=1, memory_mb=256)
    files = [{"path": "/root/in.txt", "content_b64": base64.b64encode(b"input").decode()}]
    vm = admin.post(
        "/api/v1/vms", json={"image": "base", "secrets": ["token"], "files": files}
    ).json()["vms"][0]
    assert assigned(agent, vm["id"])["has_launch_files"] is True
    bundle = agent.get(f"/api/v1/agent/vms/{vm['id']}/launch").json()
    assert base64.b64decode(bundle["secrets"]["token"]) == b"t0ken"
    assert bundle["files"] == files
    assert other.get(f"/api/v1/agent/vms/{vm['id']}/launch").status_code == 403
    assert admin.get(f"/api/v1/agent/vms/{vm['id']}/launch").status_code == 403
    # Nothing of it in what users see of the VM.
    assert b"t0ken" not in admin.get(f"/api/v1/vms/{vm['id']}").content
