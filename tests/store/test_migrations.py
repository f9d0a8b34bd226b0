"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gridvm.store.db import Database, alembic_config
from gridvm.store.models import Base


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
