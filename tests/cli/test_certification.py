"""``gridvm image certify|revoke|certifications``, officers, and ``vm run --zone``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.conftest import Cli
from tests.inspection_rows import record_inspection, set_certification_expiry, vuln


def _officer_token(cli: Cli) -> str:
    cli.ok("group", "create", "security")
    made = cli.ok("user", "create", "olga", "--group", "security", "--role", "officer")
    assert "created officer olga" in made.stdout
    token: str = cli.json("token", "create", "--user", "olga")["token"]
    return token


def test_certify_show_revoke_and_history(cli: Cli, qcow2: Path) -> None:
    officer = _officer_token(cli)
    image = cli.json("image", "upload", str(qcow2), "--name", "analysis")["id"]

    refused = cli.fails("image", "certify", "analysis", "--reason", "ok", token=officer)
    assert "cannot be certified: its inspection could not read it" in refused

    record_inspection(cli.server, image)
    done = cli.ok(
        "image", "certify", "analysis", "--reason", "reviewed", "--expires", "30d", token=officer
    )
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"is certified until {until}" in done.stdout
    assert f"certified (until {until})" in cli.ok("image", "show", "analysis").stdout

    bad = cli.fails("image", "certify", "analysis", "--reason", "x", "--expires", "soon")
    assert "'soon' is neither a date nor a duration" in bad

    cli.ok("image", "revoke", "analysis", "--reason", "CVE found", token=officer)
    assert "certified (revoked " in cli.ok("image", "list").stdout
    history = cli.ok("image", "certifications", "analysis").stdout
    assert "revoked" in history and "olga" in history and "CVE found" in history

    # A date as expiry; then time passes it.
    cli.ok("image", "certify", "analysis", "--reason", "again", "--expires", until)
    set_certification_expiry(cli.server, image, datetime.now(UTC) - timedelta(days=1))
    expired = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert f"certified (expired {expired})" in cli.ok("image", "show", "analysis").stdout


def test_users_may_not_certify(cli: Cli, qcow2: Path) -> None:
    cli.ok("group", "create", "physics")
    cli.ok("user", "create", "alice", "--group", "physics")
    alice = cli.json("token", "create", "--user", "alice")["token"]
    cli.ok("image", "upload", str(qcow2), "--name", "mine", token=alice)
    refused = cli.fails("image", "certify", "mine", "--reason", "trust me", token=alice)
    assert "needs a security officer" in refused


def test_run_in_a_zone(cli: Cli, qcow2: Path) -> None:
    image = cli.json("image", "upload", str(qcow2), "--name", "base")["id"]
    refused = cli.fails("vm", "run", "base", "--memory", "128M", "--zone", "trusted")
    assert "a user image runs only in the DMZ zone" in refused and "--zone dmz" in refused
    record_inspection(
        cli.server, image, vulns=[vuln("CVE-9", "critical")], worst_severity="critical"
    )
    refused = cli.fails("vm", "run", "base", "--memory", "128M", "--zone", "dmz")
    assert "critical vulnerability" in refused
    record_inspection(cli.server, image)
    vm = cli.json("vm", "run", "base", "--memory", "128M")["vms"][0]
    assert vm["zone"] == "dmz"
    assert "dmz" in cli.ok("vm", "show", vm["id"]).stdout
