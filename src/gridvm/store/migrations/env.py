"""Alembic environment: runs on the engine the server hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from gridvm.store.models import Base

engine = context.config.attributes.get("connection_engine")
if not isinstance(engine, Engine):
    raise RuntimeError("gridvm migrations run through gridvm.store.db.migrate()")

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    driver = connection.connection.driver_connection
    if sqlite and driver is not None:
        # Batch migrations rebuild a table (copy, drop, rename); with foreign keys on, the
        # drop fails as soon as another table points at a row. Off for the migration (it
        # must be set outside a transaction), then every reference is checked.
        driver.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite and driver is not None:
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        driver.execute("PRAGMA foreign_keys=ON")
        if broken:
            raise RuntimeError(f"the migration left broken references: {broken[:5]}")
