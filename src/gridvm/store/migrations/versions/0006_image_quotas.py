"""image storage quotas: stored image bytes and image count per user and group

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("quotas", sa.Column("image_bytes", sa.BigInteger(), nullable=True))
    op.add_column("quotas", sa.Column("images", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quotas") as batch:
        batch.drop_column("images")
        batch.drop_column("image_bytes")
