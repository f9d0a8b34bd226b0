"""Attached consoles through the API: the user's websocket, and a test playing the host agent
over the agent protocol (sync answer, agent websocket, bytes both ways)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.api.helpers import (
    assigned,
    eventually,
    make_qcow2,
    make_user,
    register_host,
    report,
    sync,
    upload,
)
from tests.servers import RunningServer, run_server


def ws_url(server: RunningServer, path: str) -> str:
    return "ws" + server.url.removeprefix("http") + "/api/v1" + path


def open_ws(server: RunningServer, path: str, token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(ws_url(server, path), additional_headers=headers, open_timeout=30, legacy=True)


def attach(server: RunningServer, vm_id: str, token: str | None) -> ClientConnection:
    return open_ws(server, f"/vms/{vm_id}/console/attach", token)


def refused(server: RunningServer, vm_id: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a refused attach handshake."""
    with pytest.raises(InvalidStatus) as caught:
        attach(server, vm_id, token).close()
    response = caught.value.response
    body: dict[str, Any] = json.loads(response.body or b"{}")
    return response.status_code, body


def closed(ws: ClientConnection) -> tuple[int, str]:
    """Read until ``ws`` closes: its close code and reason."""
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            ws.recv(timeout=10)
    frame = caught.value.rcvd
    assert frame is not None
    return frame.code, frame.reason


def token_of(client: httpx.Client) -> str:
    return client.headers["authorization"].removeprefix("Bearer ")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def running_vm(
    server: RunningServer, tmp_path: Path, owner: httpx.Client
) -> tuple[str, httpx.Client]:
    """A VM of ``owner`` reported running on host node1; returns its id and node1's agent."""
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    agent = register_host(server)
    vm = owner.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    assert owner.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "running"
    return vm["id"], agent


def session_order(agent: httpx.Client, vm_id: str) -> dict[str, str]:
    """The console session the server asks node1's agent to open for ``vm_id``."""
    return eventually(  # type: ignore[no-any-return]
        lambda: next((o for o in sync(agent)["console_sessions"] if o["vm_id"] == vm_id), None)
    )


def agent_joins(
    server: RunningServer, agent: httpx.Client, vm_id: str, ready: bool = True
) -> ClientConnection:
    """Open the agent's end of the session for ``vm_id``, as an agent would."""
    return join(server, agent, session_order(agent, vm_id), ready)


def join(
    server: RunningServer, agent: httpx.Client, order: dict[str, str], ready: bool = True
) -> ClientConnection:
    ws = open_ws(server, f"/agent/console-sessions/{order['session_id']}", token_of(agent))
    hello: dict[str, Any] = {"ready": ready}
    if not ready:
        hello["message"] = f"no serial port for VM {order['vm_id']} here"
    ws.send(json.dumps(hello))
    return ws


def test_attach_needs_a_user_token(server: RunningServer, tmp_path: Path) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    status, body = refused(server, vm_id, None)
    assert (status, body["error"]) == (401, "unauthorized")
    assert "no API token" in body["message"]
    status, body = refused(server, vm_id, "gvm_not-a-real-token")
    assert (status, body["message"]) == (401, "the API token is not valid")
    status, body = refused(server, vm_id, token_of(agent))
    assert (status, body["error"]) == (403, "forbidden")
    assert "agent tokens only work on /api/v1/agent" in body["message"]


def test_attach_to_an_unknown_vm_or_another_users_vm(server: RunningServer, tmp_path: Path) -> None:
    alice = make_user(server, "alice")
    bob = make_user(server, "bob")
    vm_id, _ = running_vm(server, tmp_path, alice)
    status, body = refused(server, "vm-000000000000", token_of(alice))
    assert (status, body["message"]) == (404, "no VM 'vm-000000000000'")
    # Bob cannot even see Alice's VM: the same answer as for no VM at all.
    status, body = refused(server, vm_id, token_of(bob))
    assert (status, body["message"]) == (404, f"no VM {vm_id!r}")


