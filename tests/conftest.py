from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.images.starter import build_tiny
from tests.scanned_disks import OSV_FEED
from tests.servers import RunningServer, run_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def starter_dir() -> Path:
    """The starter images, with tiny built once (cached across runs in build/starter, the
    place the Makefile builds into)."""
    out = REPO / "build" / "starter"
    build_tiny(out)
    return out


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
