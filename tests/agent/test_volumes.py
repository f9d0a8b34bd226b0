"""Volume files on a host: made once as real qcow2 files, kept, deleted only on request."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gridvm.agent.volumes import VolumeFiles


def _info(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True
    ).stdout
    info: dict[str, object] = json.loads(out)
    return info


def test_a_volume_file_is_made_once_as_an_empty_qcow2_of_its_size(tmp_path: Path) -> None:
    files = VolumeFiles(tmp_path / "volumes")
    path = files.ensure("vol-0a1b2c3d4e5f", 64 * 1024**2)
    assert path == tmp_path / "volumes" / "vol-0a1b2c3d4e5f.qcow2"
    info = _info(path)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 64 * 1024**2)
    assert path.stat().st_mode & 0o777 == 0o600
    # Data written to it survives the next ensure (the next run).
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4k", str(path)],
        check=True,
        capture_output=True,
    )
    before = path.read_bytes()
    assert files.ensure("vol-0a1b2c3d4e5f", 64 * 1024**2) == path
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_delete_removes_files_but_not_those_in_use(tmp_path: Path) -> None:
    files = VolumeFiles(tmp_path / "volumes")
    a = files.ensure("vol-a", 1024**2)
    b = files.ensure("vol-b", 1024**2)
    gone = files.delete(["vol-a", "vol-b", "vol-never-made"], in_use={"vol-b"})
    assert gone == ["vol-a", "vol-never-made"]
    assert not a.exists() and b.exists()


def test_unsafe_volume_ids_are_refused(tmp_path: Path) -> None:
    files = VolumeFiles(tmp_path / "volumes")
    with pytest.raises(ValueError, match="unsafe volume id"):
        files.path_of("../../etc/passwd")
    assert files.delete(["../x"], in_use=set()) == []
