"""Real images (qemu-img), a real record store and image cache, and a fake hypervisor."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.agent.machines import Machines
from gridvm.agent.records import RecordStore
from gridvm.images.cache import ImageCache
from gridvm.images.digests import sha256_file
from tests.agent.helpers import FakeDriver, Host, Images


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    d = tmp_path_factory.mktemp("images")
    files: dict[str, Path] = {}
    digests = []
    for name, size in (("old", "1M"), ("new", "2M")):
        path = d / f"{name}.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True, timeout=30
        )
        digest = f"sha256:{sha256_file(path)}"
        files[digest] = path
        digests.append(digest)
    return Images(old=digests[0], new=digests[1], files=files)


@pytest.fixture
def host(tmp_path: Path, images: Images) -> Iterator[Host]:
    fetched: list[str] = []

    def fetch(digest: str, target: Path) -> None:
        fetched.append(digest)
        shutil.copyfile(images.files[digest], target)

    records = RecordStore(tmp_path / "vms")
    driver = FakeDriver()
    with ImageCache(tmp_path / "cache", 1024**3) as cache:
        yield Host(Machines(records, cache, driver, fetch, "tcg"), driver, records, cache, fetched)
