"""Alembic environment: runs on the engine the server hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from gridvm.store.models import Base

engine = context.config.attributes.get("connection_engine")
if not isinstance(engine, Engine):
    raise RuntimeError("gridvm migrations run through gridvm.store.db.migrate()")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
