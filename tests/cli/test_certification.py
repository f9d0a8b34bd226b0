"""``gridvm image certify|revoke|certifications``, officers, and ``vm run --zone``.

The images are real disks, inspected and scanned by the server at upload against the
project's OSV feed (see tests/scanned_disks.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.certification_time import set_certification_expiry
from tests.cli.conftest import Cli
from tests.scanned_disks import clean_debian, old_glibc_debian


def _officer_token(cli: Cli) -> str:
    cli.ok("group", "create", "security")
    made = cli.ok("user", "create", "olga", "--group", "security", "--role", "officer")
    assert "created officer olga" in made.stdout
    token: str = cli.json("token", "create", "--user", "olga")["token"]
    return token


def test_certify_show_revoke_and_history(scanned_cli: Cli, qcow2: Path, tmp_path: Path) -> None:
    cli = scanned_cli
    officer = _officer_token(cli)
    cli.ok("image", "upload", str(qcow2), "--name", "blank")  # no file system to read

    refused = cli.fails("image", "certify", "blank", "--reason", "ok", token=officer)
    assert "cannot be certified: its inspection could not read it" in refused

    disk = clean_debian(tmp_path, "analysis")
    image = cli.json("image", "upload", str(disk), "--name", "analysis")["id"]
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


def test_run_in_a_zone(scanned_cli: Cli, tmp_path: Path) -> None:
    cli = scanned_cli
    cli.ok("image", "upload", str(clean_debian(tmp_path, "base")), "--name", "base")
    refused = cli.fails("vm", "run", "base", "--memory", "128M", "--zone", "trusted")
    assert "a user image runs only in the DMZ zone" in refused and "--zone dmz" in refused
    # glibc before its security update: a high vulnerability, the site's block severity.
    old = old_glibc_debian(tmp_path, "old-glibc")
    cli.ok("image", "upload", str(old), "--name", "old-glibc")
    refused = cli.fails("vm", "run", "old-glibc", "--memory", "128M", "--zone", "dmz")
    assert "high vulnerability" in refused
    vm = cli.json("vm", "run", "base", "--memory", "128M")["vms"][0]
    assert vm["zone"] == "dmz"
    assert "dmz" in cli.ok("vm", "show", vm["id"]).stdout
