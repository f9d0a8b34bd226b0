"""Job results in the SDK: the streamed download, and unpacking untrusted archives safely."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gridvm.client import (
    Client,
    DestinationNotEmpty,
    NotFoundError,
    TransferError,
    UnsafeArchive,
    extract_results,
)
from gridvm.schemas.vms import VmState


# --- hand-made archives ------------------------------------------------------------
def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def add_entry(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    tar.addfile(info)


def make_tar(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        build(tar)
    return path


def normal(tar: tarfile.TarFile) -> None:
    add_entry(tar, ".", tarfile.DIRTYPE)
    add_file(tar, "./summary.txt", b"mean 4.2\n")
    add_entry(tar, "plots", tarfile.DIRTYPE)
    add_file(tar, "plots/a.csv", b"x,y\n1,2\n")
    add_file(tar, "run.sh", b"#!/bin/sh\n", mode=0o4755)  # setuid: dropped
    add_file(tar, "empty", b"")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- unpacking -----------------------------------------------------------------------
def test_a_normal_archive_unpacks_with_counts(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "r.tar", normal)
    dest = tmp_path / "out" / "scan-0"
    unpacked = extract_results(archive, dest)
    assert unpacked.path == dest
    assert (unpacked.files, unpacked.bytes) == (4, 9 + 8 + 10 + 0)
    assert files_under(dest) == {"summary.txt", "plots", "plots/a.csv", "run.sh", "empty"}
    assert (dest / "plots" / "a.csv").read_bytes() == b"x,y\n1,2\n"
    assert not (dest / "run.sh").stat().st_mode & 0o7000
    assert (dest / "run.sh").stat().st_mode & 0o100
    # No staging folder is left beside the result.
    assert os.listdir(tmp_path / "out") == ["scan-0"]


def test_an_empty_folder_may_receive_the_results(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "r.tar", normal)
    dest = tmp_path / "scan-0"
    dest.mkdir()
    assert extract_results(archive, dest).files == 4


def test_a_folder_with_files_is_kept_unless_replace(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "r.tar", normal)
    dest = tmp_path / "out" / "scan-0"
    dest.mkdir(parents=True)
    (dest / "mine.txt").write_text("keep me")
    with pytest.raises(DestinationNotEmpty, match="exists and is not empty"):
        extract_results(archive, dest)
    assert files_under(dest) == {"mine.txt"}

    extract_results(archive, dest, replace=True)
    assert "mine.txt" not in files_under(dest)
    assert (dest / "summary.txt").exists()
    assert os.listdir(tmp_path / "out") == ["scan-0"]


def test_an_empty_archive_makes_an_empty_folder(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "r.tar", lambda tar: None)
    unpacked = extract_results(archive, tmp_path / "vm")
    assert (unpacked.files, unpacked.bytes) == (0, 0)
    assert list((tmp_path / "vm").iterdir()) == []


def escape_up(tar: tarfile.TarFile) -> None:
    add_file(tar, "fine.txt", b"ok")
    add_file(tar, "../evil", b"pwned")


def escape_deep(tar: tarfile.TarFile) -> None:
    add_file(tar, "a/../../evil", b"pwned")


def absolute(tar: tarfile.TarFile) -> None:
    add_file(tar, "fine.txt", b"ok")
    add_file(tar, "/tmp/gridvm-test-evil", b"pwned")


def symlink(tar: tarfile.TarFile) -> None:
    add_entry(tar, "passwd", tarfile.SYMTYPE, "/etc/passwd")


def relative_symlink(tar: tarfile.TarFile) -> None:
    add_entry(tar, "inside", tarfile.SYMTYPE, "fine.txt")
    add_file(tar, "fine.txt", b"ok")


def symlink_then_write(tar: tarfile.TarFile) -> None:
    add_entry(tar, "etc", tarfile.SYMTYPE, "/etc")
    add_file(tar, "etc/gridvm-evil", b"pwned")


def hardlink(tar: tarfile.TarFile) -> None:
    add_entry(tar, "shadow", tarfile.LNKTYPE, "/etc/shadow")


def char_device(tar: tarfile.TarFile) -> None:
    add_entry(tar, "null", tarfile.CHRTYPE)


def block_device(tar: tarfile.TarFile) -> None:
    add_entry(tar, "sda", tarfile.BLKTYPE)


def fifo(tar: tarfile.TarFile) -> None:
    add_entry(tar, "pipe", tarfile.FIFOTYPE)


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (escape_up, "'../evil' is a path outside the results folder"),
        (escape_deep, "'a/../../evil' is a path outside the results folder"),
        (absolute, "'/tmp/gridvm-test-evil' is an absolute path"),
        (symlink, "'passwd' is a symbolic link (to '/etc/passwd')"),
        (relative_symlink, "'inside' is a symbolic link (to 'fine.txt')"),
        (symlink_then_write, "'etc' is a symbolic link (to '/etc')"),
        (hardlink, "'shadow' is a hard link (to '/etc/shadow')"),
        (char_device, "'null' is a character device"),
        (block_device, "'sda' is a block device"),
        (fifo, "'pipe' is a FIFO"),
    ],
)
def test_unsafe_archives_are_refused_and_write_nothing(
    tmp_path: Path, build: Callable[[tarfile.TarFile], None], why: str
) -> None:
    archive = make_tar(tmp_path / "r.tar", build)
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "scan-0"
    with pytest.raises(UnsafeArchive) as caught:
        extract_results(archive, dest)
    assert why in str(caught.value)
    assert "nothing was unpacked" in str(caught.value)
    assert not dest.exists()
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.tar"]
    assert not Path("/tmp/gridvm-test-evil").exists()
    assert not Path("/etc/gridvm-evil").exists()


def test_a_file_that_is_not_a_tar_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"<html>not a tar</html>" * 50)
    with pytest.raises(UnsafeArchive, match="not an uncompressed tar archive"):
        extract_results(junk, tmp_path / "vm")
    assert not (tmp_path / "vm").exists()


def test_a_compressed_tar_is_refused(tmp_path: Path) -> None:
    gz = tmp_path / "r.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        add_file(tar, "a", b"a")
    with pytest.raises(UnsafeArchive, match="not an uncompressed tar archive"):
        extract_results(gz, tmp_path / "vm")


def test_a_cut_archive_leaves_nothing(tmp_path: Path) -> None:
    whole = make_tar(tmp_path / "whole.tar", lambda t: add_file(t, "big", b"x" * 100_000))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[:50_000])
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchive, match="damaged tar archive"):
        extract_results(cut, tmp_path / "out" / "vm")
    assert list((tmp_path / "out").iterdir()) == []


# --- the download ----------------------------------------------------------------------
def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    return Client("http://gridvm.test", "gvm_token", transport=httpx.MockTransport(handler))


def test_results_are_streamed_to_the_file(tmp_path: Path) -> None:
    body = make_tar(tmp_path / "r.tar", normal).read_bytes()
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, content=body, headers={"content-type": "application/x-tar"})

    seen: list[int] = []
    dest = tmp_path / "vm.tar"
    with mock_client(handler) as gv:
        assert gv.vms.results("vm-1", dest, progress=seen.append) == len(body)
    assert paths == ["/api/v1/vms/vm-1/results"]
    assert dest.read_bytes() == body
    assert seen[-1] == len(body)
    assert extract_results(dest, tmp_path / "vm-1").files == 4


def test_a_cut_download_leaves_no_file(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 10, headers={"content-length": "100"})

    dest = tmp_path / "vm.tar"
    with mock_client(handler) as gv, pytest.raises(TransferError, match="stopped after 10 of 100"):
        gv.vms.results("vm-1", dest)
    assert list(tmp_path.iterdir()) == []


def test_no_results_is_the_servers_404_and_leaves_no_file(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": "not_found", "message": "VM vm-1 has no results", "hint": "wait"}
        return httpx.Response(404, json=body)

    with mock_client(handler) as gv, pytest.raises(NotFoundError, match="has no results"):
        gv.vms.results("vm-1", tmp_path / "vm.tar")
    assert list(tmp_path.iterdir()) == []


def test_create_sends_params_and_max_running() -> None:
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(
            201,
            json={
                "id": "dep-1",
                "name": "x",
                "owner": "a",
                "count": 0,
                "created_at": "2024-01-01T00:00:00Z",
            },
        )

    rows = [{"A": "1"}, {"A": "2"}]
    with mock_client(handler) as gv:
        gv.vms.create(image="base", params=rows, max_running=1)
        gv.vms.create(image="base")
    assert sent[0]["params"] == rows
    assert sent[0]["max_running"] == 1
    assert "params" not in sent[1] and "max_running" not in sent[1]


# --- against the real server (no agent: VMs stay pending) ---------------------------------
def test_a_scan_makes_one_vm_per_row(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    rows = [{"ALPHA": str(i), "NOTE": f"row {i}"} for i in range(3)]
    deployment = gv.vms.create(image="base", params=rows, max_running=2)
    assert deployment.count == 3
    assert [vm.name for vm in deployment.vms] == ["base-0", "base-1", "base-2"]
    assert all(vm.exit_status is None and vm.results_bytes is None for vm in deployment.vms)


def test_a_pending_vm_has_no_results(gv: Client, qcow2: Path, tmp_path: Path) -> None:
    gv.images.upload(qcow2, "base")
    vm = gv.vms.create(image="base").vms[0]
    assert vm.state == VmState.pending
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(NotFoundError, match="no results"):
        gv.vms.results(vm.id, out / "r.tar")
    assert list(out.iterdir()) == []
