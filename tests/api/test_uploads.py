"""Resumable uploads through the HTTP API: sessions, chunks at offsets, completion, abort."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx

from gridvm.common.config import SiteLimits
from tests.api.helpers import eventually, make_user, store_files
from tests.client.disks import disk_with_data
from tests.servers import RunningServer, run_server


def _open(client: httpx.Client, name: str, total: int, **extra: str) -> dict[str, object]:
    response = client.post("/api/v1/uploads", json={"name": name, "total_bytes": total, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _send(client: httpx.Client, upload_id: object, offset: int, data: bytes) -> httpx.Response:
    return client.patch(
        f"/api/v1/uploads/{upload_id}", content=data, headers={"Upload-Offset": str(offset)}
    )


def test_chunks_at_offsets_then_complete_make_the_image(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    data = disk_with_data(tmp_path / "d.qcow2").read_bytes()
    session = _open(admin, "chunked", len(data))
    assert (session["received_bytes"], session["total_bytes"]) == (0, len(data))
    third = len(data) // 3
    first = _send(admin, session["id"], 0, data[:third])
    assert first.status_code == 200, first.text
    assert first.json()["received_bytes"] == third
    assert first.headers["Upload-Offset"] == str(third)

    # A chunk at the wrong offset: 409 with where the server is.
    wrong = _send(admin, session["id"], 0, data[:third])
    assert wrong.status_code == 409
    assert wrong.json()["received_bytes"] == third
    assert wrong.headers["Upload-Offset"] == str(third)
    assert f"Upload-Offset: {third}" in wrong.json()["hint"]
    head = admin.head(f"/api/v1/uploads/{session['id']}")
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, str(third))
    assert head.headers["Upload-Length"] == str(len(data))

    early = admin.post(f"/api/v1/uploads/{session['id']}/complete")
    assert early.status_code == 409 and f"from byte {third}" in early.json()["hint"]
    assert _send(admin, session["id"], third, data[third:]).status_code == 200
    done = admin.post(f"/api/v1/uploads/{session['id']}/complete")
    assert done.status_code == 201, done.text
    image = done.json()
    assert (image["name"], image["format"], image["virtual_size"]) == (
        "chunked",
        "qcow2",
        64 * 2**20,
    )
    assert admin.get(f"/api/v1/uploads/{session['id']}").status_code == 404
    assert admin.get("/api/v1/uploads").json() == []
    # The stored image holds what was sent.
    back = tmp_path / "back.qcow2"
    back.write_bytes(admin.get(f"/api/v1/images/{image['id']}/content").content)
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(tmp_path / "d.qcow2"), str(back)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_a_chunk_past_the_declared_size_is_refused_and_leaves_no_trace(
    server: RunningServer,
) -> None:
    admin = server.client()
    session = _open(admin, "small", 10)
    assert _send(admin, session["id"], 0, b"12345").status_code == 200
    over = _send(admin, session["id"], 5, b"too many bytes")
    assert over.status_code == 413
    assert admin.get(f"/api/v1/uploads/{session['id']}").json()["received_bytes"] == 5
    assert _send(admin, session["id"], 5, b"abc").status_code == 200
    bad = admin.patch(
        f"/api/v1/uploads/{session['id']}", content=b"x", headers={"Upload-Offset": "-1"}
    )
    assert bad.status_code == 422


def test_sessions_are_their_owners_only(server: RunningServer) -> None:
    alice = make_user(server, "alice")
    bob = make_user(server, "bob")
    session = _open(alice, "hers", 100)
    for response in (
        bob.get(f"/api/v1/uploads/{session['id']}"),
        _send(bob, session["id"], 0, b"x"),
        bob.post(f"/api/v1/uploads/{session['id']}/complete"),
        bob.delete(f"/api/v1/uploads/{session['id']}"),
        server.client().get(f"/api/v1/uploads/{session['id']}"),  # admins too
    ):
        assert response.status_code == 404
    assert bob.get("/api/v1/uploads").json() == []
    assert [u["id"] for u in alice.get("/api/v1/uploads").json()] == [session["id"]]


def test_abort_leaves_nothing(server: RunningServer) -> None:
    admin = server.client()
    session = _open(admin, "gone", 1000)
    _send(admin, session["id"], 0, b"\0" * 500)
    assert [p.name for p in store_files(server)] == [f"{session['id']}.part"]
    assert admin.delete(f"/api/v1/uploads/{session['id']}").status_code == 204
    assert store_files(server) == []
    assert admin.get(f"/api/v1/uploads/{session['id']}").status_code == 404


def test_completing_a_corrupt_upload_leaves_no_image_and_no_file(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    data = disk_with_data(tmp_path / "d.qcow2").read_bytes()[:300_000]  # cut short: corrupt
    session = _open(admin, "broken", len(data))
    _send(admin, session["id"], 0, data)
    refused = admin.post(f"/api/v1/uploads/{session['id']}/complete")
    assert refused.status_code == 422, refused.text
    assert admin.get("/api/v1/images").json() == []
    assert store_files(server) == []
    assert admin.get(f"/api/v1/uploads/{session['id']}").status_code == 404


def test_declared_sizes_over_the_limit_or_quota_are_refused_at_once(tmp_path: Path) -> None:
    with run_server(tmp_path / "s", limits=SiteLimits(max_upload_bytes=2**30)) as server:
        admin = server.client()
        too_big = admin.post("/api/v1/uploads", json={"name": "big", "total_bytes": 2**31})
        assert too_big.status_code == 413 and "1 GiB" in too_big.json()["hint"]
        alice = make_user(server, "alice")
        quota = admin.put(
            "/api/v1/quotas/user/alice", json={"image_bytes": 100 * 2**20, "images": 5}
        )
        assert quota.status_code == 200, quota.text
        over = alice.post("/api/v1/uploads", json={"name": "big", "total_bytes": 200 * 2**20})
        assert over.status_code == 413
        assert "image storage quota: user alice may store 100 MiB" in over.json()["message"]
        assert alice.get("/api/v1/uploads").json() == []
        assert store_files(server) == []


def test_idle_sessions_are_removed(server: RunningServer) -> None:
    admin = server.client()
    session = _open(admin, "idle", 100)
    _send(admin, session["id"], 0, b"x" * 10)
    uploads = server.services.uploads
    assert uploads.purge_idle(idle=timedelta(days=1), every_s=0) == 0
    assert uploads.purge_idle(idle=timedelta(seconds=-1), every_s=0) == 1
    assert admin.get(f"/api/v1/uploads/{session['id']}").status_code == 404
    assert store_files(server) == []


def test_a_chunk_cut_off_keeps_what_arrived_and_the_upload_goes_on(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    data = disk_with_data(tmp_path / "d.qcow2").read_bytes()
    session = _open(admin, "cut", len(data))
    url = httpx.URL(server.url)
    request = (
        f"PATCH /api/v1/uploads/{session['id']} HTTP/1.1\r\n"
        f"Host: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {server.admin_token}\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port)) as sock:
        sock.sendall(request + data[:100_000])
        time.sleep(0.3)

    def offset() -> int:
        return int(admin.head(f"/api/v1/uploads/{session['id']}").headers["Upload-Offset"])

    received = eventually(offset)
    time.sleep(0.2)
    while offset() != received:  # until the server is done with the cut-off chunk
        received = offset()
        time.sleep(0.2)
    assert 0 < received <= 100_000
    assert _send(admin, session["id"], received, data[received:]).status_code == 200
    done = admin.post(f"/api/v1/uploads/{session['id']}/complete")
    assert done.status_code == 201, done.text
    back = tmp_path / "back.qcow2"
    back.write_bytes(admin.get(f"/api/v1/images/{done.json()['id']}/content").content)
    same = subprocess.run(["qemu-img", "compare", str(tmp_path / "d.qcow2"), str(back)])
    assert same.returncode == 0
