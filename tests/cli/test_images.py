"""``gridvm image ...`` against a real server, with real qcow2 files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gridvm.client import Client, ConflictError, TransferError, uploads
from gridvm.common.units import format_size
from gridvm.schemas.images import UploadOut
from tests.cli.conftest import Cli
from tests.client.disks import MIB, disk_with_data, image_info, make_qcow2


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


def test_versions_list_pin_and_rm(cli: Cli, tmp_path: Path) -> None:
    first = cli.json("image", "upload", str(make_qcow2(tmp_path / "a.qcow2", "16M")), "-n", "env")
    second = cli.json("image", "upload", str(make_qcow2(tmp_path / "b.qcow2", "32M")), "-n", "env")
    assert (first["version"], second["version"]) == (1, 2)
    assert [i["id"] for i in cli.json("image", "list")] == [second["id"]]
    listing = cli.ok("image", "list", "--all-versions").stdout
    assert first["id"] in listing and "2 (latest)" in listing
    assert [i["version"] for i in cli.json("image", "versions", "env")] == [1, 2]
    assert cli.json("image", "show", "env:1")["id"] == first["id"]
    shown = [line.split() for line in cli.ok("image", "show", "env:1").stdout.splitlines()]
    assert ["version", "1"] in shown

    line = cli.fails("image", "rm", "env")
    assert "2 versions" in line and "gridvm image rm env:2" in line and "--all-versions" in line
    assert "deleted image env:1" in cli.ok("image", "rm", "env:1").stdout
    assert "deleted image env" in cli.ok("image", "rm", "env").stdout  # its only version now
    cli.ok("image", "upload", str(tmp_path / "a.qcow2"), "-n", "again")
    cli.ok("image", "upload", str(tmp_path / "b.qcow2"), "-n", "again")
    cli.ok("image", "rm", "again", "--all-versions")
    assert cli.json("image", "list", "--all-versions") == []


def test_upload_resumes_a_session_the_sdk_began(cli: Cli, tmp_path: Path) -> None:
    disk = disk_with_data(tmp_path / "big.qcow2", 5)
    data = disk.read_bytes()
    with Client(cli.server.url, cli.server.admin_token) as gv:
        session = gv.images.uploads.create("resumed", len(data))
        gv.images.uploads.send_chunk(session.id, 0, data[: 2 * MIB])
        # A chunk sent at the wrong offset is refused with the server's offset.
        with pytest.raises(ConflictError, match=f"has {2 * MIB} bytes"):
            gv.images.uploads.send_chunk(session.id, 0, data[:10])
    result = cli.ok("-o", "json", "image", "upload", str(disk), "--resume", session.id)
    assert f"continuing upload {session.id} from byte {2 * MIB}" in result.stderr
    image = json.loads(result.stdout)
    assert (image["name"], image["version"]) == ("resumed", 1)
    down = tmp_path / "down.qcow2"
    cli.ok("image", "download", "resumed", "-o", str(down))
    assert _same_disk(disk, down)
    assert "no upload" in cli.fails("image", "upload", str(disk), "--resume", session.id)


def test_an_interrupted_upload_says_how_to_go_on_and_the_same_command_does(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = disk_with_data(tmp_path / "big.qcow2", 5)
    monkeypatch.setattr(uploads, "UPLOAD_CHUNK", MIB)
    monkeypatch.setattr(uploads.time, "sleep", lambda _s: None)
    real_send = uploads.Uploads.send_chunk
    calls = []

    def flaky(self: uploads.Uploads, upload_id: str, offset: int, data: bytes) -> UploadOut:
        calls.append(offset)
        if len(calls) == 2:  # one failure: retried, the upload goes on
            raise TransferError("the connection broke")
        if len(calls) >= 4 and broken:
            raise TransferError("the connection broke")
        return real_send(self, upload_id, offset, data)

    broken = True
    monkeypatch.setattr(uploads.Uploads, "send_chunk", flaky)
    line = cli.fails("image", "upload", str(disk), "-n", "flaky")
    assert f"stopped after {2 * MIB} of" in line and "--resume upl-" in line
    assert cli.json("image", "list") == []

    broken = False
    # The same file under another name is another upload; under its name it goes on.
    other = cli.ok("-o", "json", "image", "upload", str(disk), "-n", "other")
    assert "continuing" not in other.stderr and json.loads(other.stdout)["name"] == "other"
    result = cli.ok("-o", "json", "image", "upload", str(disk), "-n", "flaky")
    assert f"from byte {2 * MIB}" in result.stderr
    assert json.loads(result.stdout)["name"] == "flaky"
    with Client(cli.server.url, cli.server.admin_token) as gv:
        assert gv.images.uploads.list() == []


def test_download_continues_a_partial_file_and_verifies_it(cli: Cli, tmp_path: Path) -> None:
    disk = disk_with_data(tmp_path / "d.qcow2", 3)
    cli.ok("image", "upload", str(disk), "-n", "part")
    whole = tmp_path / "whole.qcow2"
    cli.ok("image", "download", "part", "-o", str(whole))
    data = whole.read_bytes()

    partial = tmp_path / "partial.qcow2"
    partial.write_bytes(data[: len(data) // 3])
    assert "exists already" in cli.fails("image", "download", "part", "-o", str(partial))
    cli.ok("image", "download", "part", "-o", str(partial), "--continue")
    assert partial.read_bytes() == data

    # What an interrupted download leaves: FILE.part, continued and renamed into place.
    dest = tmp_path / "again.qcow2"
    (tmp_path / "again.qcow2.part").write_bytes(data[:1000])
    cli.ok("image", "download", "part", "-o", str(dest), "--continue")
    assert dest.read_bytes() == data and not (tmp_path / "again.qcow2.part").exists()

    # A partial file of something else fails the digest check and is not kept.
    other = tmp_path / "other.qcow2"
    other.write_bytes(b"\x01" * 1000)
    line = cli.fails("image", "download", "part", "-o", str(other), "--continue")
    assert "damaged" in line and "was not a partial copy of it and was removed" in line
    assert not other.exists()


def test_download_as_raw_is_the_same_disk(cli: Cli, tmp_path: Path) -> None:
    disk = disk_with_data(tmp_path / "d.qcow2", 2)
    cli.ok("image", "upload", str(disk), "-n", "exp")
    raw = tmp_path / "disk.raw"
    result = cli.ok("image", "download", "exp", "--format", "raw", "-o", str(raw))
    assert "64 MiB, raw" in result.stdout
    assert image_info(raw)["format"] == "raw"
    assert _same_disk(disk, raw)
    cli.ok("image", "download", "exp", "--format", "raw", "-o", str(tmp_path))
    assert (tmp_path / "exp.raw").stat().st_size == 64 * MIB


def _same_disk(a: Path, b: Path) -> bool:
    compare = subprocess.run(["qemu-img", "compare", str(a), str(b)], capture_output=True)
    return compare.returncode == 0


def test_uploads_under_way_are_listed_and_can_be_aborted(cli: Cli, tmp_path: Path) -> None:
    with Client(cli.server.url, cli.server.admin_token) as gv:
        session = gv.images.uploads.create("later", 3 * MIB)
        gv.images.uploads.send_chunk(session.id, 0, b"\0" * MIB)
    listing = cli.ok("image", "uploads").stdout
    row = next(line.split() for line in listing.splitlines() if session.id in line)
    assert row[1:6] == ["later", "1", "MiB", "3", "MiB"]
    assert "aborted upload" in cli.ok("image", "abort-upload", session.id).stdout
    assert cli.json("image", "uploads") == []
    assert "no upload" in cli.fails("image", "abort-upload", session.id)


def test_an_admin_makes_an_image_a_site_template_and_back(cli: Cli, qcow2: Path) -> None:
    cli.ok("image", "upload", str(qcow2), "--name", "site-base")
    made = cli.ok("image", "template", "site-base").stdout
    assert "site-base:1 is now a public site template (class site)" in made
    assert cli.json("image", "show", "site-base")["visibility"] == "public"
    assert "a site template already" in cli.fails("image", "template", "site-base")
    removed = cli.ok("image", "template", "site-base", "--remove").stdout
    assert "no longer a site template (class user)" in removed


def test_copy_makes_your_own_image_of_a_template(cli: Cli, qcow2: Path) -> None:
    cli.ok("image", "upload", str(qcow2), "--name", "site-base")
    cli.ok("image", "template", "site-base")
    made = cli.ok("image", "copy", "site-base", "mine").stdout
    assert "copied site-base to mine:1" in made and "class certified" in made
    copy = cli.json("image", "show", "mine")
    assert copy["digest"] == cli.json("image", "show", "site-base")["digest"]
    assert (copy["trust"], copy["visibility"]) == ("certified", "private")
    assert cli.json("image", "copy", "mine", "mine")["version"] == 2
    assert "no image 'nothing'" in cli.fails("image", "copy", "nothing", "x")
