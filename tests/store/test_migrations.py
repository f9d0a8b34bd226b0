"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from gridvm.store.db import Database, alembic_config
from gridvm.store.models import Base, VmRun
from tests.postgres import new_database, postgres_cluster


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gridvm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == [], f"models and migrations differ (add a migration): {diff}"


def test_migrations_upgrade_a_database_made_by_an_older_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    command.upgrade(alembic_config(db.engine), "0001")
    assert "role" not in {c["name"] for c in inspect(db.engine).get_columns("vms")}
    db.migrate()
    assert "role" in {c["name"] for c in inspect(db.engine).get_columns("vms")}
    db.dispose()


def test_an_older_database_with_data_upgrades_and_keeps_it(tmp_path: Path) -> None:
    """Batch migrations rebuild tables on SQLite: rows others point at must survive."""
    db = Database(f"sqlite:///{tmp_path / 'used.db'}")
    command.upgrade(alembic_config(db.engine), "0001")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO groups (id, name, created_at) VALUES ('g1', 'physics', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO users (id, name, role, primary_group_id, created_at)"
            " VALUES ('u1', 'alice', 'user', 'g1', '2026-01-01')"
        )
        conn.exec_driver_sql("INSERT INTO memberships (user_id, group_id) VALUES ('u1', 'g1')")
    db.migrate()
    with db.engine.begin() as conn:
        rows = conn.exec_driver_sql("SELECT name, shares, parent_id FROM groups").all()
        assert [tuple(r) for r in rows] == [("physics", 1.0, None)]
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Path]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0013_backfills_one_run_per_vm_that_has_started(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Each VM that started gets its (latest) run: ended ones with their end state, a
    running one still open; a VM that never started gets none."""
    if backend == "postgresql":
        db = Database(new_database(request.getfixturevalue("pg_cluster")))
    else:
        db = Database(f"sqlite:///{tmp_path / 'runs.db'}")
    command.upgrade(alembic_config(db.engine), "0012")
    vm_columns = (
        'id, name, owner_id, group_id, deployment_id, "index", image_name, vcpus, memory_mb,'
        " mode, params, launch, walltime_s, state, desired, attempt, boot, host_id,"
        " created_at, updated_at, started_at, ended_at"
    )
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO groups (id, name, created_at) VALUES ('g1', 'physics', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO users (id, name, role, primary_group_id, created_at)"
            " VALUES ('u1', 'alice', 'user', 'g1', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO hosts (id, name, address, state, arch, accelerator, cores, memory_mb,"
            " disk_bytes, labels, cached_images, registered_at) VALUES ('h1', 'node1',"
            " '127.0.0.1', 'enabled', 'x86_64', 'tcg', 8, 8192, 1, '{}', '{}', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO deployments (id, name, owner_id, count, created_at)"
            " VALUES ('d1', 'job', 'u1', 3, '2026-01-01')"
        )
        for vm_id, state, started, ended in (
            ("vm-done", "done", "'2026-01-02 10:00:00'", "'2026-01-02 12:00:00'"),
            ("vm-run", "running", "'2026-01-03 10:00:00'", "NULL"),
            ("vm-wait", "pending", "NULL", "NULL"),
        ):
            conn.exec_driver_sql(
                f"INSERT INTO vms ({vm_columns}) VALUES ('{vm_id}', 'job', 'u1', 'g1', 'd1', 0,"
                f" 'base', 2, 1024, 'multi', '{{}}', '{{}}', 3600, '{state}', 'running', 1, 1,"
                f" 'h1', '2026-01-01', '2026-01-01', {started}, {ended})"
            )
    db.migrate()
    with db.session() as s:
        rows = [
            (
                r.vm_id,
                r.owner_id,
                r.group_id,
                r.host_id,
                r.vcpus,
                r.memory_mb,
                r.started_at,
                r.ended_at,
                r.end_state,
            )
            for r in s.scalars(select(VmRun).order_by(VmRun.vm_id))
        ]
    db.dispose()
    day = datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert rows == [
        ("vm-done", "u1", "g1", "h1", 2, 1024, day, day + timedelta(hours=2), "done"),
        ("vm-run", "u1", "g1", "h1", 2, 1024, day + timedelta(days=1), None, None),
    ]
