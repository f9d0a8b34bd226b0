"""``gridvm host ...`` with a host registered through the agent protocol."""

from __future__ import annotations

from gridvm.schemas.agent import HostRegistration
from tests.cli.conftest import Cli


def register_host(cli: Cli, name: str) -> None:
    registration = HostRegistration(
        name=name,
        address="192.0.2.10",
        arch="x86_64",
        accelerator="tcg",
        cores=8,
        memory_mb=16384,
        disk_bytes=100 * 1024**3,
        labels={"rack": "a1"},
    )
    with cli.server.client(cli.server.agent_token) as agent:
        agent.post("/api/v1/agent/register", json=registration.model_dump()).raise_for_status()


def test_list_show_disable_enable(cli: Cli) -> None:
    assert "no hosts" in cli.ok("host", "list").stderr
    register_host(cli, "node1")

    listing = cli.ok("host", "list").stdout
    assert "node1" in listing and "enabled" in listing and "0/8" in listing
    shown = cli.ok("host", "show", "node1").stdout
    assert "192.0.2.10" in shown and "rack=a1" in shown and "tcg" in shown
    assert cli.json("host", "show", "node1")["online"] is True

    assert "is disabled" in cli.ok("host", "disable", "node1").stdout
    assert [h["state"] for h in cli.json("host", "list")] == ["disabled"]
    assert cli.json("host", "enable", "node1")["state"] == "enabled"


def test_unknown_hosts_are_named(cli: Cli) -> None:
    assert cli.fails("host", "show", "h1") == (
        "error: no host 'h1' (see the hosts with: gridvm host list)"
    )
    assert "no host 'h1'" in cli.fails("host", "disable", "h1")
    assert "no host 'h1'" in cli.fails("host", "enable", "h1")


def test_only_admins_drain_hosts(cli: Cli) -> None:
    register_host(cli, "node1")
    cli.ok("group", "create", "physics")
    cli.ok("user", "create", "alice", "--group", "physics")
    token = cli.ok("token", "create", "--user", "alice").stdout.strip()
    assert "admin" in cli.fails("host", "disable", "node1", token=token)
    assert cli.json("host", "show", "node1", token=token)["state"] == "enabled"
