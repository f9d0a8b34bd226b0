"""vms.egress, deployments.vm_to_vm: site networking (issue 6)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 11:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vms", sa.Column("egress", sa.JSON(), nullable=True))
    op.add_column("deployments", sa.Column("vm_to_vm", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("vm_to_vm")
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("egress")
