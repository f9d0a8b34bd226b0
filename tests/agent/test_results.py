"""Reading a job's results disk, which the guest wrote and so may hold anything."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from gridvm.agent.results import collect_results


def disk_with(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], size: int = 1024 * 1024
) -> Path:
    with tarfile.open(path, "w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    with path.open("r+b") as f:  # a raw disk: the tar, then zeros to the end
        f.truncate(size)
    return path


def file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def names(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]


def test_status_and_output_files_are_read(tmp_path: Path) -> None:
    disk = disk_with(
        tmp_path / "d.raw",
        [
            file(".gridvm/exit_status", b"3\n"),
            file("output/a.txt", b"A"),
            file("output/sub/b.txt", b"BB"),
        ],
    )
    outcome = collect_results(disk, tmp_path / "r.tar")
    assert (outcome.exit_status, outcome.files, outcome.size, outcome.problem) == (3, 2, 3, None)
    assert names(tmp_path / "r.tar") == {"a.txt": b"A", "sub/b.txt": b"BB"}


def test_untrusted_entries_are_dropped(tmp_path: Path) -> None:
    link = tarfile.TarInfo("output/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    device = tarfile.TarInfo("output/disk")
    device.type, device.devmajor, device.devminor = tarfile.BLKTYPE, 8, 0
    disk = disk_with(
        tmp_path / "d.raw",
        [
            file("output/../../escape.txt", b"no"),
            file("/etc/cron.d/evil", b"no"),
            file("elsewhere.txt", b"no"),
            (link, None),
            (device, None),
            file(".gridvm/exit_status", b"not a number"),
            file("output/ok.txt", b"yes"),
        ],
    )
    outcome = collect_results(disk, tmp_path / "r.tar")
    assert names(tmp_path / "r.tar") == {"ok.txt": b"yes"}
    assert outcome.exit_status is None


def test_an_empty_results_disk_has_no_results(tmp_path: Path) -> None:
    disk = tmp_path / "d.raw"
    with disk.open("wb") as f:
        f.truncate(1024 * 1024)
    outcome = collect_results(disk, tmp_path / "r.tar")
    assert (outcome.exit_status, outcome.files) == (None, 0)
    assert not (tmp_path / "r.tar").exists()


def test_garbage_on_the_disk_is_reported_not_raised(tmp_path: Path) -> None:
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\x7fELF" + b"\x01" * 4000)
    outcome = collect_results(disk, tmp_path / "r.tar")
    assert outcome.problem is not None and "could not be read" in outcome.problem
    assert not (tmp_path / "r.tar").exists()
