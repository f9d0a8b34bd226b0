"""``gridvm image ...`` against a real server, with real qcow2 files."""

from __future__ import annotations

from pathlib import Path

from gridvm.common.units import format_size
from tests.cli.conftest import Cli
from tests.client.disks import MIB, image_info, make_qcow2


def test_upload_list_show_rename_share_download_rm(cli: Cli, qcow2: Path, tmp_path: Path) -> None:
    uploaded = cli.json("image", "upload", str(qcow2), "--name", "base")
    assert (uploaded["name"], uploaded["visibility"]) == ("base", "private")
    assert uploaded["virtual_size"] == 64 * MIB

    listing = cli.ok("image", "list").stdout
    assert "base" in listing and uploaded["id"] in listing and format_size(64 * MIB) in listing
    assert [i["id"] for i in cli.json("image", "list")] == [uploaded["id"]]
    shown = cli.ok("image", "show", "base").stdout
    assert uploaded["digest"] in shown and "67108864 bytes" in shown

    assert "renamed base to analysis" in cli.ok("image", "rename", "base", "analysis").stdout
    assert "shared with group admins" in cli.ok("image", "share", "analysis").stdout
    assert cli.json("image", "show", uploaded["id"])["visibility"] == "group"
    assert "private" in cli.ok("image", "unshare", "analysis").stdout

    out = tmp_path / "out"
    out.mkdir()
    dest = out / "copy.qcow2"
    result = cli.ok("image", "download", "analysis", "-o", str(dest))
    assert f"to {dest}" in result.stdout
    info = image_info(dest)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 64 * MIB)
    line = cli.fails("image", "download", "analysis", "-o", str(dest))
    assert "exists already" in line and "--force" in line
    cli.ok("image", "download", "analysis", "-o", str(dest), "--force")
    cli.ok("image", "download", "analysis", "-o", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["analysis.qcow2", "copy.qcow2"]

    assert "deleted image analysis" in cli.ok("image", "rm", "analysis").stdout
    assert cli.json("image", "list") == []
    assert "no image 'analysis'" in cli.fails("image", "show", "analysis")


def test_upload_names_the_image_after_the_file(cli: Cli, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path / "ubuntu-22.04.qcow2", "64M")
    assert cli.json("image", "upload", str(disk))["name"] == "ubuntu-22.04"


def test_what_is_not_a_usable_image_is_refused_and_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n" * 200)
    empty = tmp_path / "empty.img"
    empty.touch()
    base = make_qcow2(tmp_path / "base.qcow2")
    overlay = make_qcow2(tmp_path / "overlay.qcow2", backing=base)

    assert "not a disk image" in cli.fails("image", "upload", str(text), "--name", "t")
    assert "empty" in cli.fails("image", "upload", str(empty), "--name", "e")
    assert "backing file" in cli.fails("image", "upload", str(overlay), "--name", "o")
    assert cli.json("image", "list") == []


def test_a_missing_or_unreadable_file_is_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.qcow2"
    assert cli.fails("image", "upload", str(missing)) == (
        f"error: {missing}: No such file or directory"
    )
    assert "is a directory" in cli.fails("image", "upload", str(tmp_path))


def test_users_see_their_images_and_public_ones_not_others_private_ones(
    cli: Cli, qcow2: Path
) -> None:
    cli.ok("group", "create", "physics")
    cli.ok("group", "create", "bio")
    tokens = {}
    for user, group in (("alice", "physics"), ("bob", "physics"), ("carol", "bio")):
        cli.ok("user", "create", user, "--group", group)
        tokens[user] = cli.ok("token", "create", "--user", user).stdout.strip()
    cli.ok("image", "upload", str(qcow2), "--name", "site-base", "--visibility", "public")
    private = cli.json("image", "upload", str(qcow2), "--name", "mine", token=tokens["alice"])

    assert {i["name"] for i in cli.json("image", "list", token=tokens["alice"])} == {
        "mine",
        "site-base",
    }
    assert [i["name"] for i in cli.json("image", "list", token=tokens["bob"])] == ["site-base"]
    line = cli.fails("image", "show", private["id"], token=tokens["bob"])
    assert line.startswith(f"error: no image '{private['id']}'")
    assert "no image 'mine'" in cli.fails("vm", "run", "mine", token=tokens["bob"])
    assert "only admins publish public images" in cli.fails(
        "image", "share", "mine", "--with", "public", token=tokens["alice"]
    )

    # Publishing to a group is a manager's act: alice asks, then an admin makes her one.
    line = cli.fails("image", "share", "mine", token=tokens["alice"])
    assert "only a manager of group physics" in line and "no manager yet" in line
    assert "alice is a manager" in cli.ok("group", "set-manager", "physics", "alice").stdout
    cli.ok("image", "share", "mine", token=tokens["alice"])
    assert cli.json("image", "show", "mine", token=tokens["bob"])["id"] == private["id"]
    assert "no image 'mine'" in cli.fails("image", "show", "mine", token=tokens["carol"])
    assert "belongs to alice" in cli.fails("image", "rm", "mine", token=tokens["bob"])


def test_rm_goes_on_after_a_failure_and_exits_1(cli: Cli, qcow2: Path) -> None:
    cli.ok("image", "upload", str(qcow2), "--name", "a")
    result = cli("image", "rm", "missing", "a")
    assert result.exit_code == 1
    assert "error: no image 'missing'" in result.stderr
    assert "deleted image a" in result.stdout
    assert cli.json("image", "list") == []
