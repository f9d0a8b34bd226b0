"""Small helpers for API tests: make images, users and hosts through the public API."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.servers import RunningServer


def make_qcow2(path: Path, size: str = "64M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def upload(client: httpx.Client, path: Path, name: str, **params: str) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/api/v1/images", params={"name": name, **params}, content=f.read())


def make_user(server: RunningServer, name: str, group: str = "physics") -> httpx.Client:
    admin = server.client()
    if admin.get("/api/v1/groups").json() and group in [
        g["name"] for g in admin.get("/api/v1/groups").json()
    ]:
        pass
    else:
        admin.post("/api/v1/groups", json={"name": group})
    assert admin.post("/api/v1/users", json={"name": name, "group": group}).status_code == 201
    token = admin.post("/api/v1/tokens", json={"user": name}).json()["token"]
    return server.client(token)


def agent_token(server: RunningServer) -> str:
    """A new agent token (each host's agent needs its own: a token binds to one host)."""
    made = server.client().post("/api/v1/tokens", json={"user": "agent"})
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def host_registration(
    name: str = "node1", cores: int = 8, memory_mb: int = 8192, **fields: Any
) -> dict[str, Any]:
    """What an agent sends to register its host (a TCG host with 10 GiB of disk)."""
    return {
        "name": name,
        "address": "127.0.0.1",
        "arch": "x86_64",
        "accelerator": "tcg",
        "cores": cores,
        "memory_mb": memory_mb,
        "disk_bytes": 10 * 2**30,
        **fields,
    }


def register_host(
    server: RunningServer, name: str = "node1", cores: int = 8, memory_mb: int = 8192
) -> httpx.Client:
    agent = server.client(agent_token(server))
    response = agent.post("/api/v1/agent/register", json=host_registration(name, cores, memory_mb))
    assert response.status_code == 200, response.text
    return agent


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def store_files(server: RunningServer) -> list[Path]:
    root = server.data_dir / "images"
    return [p for p in root.rglob("*") if p.is_file()]


# --- playing a host agent by hand (the server's side of the agent protocol) ----------


def sync(agent: httpx.Client, reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    response = agent.post("/api/v1/agent/sync", json={"host": "node1", "vms": reports or []})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def report(
    vm: dict[str, Any], state: str, cause: str | None = None, attempt: int = 1
) -> dict[str, Any]:
    return {"vm_id": vm["id"], "attempt": attempt, "state": state, "cause": cause}


def assigned(agent: httpx.Client, vm_id: str) -> dict[str, Any]:
    return eventually(
        lambda: next((a for a in sync(agent)["assignments"] if a["vm_id"] == vm_id), None)
    )  # type: ignore[no-any-return]


def run_then_stop(user: httpx.Client, agent: httpx.Client, vm: dict[str, Any]) -> None:
    """``agent`` gets ``vm`` and runs it, then ``user`` stops it and the agent reports it
    stopped: a single-mode VM is then stopped, its disk kept on the host."""
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    user.post(f"/api/v1/vms/{vm['id']}/stop")
    sync(agent, [report(vm, "stopped", "stopped")])
