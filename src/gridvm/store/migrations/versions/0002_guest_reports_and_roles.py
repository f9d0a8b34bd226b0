"""guest reports (ready, progress, published data) and deployment roles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("roles", sa.JSON(), nullable=True))
    op.add_column("vms", sa.Column("role", sa.String(length=64), nullable=True))
    op.add_column("vms", sa.Column("ready_at", sa.DateTime(), nullable=True))
    op.add_column("vms", sa.Column("guest_ip", sa.String(length=64), nullable=True))
    op.add_column("vms", sa.Column("public_keys", sa.JSON(), nullable=True))
    op.add_column("vms", sa.Column("progress", sa.Float(), nullable=True))
    op.add_column("vms", sa.Column("progress_message", sa.String(length=256), nullable=True))
    op.add_column("vms", sa.Column("published", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vms") as batch:
        for column in (
            "published",
            "progress_message",
            "progress",
            "public_keys",
            "guest_ip",
            "ready_at",
            "role",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("roles")
