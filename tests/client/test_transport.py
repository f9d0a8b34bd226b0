"""How the SDK turns HTTP failures into errors people can act on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from gridvm.client import (
    ApiError,
    Client,
    NotFoundError,
    ProtocolError,
    ServerError,
    ServerUnreachable,
    TransferError,
)
from tests.servers import free_port


def mock_client(handler: httpx.MockTransport) -> Client:
    return Client("http://gridvm.test", "gvm_token", transport=handler)


def test_an_unreachable_server_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "gvm_token", timeout=5) as gv, pytest.raises(ServerUnreachable) as caught:
        gv.whoami()
    assert isinstance(caught.value, ApiError)
    assert caught.value.status is None
    assert str(caught.value).startswith(f"cannot reach gridvm at {url}: ")
    assert "is the server running?" in str(caught.value)
    assert "make up" in str(caught.value)


def test_error_bodies_become_typed_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer gvm_token"
        body = {"error": "not_found", "message": "no image 'x'", "hint": "see gridvm image list"}
        return httpx.Response(404, json=body)

    with mock_client(httpx.MockTransport(handler)) as gv, pytest.raises(NotFoundError) as caught:
        gv.images.get("x")
    error = caught.value
    assert (error.status, error.code, error.message, error.hint) == (
        404,
        "not_found",
        "no image 'x'",
        "see gridvm image list",
    )
    assert str(error) == "no image 'x' (see gridvm image list)"


def test_a_non_json_error_page_is_described() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html><body>Bad Gateway</body></html>")

    with mock_client(httpx.MockTransport(handler)) as gv, pytest.raises(ServerError) as caught:
        gv.hosts.list()
    assert caught.value.status == 502
    assert "502 Bad Gateway to GET /api/v1/hosts" in caught.value.message
    assert "proxy" in (caught.value.hint or "")


def test_an_answer_of_the_wrong_shape_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"name": "admin"})

    with mock_client(httpx.MockTransport(handler)) as gv, pytest.raises(ProtocolError) as caught:
        gv.whoami()
    assert "unexpected answer from gridvm to GET /api/v1/whoami" in caught.value.message


def test_query_parameters_are_sent_as_the_api_spells_them() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=[])

    with mock_client(httpx.MockTransport(handler)) as gv:
        assert gv.vms.list(state="pending", all=True) == []
        assert gv.vms.list() == []
    assert seen[0].params == httpx.QueryParams({"state": "pending", "all": "true"})
    assert seen[1].params == httpx.QueryParams({})


def test_a_damaged_download_keeps_the_old_file_and_leaves_no_part(tmp_path: Path) -> None:
    image = {
        "id": "img-1",
        "name": "base",
        "owner": "admin",
        "group": None,
        "visibility": "private",
        "trust": "user",
        "digest": "sha256:" + hashlib.sha256(b"good data").hexdigest(),
        "format": "qcow2",
        "uploaded_format": "qcow2",
        "size": 9,
        "virtual_size": 64,
        "boot_mode": "disk",
        "kernel_cmdline": None,
        "os": None,
        "min_memory_mb": 64,
        "created_at": "2024-01-01T00:00:00Z",
        "in_use_by": 0,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=b"bad  data")
        return httpx.Response(200, json=image)

    dest = tmp_path / "base.qcow2"
    dest.write_bytes(b"old")
    with mock_client(httpx.MockTransport(handler)) as gv, pytest.raises(TransferError) as caught:
        gv.images.download("base", dest)
    assert "is damaged" in caught.value.message
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["base.qcow2"]
