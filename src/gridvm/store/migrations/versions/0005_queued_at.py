"""vms.queued_at: when a VM last began to wait (queue timeouts count from here)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vms", sa.Column("queued_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("queued_at")
