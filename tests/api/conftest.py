"""The API tests run against both database backends: SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import new_database, postgres_cluster
from tests.servers import RunningServer, run_server


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Path]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    url = None
    if request.param == "postgresql":
        url = new_database(request.getfixturevalue("pg_cluster"))
    with run_server(tmp_path / "server", database_url=url) as running:
        yield running
