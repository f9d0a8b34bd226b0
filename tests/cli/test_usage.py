"""``gridvm usage``: core-hours per group per hour or day, as a table or JSON."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import assigned, register_host, report, sync
from tests.cli.conftest import Cli
from tests.servers import RunningServer


def test_usage_table_and_json(cli: Cli, server: RunningServer, qcow2: Path) -> None:
    cli.ok("image", "upload", str(qcow2), "--name", "base")
    agent = register_host(server)
    vm = cli.json("vm", "run", "base", "--cpus", "2", "--memory", "128M")["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])

    table = cli.ok("usage", "--days", "2").stdout
    assert "core-hours per hour, last 2 days" in table
    assert "HOUR (UTC)" in table and "TOTAL" in table and "total" in table
    history = cli.json("usage", "--days", "30")
    assert (history["bucket"], len(history["starts"])) == ("day", 30)
    assert [s["group"] for s in history["series"]] == ["admins"]


def test_a_bad_range_fails_clearly(cli: Cli) -> None:
    assert "days must be between 1 and 366" in cli.fails("usage", "--days", "0")
