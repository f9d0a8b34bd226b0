from __future__ import annotations

from typing import Any

import httpx

from tests.servers import RunningServer


def test_health_needs_no_token(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/api/v1/health").json() == {"status": "ok"}


def _fill(path: str, operation: dict[str, Any]) -> str:
    """The path with each parameter filled: its first allowed value, else its name."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            schema = parameter.get("schema", {})
            value = schema.get("enum", [parameter["name"]])[0]
            path = path.replace("{" + parameter["name"] + "}", str(value))
    return path


def test_every_other_endpoint_needs_a_token(server: RunningServer) -> None:
    spec = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    checked = 0
    for path, methods in spec["paths"].items():
        if path == "/api/v1/health":
            continue
        for method, operation in methods.items():
            url = server.url + _fill(path, operation)
            response = httpx.request(method.upper(), url, params={"name": "x", "offset": 0})
            if path.startswith("/api/v1/public/"):
                # Served without a token only when the site publishes its image list.
                assert response.status_code == 404, (method, path, response.status_code)
                continue
            assert response.status_code == 401, (method, path, response.status_code)
            if method != "head":  # a HEAD answer has no body
                assert response.json()["error"] == "unauthorized"
            checked += 1
    assert checked > 20


def test_wrong_token_is_refused_with_json(server: RunningServer) -> None:
    response = server.client("gvm_not-a-real-token").get("/api/v1/vms")
    assert response.status_code == 401
    body = response.json()
    assert body["message"] == "the API token is not valid"
    assert response.headers["www-authenticate"] == "Bearer"


def test_admin_token_file_is_private(server: RunningServer) -> None:
    mode = (server.data_dir / "admin.token").stat().st_mode & 0o777
    assert mode == 0o600


def test_agent_token_cannot_use_the_user_api_for_admin_things(server: RunningServer) -> None:
    agent = server.client(server.agent_token)
    assert agent.post("/api/v1/groups", json={"name": "x"}).status_code == 403


def test_user_token_cannot_act_as_an_agent(server: RunningServer) -> None:
    response = server.client().post("/api/v1/agent/sync", json={"host": "x"})
    assert response.status_code == 403
    assert "agent" in response.json()["message"]


def test_agent_tokens_do_not_work_on_the_user_api(server: RunningServer) -> None:
    agent = server.client(server.agent_token)
    for method, path in [
        ("GET", "/api/v1/vms"),
        ("POST", "/api/v1/tokens"),
        ("GET", "/api/v1/images"),
    ]:
        response = agent.request(method, path, json={})
        assert response.status_code == 403, (method, path)
        assert "agent tokens only work on /api/v1/agent" in response.json()["message"]


def test_an_agent_token_speaks_for_one_host_only(server: RunningServer) -> None:
    from tests.api.helpers import register_host

    node1 = register_host(server, "node1")
    register_host(server, "node2")
    body = {
        "name": "node2",
        "address": "x",
        "arch": "x86_64",
        "accelerator": "tcg",
        "cores": 1,
        "memory_mb": 512,
        "disk_bytes": 1,
    }
    taken = node1.post("/api/v1/agent/register", json=body)
    assert taken.status_code == 403
    assert "not for host 'node2'" in taken.json()["message"]
    assert node1.post("/api/v1/agent/sync", json={"host": "node2"}).status_code == 403
    assert node1.post("/api/v1/agent/sync", json={"host": "node1"}).status_code == 200
