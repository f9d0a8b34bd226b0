"""site_egress_rules: the site's zone whitelist entries admins add at run time, and
hosts.site_egress_applied: which version of the site whitelist a host's agent has applied

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_egress_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("zone", sa.String(length=16), nullable=False),
        sa.Column("entry", sa.String(length=255), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("zone", "entry", name="uq_site_egress_zone_entry"),
    )
    op.add_column("hosts", sa.Column("site_egress_applied", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("site_egress_applied")
    op.drop_table("site_egress_rules")
