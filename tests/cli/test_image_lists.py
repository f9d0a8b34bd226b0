"""``gridvm image-list export|subscribe|list|refresh|rm``."""

from __future__ import annotations

from pathlib import Path

from gridvm.images.imagelist import smime
from tests.cli.conftest import Cli
from tests.image_list_sites import file_server
from tests.scanned_disks import clean_debian


def test_export_then_subscribe_to_it(scanned_cli: Cli, tmp_path: Path) -> None:
    cli = scanned_cli  # scans uploads: a clean image may be certified, and so listed
    disk = clean_debian(tmp_path, "base")
    cli.ok("image", "upload", str(disk), "--name", "base", "--visibility", "public")
    cli.ok("image", "certify", "base", "--reason", "reviewed")
    served = tmp_path / "served"
    served.mkdir()
    out = cli.ok("image-list", "export", "-o", str(served / "list.smime")).stdout
    assert "signed image list written to" in out
    # With no endorser configured, the server made a site CA and endorser in its data dir.
    ca = cli.server.data_dir / "endorser" / "ca.pem"
    verified = smime.verify((served / "list.smime").read_bytes(), ca.read_text())
    dn = verified.signer_dn
    assert dn.startswith("/O=gridvm site")

    with file_server(served) as base:
        # The list's images are not published by this server (the default): the list
        # verifies, but its image cannot be fetched; the error says so.
        failed = cli.fails(
            "image-list", "subscribe", "self", f"{base}/list.smime", "--endorser-dn", dn,
            "--ca", str(ca),
        )  # fmt: skip
        assert "HTTP 404" in failed
        wrong = cli.fails(
            "image-list", "subscribe", "other", f"{base}/list.smime", "--endorser-dn",
            "/O=Elsewhere/CN=Someone", "--ca", str(ca),
        )  # fmt: skip
        assert "not by the endorser /O=Elsewhere/CN=Someone" in wrong
        listing = cli.ok("image-list", "list").stdout
        assert "self" in listing and "other" in listing
        assert "HTTP 404" in cli.fails("image-list", "refresh", "self")
    cli.ok("image-list", "rm", "self")
    assert [s["name"] for s in cli.json("image-list", "list")] == ["other"]
    assert "no image-list subscription 'self'" in cli.fails("image-list", "refresh", "self")


def test_users_may_not_export(cli: Cli, tmp_path: Path) -> None:
    cli.ok("group", "create", "physics")
    cli.ok("user", "create", "alice", "--group", "physics")
    alice = cli.json("token", "create", "--user", "alice")["token"]
    refused = cli.fails("image-list", "export", "-o", str(tmp_path / "l"), token=alice)
    assert "needs a security officer" in refused
    assert not (tmp_path / "l").exists()
