"""``gridvm egress ...``: the site's zone whitelists changed at run time, and ``gridvm host``
saying whether each host has applied them."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import eventually
from tests.cli.conftest import Cli
from tests.cli.test_hosts import register_host


def test_add_list_remove(cli: Cli) -> None:
    assert "no site whitelist entries" in cli.ok("egress", "list").stderr
    added = cli.ok("egress", "add", "dmz", "192.0.2.10:443", "--note", "licence server").stdout
    assert "added 192.0.2.10:443 to the dmz zone's whitelist (egr-" in added
    listing = cli.ok("egress", "list")
    assert "192.0.2.10:443" in listing.stdout and "licence server" in listing.stdout
    assert "admin" in listing.stdout and "digest " in listing.stdout

    rules = cli.json("egress", "list")["rules"]
    assert [(r["zone"], r["entry"], r["source"]) for r in rules] == [
        ("dmz", "192.0.2.10:443", "admin")
    ]
    removed = cli.ok("egress", "remove", rules[0]["id"]).stdout
    assert "removed 192.0.2.10:443 from the dmz zone's whitelist" in removed
    assert cli.json("egress", "list")["rules"] == []


def test_bad_input_says_what_is_wrong(cli: Cli) -> None:
    assert "opens the whole internet" in cli.fails("egress", "add", "dmz", "0.0.0.0/0:443")
    assert "not of the form ADDRESS:PORT" in cli.fails("egress", "add", "dmz", "192.0.2.10")
    cli.ok("egress", "add", "dmz", "192.0.2.10:443")
    assert "already in the dmz zone's whitelist" in cli.fails(
        "egress", "add", "dmz", "192.0.2.10:443"
    )
    assert "no site egress rule 'egr-nope'" in cli.fails("egress", "remove", "egr-nope")
    bad_zone = cli("egress", "add", "lab", "192.0.2.10:443")
    assert bad_zone.exit_code != 0 and "lab" in bad_zone.output


def test_only_admins(cli: Cli) -> None:
    cli.ok("group", "create", "physics")
    cli.ok("user", "create", "alice", "--group", "physics")
    token = cli.ok("token", "create", "--user", "alice").stdout.strip()
    assert "admin" in cli.fails("egress", "add", "dmz", "192.0.2.10:443", token=token)
    assert "admin" in cli.fails("egress", "list", token=token)


def test_host_show_says_whether_the_whitelist_is_applied(cli: Cli) -> None:
    register_host(cli, "node1")
    assert "not reported" in cli.ok("host", "show", "node1").stdout
    with cli.server.client(cli.server.agent_token) as agent:
        sync = {"host": "node1", "vms": []}
        digest = agent.post("/api/v1/agent/sync", json=sync).json()["zone_egress_digest"]
        agent.post(
            "/api/v1/agent/sync", json={**sync, "site_egress_applied": digest}
        ).raise_for_status()
        assert f"current ({digest})" in cli.ok("host", "show", "node1").stdout
        assert "current" in cli.ok("host", "list").stdout
        cli.ok("egress", "add", "trusted", "192.0.2.10:443")
        assert "behind: applied " + digest in cli.ok("host", "show", "node1").stdout
        assert "behind" in cli.ok("host", "list").stdout


def test_vm_show_says_when_its_host_has_not_applied_the_change(cli: Cli, qcow2: Path) -> None:
    cli.ok("image", "upload", str(qcow2), "--name", "base")
    register_host(cli, "node1")
    vm_id = cli.json("vm", "run", "base", "--zone", "dmz")["vms"][0]["id"]
    with cli.server.client(cli.server.agent_token) as agent:
        sync = {"host": "node1", "vms": []}

        def placed() -> str | None:
            answer = agent.post("/api/v1/agent/sync", json=sync).json()
            ids = [a["vm_id"] for a in answer["assignments"]]
            return str(answer["zone_egress_digest"]) if vm_id in ids else None

        digest = eventually(placed)
        applied = {**sync, "site_egress_applied": digest}
        agent.post("/api/v1/agent/sync", json=applied).raise_for_status()
        assert "not applied" not in cli.ok("vm", "show", vm_id).stdout
        cli.ok("egress", "add", "dmz", "192.0.2.10:443")
        shown = cli.ok("vm", "show", vm_id).stdout
        assert "192.0.2.10:443 (site, dmz)" in shown
        assert "its host has not applied the site's latest whitelist yet" in shown
