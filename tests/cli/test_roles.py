"""Group-context runs from the CLI: --role, and what the guests reported, in vm show."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.helpers import assigned, register_host, report, sync
from tests.cli.conftest import Cli
from tests.servers import RunningServer


@pytest.fixture
def image(cli: Cli, qcow2: Path) -> str:
    return str(cli.json("image", "upload", str(qcow2), "--name", "base")["id"])


def test_roles_make_a_deployment_shown_with_its_roles(cli: Cli, image: str) -> None:
    made = cli.json(
        "vm", "run", "base", "--name", "c",
        "--role", "head:1:provides=nfs,torque",
        "--role", "worker:2:requires=torque",
    )  # fmt: skip
    assert [(vm["name"], vm["role"]) for vm in made["vms"]] == [
        ("c-head-0", "head"),
        ("c-worker-0", "worker"),
        ("c-worker-1", "worker"),
    ]
    shown = cli.ok("deployment", "show", made["id"]).stdout
    assert "head x1 provides nfs,torque; worker x2 requires torque" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "worker:2:requires=torque"], "requires 'torque', which no role provides"),
        (["--role", "head:x"], "cannot read 'x'"),
        (["--role", ":2"], "the role needs a name"),
        (["--role", "head:1:needs=nfs"], "cannot read 'needs=nfs'"),
        (["--role", "a:2", "-n", "3"], "-n 3 does not match the roles, which add up to 2 VMs"),
    ],
)
def test_bad_roles_fail_with_one_line_and_start_nothing(
    cli: Cli, image: str, args: list[str], message: str
) -> None:
    assert message in cli.fails("vm", "run", "base", *args)
    assert cli.json("vm", "list") == []


def test_vm_show_has_what_the_guest_reported(cli: Cli, image: str, server: RunningServer) -> None:
    agent = register_host(server)
    (vm,) = cli.json("vm", "run", "base", "--name", "job")["vms"]
    before = cli.ok("vm", "show", vm["id"]).stdout
    assert "not reported ready" in before
    guest = server.client(assigned(agent, vm["id"])["guest_token"])
    sync(agent, [report(vm, "running")])
    guest.post("/api/v1/guest/ready", json={"ip": "10.0.2.15"})
    guest.post("/api/v1/guest/progress", json={"percent": 75, "message": "fitting"})
    guest.put("/api/v1/guest/data/events", content=b"1200")
    shown = cli.ok("vm", "show", vm["id"]).stdout
    assert "address 10.0.2.15" in shown
    assert "75% fitting" in shown
    assert "events=1200" in shown
