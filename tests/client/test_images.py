"""Images through the SDK: streamed upload and download, sharing, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gridvm.client import Client, InvalidRequest, NotFoundError
from gridvm.schemas.images import Visibility
from tests.client.disks import MIB, image_info, make_qcow2
from tests.servers import RunningServer


def test_upload_list_rename_share_download_delete(gv: Client, qcow2: Path, tmp_path: Path) -> None:
    sent: list[int] = []
    image = gv.images.upload(qcow2, "base", progress=sent.append)
    assert (image.name, image.owner, image.visibility) == ("base", "admin", Visibility.private)
    assert (image.format, image.uploaded_format, image.virtual_size) == ("qcow2", "qcow2", 64 * MIB)
    assert image.digest.startswith("sha256:")
    assert sent[-1] == qcow2.stat().st_size
    assert sent == sorted(sent)

    assert [i.id for i in gv.images.list()] == [image.id]
    assert gv.images.list(name="other") == []
    assert gv.images.get("base") == gv.images.get(image.id)

    renamed = gv.images.update("base", name="analysis")
    shared = gv.images.update(image.id, visibility="group")
    assert (renamed.name, shared.visibility) == ("analysis", Visibility.group)

    received: list[int] = []
    dest = tmp_path / "out" / "copy.qcow2"
    dest.parent.mkdir()
    got = gv.images.download("analysis", dest, progress=received.append)
    assert got.id == image.id
    assert dest.stat().st_size == image.size == received[-1]
    info = image_info(dest)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 64 * MIB)
    assert os.listdir(dest.parent) == ["copy.qcow2"]

    gv.images.delete("analysis")
    assert gv.images.list() == []
    with pytest.raises(NotFoundError, match="no image 'analysis'"):
        gv.images.get("analysis")


def test_files_that_are_not_usable_images_are_refused(gv: Client, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a disk image\n" * 100)
    empty = tmp_path / "empty.img"
    empty.touch()
    base = make_qcow2(tmp_path / "base.qcow2")
    overlay = make_qcow2(tmp_path / "overlay.qcow2", backing=base)
    for path in (text, empty, overlay):
        with pytest.raises(InvalidRequest) as caught:
            gv.images.upload(path, path.name.replace(".", "-"))
        assert caught.value.status in (413, 422), path
        assert caught.value.message, path
    assert gv.images.list() == []


def test_a_missing_local_file_is_a_file_error(gv: Client, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        gv.images.upload(tmp_path / "nope.qcow2", "nope")


def test_a_failed_download_leaves_nothing(gv: Client, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(NotFoundError):
        gv.images.download("missing", out / "x.qcow2")
    assert list(out.iterdir()) == []


def test_users_see_their_own_group_and_public_images_only(
    server: RunningServer, gv: Client, qcow2: Path
) -> None:
    gv.groups.create("physics")
    gv.groups.create("bio")
    tokens = {}
    for user, group in (("alice", "physics"), ("bob", "physics"), ("carol", "bio")):
        gv.users.create(user, group)
        tokens[user] = gv.tokens.create(user=user).token
    assert gv.groups.set_member("physics", "alice", manager=True).managers == ["alice"]
    public = gv.images.upload(qcow2, "site-base", visibility="public")

    with (
        Client(server.url, tokens["alice"]) as alice,
        Client(server.url, tokens["bob"]) as bob,
        Client(server.url, tokens["carol"]) as carol,
    ):
        private = alice.images.upload(qcow2, "mine")
        assert {i.name for i in alice.images.list()} == {"mine", "site-base"}
        assert [i.id for i in bob.images.list()] == [public.id]
        with pytest.raises(NotFoundError, match="no image 'mine'"):
            bob.images.get("mine")
        with pytest.raises(NotFoundError):
            bob.images.get(private.id)

        alice.images.update("mine", visibility="group")
        assert bob.images.get("mine").id == private.id
        with pytest.raises(NotFoundError):
            carol.images.get(private.id)
        assert [i.id for i in carol.images.list()] == [public.id]


def test_copy_an_image_as_your_own(gv: Client, qcow2: Path) -> None:
    source = gv.images.upload(qcow2, "work")
    copy = gv.images.copy("work", "work-copy")
    assert (copy.name, copy.digest, copy.trust.value) == ("work-copy", source.digest, "user")
    assert [i.name for i in gv.images.list()] == ["work", "work-copy"]
    with pytest.raises(NotFoundError):
        gv.images.copy("nothing", "x")
