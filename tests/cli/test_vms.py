"""``gridvm vm ...`` and ``gridvm deployment ...`` (no agent: VMs stay pending)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def image(cli: Cli, qcow2: Path) -> str:
    return str(cli.json("image", "upload", str(qcow2), "--name", "base")["id"])


def wait_for_no_host(cli: Cli, vm_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        vm: dict[str, Any] = cli.json("vm", "show", vm_id)
        if "no host" in (vm["pending_reason"] or ""):
            return vm
        assert time.monotonic() < deadline, vm
        time.sleep(0.1)


def test_run_three_vms_then_watch_and_cancel_them(cli: Cli, image: str, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    result = cli.ok(
        "vm",
        "run",
        "base",
        "-n",
        "3",
        "--cpus",
        "1",
        "--memory",
        "256M",
        "--disk",
        "1G",
        "--walltime",
        "10m",
        "--user-data",
        str(script),
        "--name",
        "scan",
    )
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("deployment dep-") and "(scan): 3 VMs of image base" in first_line
    deployment_id = first_line.split()[1]
    vms = cli.json("vm", "list", "--deployment", deployment_id)
    assert [vm["name"] for vm in vms] == ["scan-0", "scan-1", "scan-2"]
    for vm in vms:
        assert vm["id"] in result.stdout
        assert (vm["state"], vm["memory_mb"], vm["disk_gb"], vm["walltime_s"]) == (
            "pending",
            256,
            1,
            600,
        )

    vm = wait_for_no_host(cli, vms[0]["id"])
    shown = cli.ok("vm", "show", vm["id"]).stdout
    assert "pending because" in shown and "no host" in shown
    assert "no host" in cli.ok("vm", "list").stdout
    assert "3 pending" in cli.ok("deployment", "list").stdout
    assert "3 pending" in cli.ok("deployment", "show", deployment_id).stdout
    assert cli.json("deployment", "show", deployment_id)["states"] == {"pending": 3}
    assert cli.ok("vm", "console", vm["id"]).stdout == ""

    result = cli("vm", "stop", vms[0]["id"], "vm-nothing", vms[1]["id"])
    assert result.exit_code == 1
    assert "error: no VM 'vm-nothing'" in result.stderr
    assert f"{vms[0]['id']}: stop requested (now cancelled)" in result.stdout
    assert f"{vms[1]['id']}: stop requested (now cancelled)" in result.stdout
    assert [v["state"] for v in cli.json("vm", "terminate", vms[2]["id"])] == ["cancelled"]
    # --follow ends by itself once the VM has ended.
    assert cli.ok("vm", "console", vms[2]["id"], "--follow", "--poll", "0.1").stdout == ""

    # All ended, but none ended well: the wait reports it and exits 1.
    result = cli("vm", "wait", *(v["id"] for v in vms), "--timeout", "10s")
    assert result.exit_code == 1
    assert "3 of 3 VMs did not end well: 3 cancelled" in result.stderr
    assert cli.json("vm", "list", "--state", "pending") == []


def test_run_json_output_is_the_deployment(cli: Cli, image: str) -> None:
    deployment = cli.json("vm", "run", image, "-n", "2", "--mode", "single")
    assert deployment["count"] == 2 and deployment["states"] == {"pending": 2}
    assert {vm["mode"] for vm in deployment["vms"]} == {"single"}


def test_run_wait_gives_up_at_the_timeout_with_the_reason(cli: Cli, image: str) -> None:
    started = time.monotonic()
    line = cli.fails("vm", "run", "base", "--wait", "--timeout", "1s", "--poll", "0.2")
    assert time.monotonic() - started < 10
    assert "1 of 1 VMs did not end within 1s" in line and "1 pending" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vm", "run", "nothing"], "error: no image 'nothing'"),
        (["vm", "run", "base", "-n", "0"], "error: cannot start 0 VMs in one request"),
        (["vm", "run", "base", "--memory", "10T"], "MiB of memory is outside the site's limit"),
        (["vm", "run", "base", "--memory", "lots"], "'lots' is not a size"),
        (["vm", "run", "base", "--disk", "1.5G"], "not a whole number of GiB"),
        (["vm", "run", "base", "--walltime", "soon"], "'soon' is not a duration"),
        (["vm", "run", "base", "--user-data", "/nonexistent/x"], "No such file or directory"),
        (["vm", "show", "vm-nothing"], "error: no VM 'vm-nothing'"),
        (["deployment", "show", "dep-nothing"], "error: no deployment 'dep-nothing'"),
        (["vm", "start", "vm-nothing"], "error: no VM 'vm-nothing'"),
    ],
)
def test_bad_requests_fail_with_one_clear_line(
    cli: Cli, image: str, args: list[str], message: str
) -> None:
    assert message in cli.fails(*args)
    assert cli.json("vm", "list") == []


def test_json_listings_parse(cli: Cli, image: str) -> None:
    assert cli.json("vm", "list", "--all") == []
    assert cli.json("deployment", "list", "--all") == []
    assert cli.json("host", "list") == []
    assert cli.ok("vm", "list").stderr.strip() == "no VMs"


def test_run_pins_a_version_or_follows_the_latest_and_show_says_which(
    cli: Cli, image: str, qcow2: Path
) -> None:
    newer = cli.json("image", "upload", str(qcow2), "--name", "base")
    assert newer["version"] == 2
    pinned = cli.json("vm", "run", "base:1", "--memory", "256M")["vms"][0]
    latest = cli.json("vm", "run", "base", "--memory", "256M")["vms"][0]
    assert (pinned["image"], pinned["image_version"]) == (image, 1)
    assert (latest["image"], latest["image_version"]) == (newer["id"], 2)
    assert f"base:1 ({image})" in cli.ok("vm", "show", pinned["id"]).stdout
    assert f"base:2 ({newer['id']})" in cli.ok("vm", "show", latest["id"]).stdout


def test_run_allow_egress_and_show_lists_the_effective_rules(cli: Cli, image: str) -> None:
    deployment = cli.json(
        "vm", "run", image, "--allow-egress", "192.0.2.10:443", "--allow-egress", "localhost:53/udp"
    )
    vm_id = deployment["vms"][0]["id"]
    shown = cli.ok("vm", "show", vm_id).stdout
    assert "127.0.0.1:53/udp (VM), 192.0.2.10:443 (VM)" in shown
    line = cli.fails("vm", "run", image, "--allow-egress", "0.0.0.0/0:443")
    assert "opens the whole internet" in line
    line = cli.fails("vm", "run", image, "--allow-egress", "no-such-host.invalid:80")
    assert "the name 'no-such-host.invalid' has no IPv4 address" in line


def test_vm_list_pages_and_takes_several_states(cli: Cli, image: str) -> None:
    cli.ok("vm", "run", "base", "-n", "4", "--memory", "128M", "--name", "scan")
    first = cli.json("vm", "list", "--limit", "2", "--offset", "1")
    assert [vm["name"] for vm in first] == ["scan-1", "scan-2"]
    shown = cli.ok("vm", "list", "--limit", "2", "--offset", "1")
    assert "VMs 2-3 of 4" in shown.stderr
    cli.ok("vm", "stop", first[0]["id"])  # pending: cancelled
    both = cli.json("vm", "list", "--state", "pending", "--state", "cancelled")
    assert len(both) == 4
    assert [vm["name"] for vm in cli.json("vm", "list", "-s", "cancelled")] == ["scan-1"]
    refused = cli("vm", "list", "--limit", "0")
    assert refused.exit_code != 0 and "--limit" in refused.output


def test_vm_runs_lists_each_run_and_show_counts_them(cli: Cli, image: str) -> None:
    from tests.api.helpers import assigned, eventually, register_host, report, sync

    vm = cli.json("vm", "run", "base", "--mode", "single", "--memory", "256M")["vms"][0]
    assert cli.ok("vm", "runs", vm["id"]).stderr.strip() == f"VM {vm['id']} has not run yet"
    agent = register_host(cli.server)
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    cli.ok("vm", "stop", vm["id"])
    sync(agent, [report(vm, "stopped", "stopped")])
    cli.ok("vm", "start", vm["id"])
    eventually(lambda: assigned(agent, vm["id"])["desired"] == "running")
    sync(agent, [{**report(vm, "running"), "boot": 2}])

    table = cli.ok("vm", "runs", vm["id"]).stdout
    assert all(column in table for column in ("HOST", "STARTED", "ENDED", "END STATE"))
    first, second = [line.split() for line in table.splitlines() if "node1" in line]
    assert (first[0], first[-1]) == ("1", "stopped")
    assert (second[0], second[-1]) == ("2", "running") and "so far" in " ".join(second)
    listed = cli.json("vm", "runs", vm["id"])
    assert [(r["number"], r["end_state"]) for r in listed] == [(1, "stopped"), (2, None)]
    assert f"2 (list them with: gridvm vm runs {vm['id']})" in cli.ok("vm", "show", vm["id"]).stdout
    assert "no VM 'vm-nosuch'" in cli.fails("vm", "runs", "vm-nosuch")
