from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scanned_disks import OSV_FEED
from tests.servers import RunningServer, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A fresh server with an empty database (no hosts, no images), in this process."""
    with run_server(tmp_path / "server") as running:
        yield running


@pytest.fixture
def scanned_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A fresh server that scans uploads against the project's OSV feed (tests/data/osv)."""
    with run_server(tmp_path / "server", vuln_feed=str(OSV_FEED)) as running:
        yield running
