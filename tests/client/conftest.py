from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.client import Client
from tests.client.disks import make_qcow2
from tests.servers import RunningServer


@pytest.fixture
def gv(server: RunningServer) -> Iterator[Client]:
    """The SDK as the site's admin."""
    with Client(server.url, server.admin_token, timeout=30) as client:
        yield client


@pytest.fixture
def scanned_gv(scanned_server: RunningServer) -> Iterator[Client]:
    """The SDK as the site's admin, on a server that scans uploads against the project's
    OSV feed (tests/data/osv)."""
    with Client(scanned_server.url, scanned_server.admin_token, timeout=30) as client:
        yield client


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    """A small empty qcow2 disk of 64 MiB."""
    return make_qcow2(tmp_path / "disk.qcow2", "64M")
