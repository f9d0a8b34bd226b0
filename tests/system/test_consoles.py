"""Attached consoles on a real guest: `gridvm vm console ID --attach` through server and agent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gridvm.client import Client, ConsoleAttachment, ConsoleClosed
from tests.system.cloud import Cloud

pytestmark = pytest.mark.system


def test_attach_runs_a_command_in_a_single_mode_vm_and_the_log_keeps_it(
    cloud: Cloud, tmp_path: Path
) -> None:
    vm = cloud.run(mode="single", name="dev")[0]
    cloud.wait(vm["id"], {"running"})
    # Without user-data, tiny keeps a root shell on its console: wait for its prompt.
    cloud.wait_console(vm["id"], "root@dev:")
    attached = cloud.cli(
        tmp_path,
        "vm",
        "console",
        vm["id"],
        "--attach",
        "--linger",
        "10",
        stdin="echo hi-$((6*7))\n",
    )
    assert attached.exit_code == 0, (attached.stdout, attached.stderr)
    # The shell ran the command (its echo of the line reads hi-$((6*7)), not hi-42).
    assert "hi-42" in attached.stdout
    assert attached.stderr == f"Detached from VM {vm['id']}.\n"
    # What the guest printed while attached is in its console log too.
    log = cloud.wait_console(vm["id"], "hi-42")
    assert "echo hi-$((6*7))" in log
    # Detached, the VM runs on and can be attached again.
    again = cloud.cli(
        tmp_path, "vm", "console", vm["id"], "--attach", "--linger", "10", stdin="hostname\n"
    )
    assert again.exit_code == 0, (again.stdout, again.stderr)
    assert "\ndev\n" in again.stdout
    assert cloud.vm(vm["id"])["state"] == "running"


def test_attach_to_a_vm_that_is_not_running_says_so(cloud: Cloud, tmp_path: Path) -> None:
    vm = cloud.run(user_data="#!/bin/sh\necho bye\n")[0]
    cloud.wait(vm["id"], {"done"})
    refused = cloud.cli(tmp_path, "vm", "console", vm["id"], "--attach")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: VM {vm['id']} is done: only a booting, running or suspended VM has a console"
        f" to attach to (its console log: gridvm vm console {vm['id']})\n"
    )


def read_until(console: ConsoleAttachment, text: bytes, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    seen = b""
    while text not in seen:
        assert time.monotonic() < deadline, seen
        try:
            seen += console.recv(timeout=1)
        except TimeoutError:
            continue
    return seen


def test_an_agent_killed_mid_session_ends_it_and_its_successor_serves_the_next(
    cloud: Cloud,
) -> None:
    vm = cloud.run(mode="single", name="dev")[0]
    cloud.wait(vm["id"], {"running"})
    cloud.wait_console(vm["id"], "root@dev:")
    with Client(cloud.server.url, cloud.server.admin_token) as gv:
        console = gv.vms.attach(vm["id"])
        console.send(b"echo before-$((1+1))\n")
        read_until(console, b"before-2")
        cloud.agent.kill()
        with pytest.raises(ConsoleClosed) as ended:
            read_until(console, b"never")
        assert not ended.value.normal
        assert "the host's end of the console broke off" in ended.value.message
        # The restarted agent re-adopts the VM; QEMU's serial port is free again.
        cloud.agent.start()
        deadline = time.monotonic() + 60
        while "re-adopted VM " + vm["id"] not in cloud.agent.log_text():
            assert time.monotonic() < deadline, cloud.agent.log_text()
            time.sleep(0.2)
        with gv.vms.attach(vm["id"]) as again:
            again.send(b"echo after-$((2+2))\n")
            read_until(again, b"after-4")
    assert cloud.vm(vm["id"])["state"] == "running"