def test_attach_to_a_vm_that_is_not_running(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    status, body = refused(server, vm["id"], server.admin_token)
    assert (status, body["error"]) == (409, "conflict")
    assert body["message"] == (
        f"VM {vm['id']} is pending: only a booting, running or suspended VM"
        " has a console to attach to"
    )
    assert body["hint"] == f"its console log: gridvm vm console {vm['id']}"


def test_the_server_pairs_the_user_with_the_vms_host_and_relays_bytes(
    server: RunningServer, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    # The handshake completes only once the host's agent has joined.
    user_side: Future[ClientConnection] = pool.submit(attach, server, vm_id, server.admin_token)
    host_side = agent_joins(server, agent, vm_id)
    user = user_side.result(timeout=30)
    # Once joined, the session is no longer offered to the agent.
    assert sync(agent)["console_sessions"] == []

    user.send(b"echo hi\n")
    assert host_side.recv(timeout=10) == b"echo hi\n"
    host_side.send(b"hi\r\n# ")
    assert user.recv(timeout=10) == b"hi\r\n# "

    # One attached console per VM: a second attach is refused while this one lasts.
    status, body = refused(server, vm_id, server.admin_token)
    assert (status, body["error"]) == (409, "conflict")
    assert body["message"] == f"VM {vm_id} has a console attached already (by admin)"

    # The user detaches: the host's end is closed too, and the VM can be attached again.
    user.close()
    assert closed(host_side) == (1000, "the user detached")
    again: Future[ClientConnection] = pool.submit(attach, server, vm_id, server.admin_token)
    host_again = agent_joins(server, agent, vm_id)
    user_again = again.result(timeout=30)
    # The VM stops: the agent closes its end, and the user learns why.
    host_again.close(1000, "the VM's serial port closed (the VM stopped)")
    assert closed(user_again) == (1000, "the VM's serial port closed (the VM stopped)")


def test_a_host_end_that_breaks_off_tells_the_user(
    server: RunningServer, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    user_side = pool.submit(attach, server, vm_id, server.admin_token)
    host_side = agent_joins(server, agent, vm_id)
    user = user_side.result(timeout=30)
    # The agent's connection drops without a close frame (the agent was killed).
    host_side.socket.shutdown(socket.SHUT_RDWR)
    host_side.socket.close()
    code, reason = closed(user)
    assert code == 4502 and reason.startswith("the host's end of the console broke off (code")


def test_a_host_that_cannot_open_the_serial_port_refuses_the_attach(
    server: RunningServer, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    user_side = pool.submit(refused, server, vm_id, server.admin_token)
    host_side = agent_joins(server, agent, vm_id, ready=False)
    status, body = user_side.result(timeout=30)
    assert (status, body["error"]) == (502, "host_error")
    assert body["message"] == f"no serial port for VM {vm_id} here"
    closed(host_side)


def test_only_the_vms_host_may_open_its_session_and_only_once(
    server: RunningServer, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    other = register_host(server, "node2")
    user_side = pool.submit(attach, server, vm_id, server.admin_token)
    order = session_order(agent, vm_id)
    path = f"/agent/console-sessions/{order['session_id']}"
    for token, status, message in [
        (server.admin_token, 403, "this endpoint is for host agents"),
        (token_of(other), 403, "this agent token is not for host 'node1'"),
    ]:
        with pytest.raises(InvalidStatus) as caught:
            open_ws(server, path, token)
        assert caught.value.response.status_code == status
        assert json.loads(caught.value.response.body or b"{}")["message"] == message
    with pytest.raises(InvalidStatus) as caught:
        open_ws(server, "/agent/console-sessions/con-unknown", token_of(agent))
    assert caught.value.response.status_code == 404
    host_side = join(server, agent, order)
    with pytest.raises(InvalidStatus) as caught:
        open_ws(server, path, token_of(agent))
    assert caught.value.response.status_code == 409
    user = user_side.result(timeout=30)
    user.close()
    closed(host_side)


def test_messages_above_the_limit_end_the_session(
    server: RunningServer, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    user_side = pool.submit(attach, server, vm_id, server.admin_token)
    host_side = agent_joins(server, agent, vm_id)
    user = user_side.result(timeout=30)
    user.send(b"x" * (64 * 1024 + 1))
    assert closed(user) == (1009, "console messages are at most 64 KiB")
    assert closed(host_side) == (1000, "the user detached")


def test_a_host_whose_agent_never_comes_times_out(tmp_path: Path) -> None:
    with run_server(tmp_path / "server", console_agent_timeout_s=0.5) as server:
        vm_id, agent = running_vm(server, tmp_path, server.client())
        status, body = refused(server, vm_id, server.admin_token)
        assert (status, body["error"]) == (504, "host_timeout")
        assert body["message"] == (
            f"the host of VM {vm_id} (node1) did not open the console within 0.5 s"
        )
        # The session is gone: not offered to the agent any more, and the VM can be
        # attached again.
        assert sync(agent)["console_sessions"] == []
        assert refused(server, vm_id, server.admin_token)[0] == 504


def test_an_agent_that_leaves_or_mumbles_before_its_greeting_refuses_the_attach(
    server: RunningServer, tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    vm_id, agent = running_vm(server, tmp_path, server.client())
    for greet, message in [
        (None, "the host's agent left before it had the serial port"),
        (b"\x00", "the host's agent sent no valid greeting (expected a text message)"),
        ("hello", "the host's agent sent no valid greeting (not a console greeting)"),
    ]:
        user_side = pool.submit(refused, server, vm_id, server.admin_token)
        order = session_order(agent, vm_id)
        host_side = open_ws(
            server, f"/agent/console-sessions/{order['session_id']}", token_of(agent)
        )
        if greet is not None:
            host_side.send(greet)
        host_side.close()
        status, body = user_side.result(timeout=30)
        assert (status, body["message"]) == (502, message)
