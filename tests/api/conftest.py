"""The API tests run against both database backends: SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import new_database, postgres_cluster
from tests.scanned_disks import OSV_FEED
from tests.servers import RunningServer, run_server

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Path]:
    with postgres_cluster() as cluster:
        yield cluster


def _database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "postgresql":
        return new_database(request.getfixturevalue("pg_cluster"))
    return None


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    with run_server(tmp_path / "server", database_url=_database_url(request)) as running:
        yield running


@pytest.fixture(params=BACKENDS)
def scanned_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A server that scans uploads against the project's OSV feed (tests/data/osv)."""
    with run_server(
        tmp_path / "server", database_url=_database_url(request), vuln_feed=str(OSV_FEED)
    ) as running:
        yield running
