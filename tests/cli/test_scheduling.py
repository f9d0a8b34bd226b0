"""Fair share, quotas, reservations, leases and placement wishes from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.helpers import assigned, eventually, register_host, report, sync
from tests.cli.conftest import Cli
from tests.servers import RunningServer


@pytest.fixture
def image(cli: Cli, qcow2: Path) -> str:
    return str(cli.json("image", "upload", str(qcow2), "--name", "base")["id"])


def test_groups_with_shares_and_the_share_tree(cli: Cli) -> None:
    cli.ok("group", "create", "physics", "--shares", "60")
    made = cli.ok("group", "create", "cms", "--parent", "physics", "--shares", "2").stdout
    assert "created group physics/cms (2 shares)" in made
    cli.ok("group", "create", "bio", "--shares", "40")
    assert "now has 5 shares" in cli.ok("group", "set-shares", "cms", "5").stdout
    listed = cli.ok("group", "list").stdout
    assert "physics/cms" in listed
    tree = cli.ok("share").stdout
    assert "fair share (classic, half-life 168h)" in tree
    for row in ("physics", "  cms", "bio"):
        assert row in tree
    groups = {g["group"]: g for g in cli.json("share")["groups"]}
    assert groups["bio"]["factor"] == 1.0
    ratio = groups["physics"]["normalised_share"] / groups["bio"]["normalised_share"]
    assert ratio == pytest.approx(60 / 40)


def test_quotas_set_show_and_remove(cli: Cli, server: RunningServer) -> None:
    cli.ok("group", "create", "physics")
    shown = cli.ok("quota", "set", "--group", "physics", "--cores", "8", "--memory", "8G").stdout
    assert "group physics   0 / 8   0 B / 8 GiB   0 / no limit" in shown
    cli.ok("quota", "set", "--user", "admin", "--vms", "3")
    listed = cli.json("quota", "show")
    assert [(q["kind"], q["name"], q["cores"], q["memory_mb"], q["vms"]) for q in listed] == [
        ("group", "physics", 8, 8192, None),
        ("user", "admin", None, None, 3),
    ]
    assert (
        "removed the quota of group physics" in cli.ok("quota", "rm", "--group", "physics").stdout
    )
    assert [q["kind"] for q in cli.json("quota", "show")] == ["user"]
    stored = cli.ok("quota", "set", "--user", "admin", "--image-storage", "10G", "--images", "5")
    assert "0 B / 10 GiB    0 / 5" in stored.stdout
    quotas = cli.json("quota", "show")
    assert [(q["kind"], q["image_bytes"], q["images"]) for q in quotas] == [
        ("user", 10 * 1024**3, 5)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quota", "set", "--cores", "1"], "name one subject: --user NAME or --group NAME"),
        (["quota", "set", "--user", "a", "--group", "b"], "name one subject"),
        (["quota", "set", "--group", "nope", "--cores", "1"], "no group 'nope'"),
        (["quota", "set", "--group", "physics", "--memory", "lots"], "lots"),
        (["quota", "rm", "--group", "physics"], "group physics has no quota"),
        (["reservation", "create", "--group", "physics", "--cores", "1"], "--end TIME or"),
        (
            ["reservation", "create", "-g", "physics", "--cores", "1", "--start", "Monday",
             "--duration", "1h"],
            "'Monday' is not a time",
        ),
        (
            ["reservation", "create", "-g", "physics", "--cores", "99", "--duration", "1h"],
            "cannot reserve 99 cores: the site has 8",
        ),
    ],
)  # fmt: skip
def test_bad_quota_and_reservation_commands_fail_in_one_line(
    cli: Cli, server: RunningServer, args: list[str], message: str
) -> None:
    cli.ok("group", "create", "physics")
    register_host(server)
    assert message in cli.fails(*args)


def test_reservations_create_list_and_remove(cli: Cli, server: RunningServer) -> None:
    cli.ok("group", "create", "physics")
    register_host(server)
    made = cli.json(
        "reservation", "create", "--group", "physics", "--cores", "4", "--duration", "2h",
        "--host", "node1",
    )  # fmt: skip
    assert (made["cores"], made["hosts"], made["active"]) == (4, ["node1"], True)
    listed = cli.ok("reservation", "list").stdout
    assert made["id"] in listed and "active" in listed and "node1" in listed
    cli.ok("reservation", "rm", made["id"])
    assert cli.json("reservation", "list") == []


def test_placement_wishes_reach_the_deployment(cli: Cli, image: str) -> None:
    made = cli.json(
        "vm", "run", "base", "-n", "2", "--gang", "--affinity", "different-hosts",
        "--require", "site in (a,b)", "--queue-timeout", "2h",
    )  # fmt: skip
    assert (made["gang"], made["affinity"], made["selector"], made["queue_timeout_s"]) == (
        True,
        "different-hosts",
        "site in (a,b)",
        7200,
    )
    shown = cli.ok("deployment", "show", made["id"]).stdout
    assert (
        "gang (all or none); different-hosts; hosts with site in (a,b); queue timeout 2h" in shown
    )
    assert "cannot read the label selector" in cli.fails(
        "vm", "run", "base", "--require", "site =="
    )


def test_vm_extend_lengthens_the_lease(cli: Cli, image: str, server: RunningServer) -> None:
    agent = register_host(server)
    (vm,) = cli.json("vm", "run", "base", "--walltime", "1h")["vms"]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    eventually(lambda: cli.json("vm", "show", vm["id"])["expires_at"])
    out = cli.ok("vm", "extend", vm["id"], "--by", "30m").stdout
    assert "walltime 1h30m" in out
    assert "beyond the site's limit" in cli.fails("vm", "extend", vm["id"], "--by", "30d")


def test_a_waiting_vm_shows_its_priority(cli: Cli, image: str) -> None:
    (vm,) = cli.json("vm", "run", "base")["vms"]
    eventually(lambda: cli.json("vm", "show", vm["id"])["priority"] is not None)
    assert "priority" in cli.ok("vm", "show", vm["id"]).stdout
