"""The agent's console relay between a real server and a unix socket standing in for QEMU's
serial port; the user's end through the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridvm.client import Client, ConsoleAttachment, ConsoleClosed, ServerError
from tests.api.helpers import assigned, eventually, make_qcow2, register_host, report, sync, upload
from tests.consoles import SerialPort, console_host, serial_port
from tests.servers import RunningServer


@pytest.fixture
def gv(server: RunningServer) -> Iterator[Client]:
    with Client(server.url, server.admin_token) as client:
        yield client


@pytest.fixture
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SerialPort]:
    # A short path: unix socket paths hold at most 107 bytes.
    with serial_port(tmp_path_factory.mktemp("s") / "serial.sock") as running:
        yield running


def running_vm(server: RunningServer, tmp_path: Path) -> tuple[str, httpx.Client]:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    return vm["id"], agent


def token_of(client: httpx.Client) -> str:
    return client.headers["authorization"].removeprefix("Bearer ")


def read_until(console: ConsoleAttachment, text: bytes) -> bytes:
    seen = b""
    while text not in seen:
        seen += console.recv(timeout=10)
    return seen


def test_the_relay_joins_the_users_console_to_the_serial_port(
    server: RunningServer, tmp_path: Path, gv: Client, port: SerialPort
) -> None:
    vm_id, agent = running_vm(server, tmp_path)
    with console_host(server, token_of(agent), {vm_id: port.path}) as relays:
        console = gv.vms.attach(vm_id)
        assert read_until(console, b"# ") == b"# "
        console.send(b"echo hi-42\n")
        assert b"hi-42\r\n# " in read_until(console, b"hi-42\r\n# ")
        assert bytes(port.received) == b"echo hi-42\n"
        assert len(relays.active()) == 1
        # Detaching lets go of the serial port (QEMU can take the next client).
        console.close()
        assert port.client_left.wait(10)
        eventually(lambda: relays.active() == [])
        # ... and the VM can be attached again.
        with gv.vms.attach(vm_id) as again:
            assert read_until(again, b"# ") == b"# "
        assert port.clients == 2


def test_the_vm_stopping_ends_the_session(
    server: RunningServer, tmp_path: Path, gv: Client, port: SerialPort
) -> None:
    vm_id, agent = running_vm(server, tmp_path)
    with console_host(server, token_of(agent), {vm_id: port.path}) as relays:
        console = gv.vms.attach(vm_id)
        read_until(console, b"# ")
        port.hang_up()
        with pytest.raises(ConsoleClosed) as ended:
            read_until(console, b"never")
        assert ended.value.normal
        assert ended.value.message == (
            f"the console of VM {vm_id} closed: the VM's serial port closed (the VM stopped)"
        )
        eventually(lambda: relays.active() == [])


def test_a_stopping_agent_closes_its_sessions(
    server: RunningServer, tmp_path: Path, gv: Client, port: SerialPort
) -> None:
    vm_id, agent = running_vm(server, tmp_path)
    with console_host(server, token_of(agent), {vm_id: port.path}) as relays:
        console = gv.vms.attach(vm_id)
        read_until(console, b"# ")
        relays.close_all()
        with pytest.raises(ConsoleClosed) as ended:
            read_until(console, b"never")
        assert ended.value.normal
        assert ended.value.message.endswith("closed: the host's agent is stopping")
        assert port.client_left.wait(10)


def test_no_serial_port_on_the_host_refuses_the_attach(
    server: RunningServer, tmp_path: Path, gv: Client
) -> None:
    vm_id, agent = running_vm(server, tmp_path)
    missing = tmp_path / "gone.sock"
    with console_host(server, token_of(agent), {vm_id: missing}):
        with pytest.raises(ServerError) as refused:
            gv.vms.attach(vm_id)
        assert (refused.value.status, refused.value.code) == (502, "host_error")
        assert refused.value.message == (
            f"cannot open the serial port of VM {vm_id}: No such file or directory"
        )
    # A VM the host does not run (the agent has no serial port for it).
    with console_host(server, token_of(agent), {}):
        with pytest.raises(ServerError) as refused:
            gv.vms.attach(vm_id)
        assert refused.value.message == f"VM {vm_id} is not running on this host"


def test_large_input_arrives_whole_and_in_order(
    server: RunningServer, tmp_path: Path, gv: Client, port: SerialPort
) -> None:
    vm_id, agent = running_vm(server, tmp_path)
    # More than one websocket message holds: the SDK splits it.
    lines = b"".join(b"echo line-%d\n" % i for i in range(6000))
    assert len(lines) > 64 * 1024
    with console_host(server, token_of(agent), {vm_id: port.path}), gv.vms.attach(vm_id) as console:
        console.send(lines)
        # The guest echoes what it gets, then answers each line: the last answer comes last.
        assert read_until(console, b"line-5999\r\n# ").endswith(b"# line-5999\r\n# ")
    assert bytes(port.received) == lines
