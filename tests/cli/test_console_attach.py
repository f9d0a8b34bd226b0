"""``gridvm vm console ID --attach`` with input from a pipe, against a host whose serial port
is a unix socket (the agent's relay code, no QEMU)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.helpers import assigned, register_host, report, sync
from tests.cli.conftest import Cli
from tests.consoles import SerialPort, console_host, serial_port
from tests.servers import RunningServer


@pytest.fixture
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SerialPort]:
    with serial_port(tmp_path_factory.mktemp("s") / "serial.sock") as running:
        yield running


def running_vm(cli: Cli, server: RunningServer, qcow2: Path) -> tuple[str, str]:
    """A VM reported running on host node1: its id and node1's agent token."""
    agent = register_host(server)
    cli.ok("image", "upload", str(qcow2), "--name", "base")
    vm = cli.json("vm", "run", "base")["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    return vm["id"], agent.headers["authorization"].removeprefix("Bearer ")


def test_attach_types_the_input_and_prints_the_output(
    cli: Cli, server: RunningServer, qcow2: Path, port: SerialPort
) -> None:
    vm_id, token = running_vm(cli, server, qcow2)
    with console_host(server, token, {vm_id: port.path}):
        result = cli.ok("vm", "console", vm_id, "--attach", "--linger", "0.5", input="echo hi-42\n")
    # The guest's echo of the input, its answer, its next prompt.
    assert result.stdout_bytes == b"# echo hi-42\r\nhi-42\r\n# "
    assert result.stderr == f"Detached from VM {vm_id}.\n"
    assert bytes(port.received) == b"echo hi-42\n"


def test_the_vm_stopping_ends_the_attach_cleanly(
    cli: Cli, server: RunningServer, qcow2: Path, port: SerialPort
) -> None:
    vm_id, token = running_vm(cli, server, qcow2)

    def stop_once_typed() -> None:
        while b"poweroff\n" not in port.received:
            port.client_left.wait(0.05)
        port.hang_up()

    stopper = threading.Thread(target=stop_once_typed, daemon=True)
    stopper.start()
    with console_host(server, token, {vm_id: port.path}):
        # A long linger: the session ends because the VM stops, not because input ended.
        result = cli.ok("vm", "console", vm_id, "--attach", "--linger", "120", input="poweroff\n")
    stopper.join(timeout=10)
    assert result.stdout.startswith("# poweroff")
    assert result.stderr == (
        f"The console of VM {vm_id} closed: the VM's serial port closed (the VM stopped).\n"
    )


def test_attach_refusals_are_one_error_line(cli: Cli, server: RunningServer, qcow2: Path) -> None:
    assert cli.fails("vm", "console", "vm-000000000000", "--attach") == (
        "error: no VM 'vm-000000000000' (see your VMs with: gridvm vm list)"
    )
    cli.ok("image", "upload", str(qcow2), "--name", "base")
    vm_id = cli.json("vm", "run", "base")["vms"][0]["id"]
    assert cli.fails("vm", "console", vm_id, "--attach") == (
        f"error: VM {vm_id} is pending: only a booting, running or suspended VM has a"
        f" console to attach to (its console log: gridvm vm console {vm_id})"
    )
    assert cli.fails("vm", "console", vm_id, "--attach", "--follow") == (
        "error: --attach and --follow do not go together (--attach prints as it comes)"
    )
    result = cli("vm", "console", vm_id, "--attach", "--linger", "-1")
    assert result.exit_code == 2 and "Invalid value for '--linger'" in result.stderr
