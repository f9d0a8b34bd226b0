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
