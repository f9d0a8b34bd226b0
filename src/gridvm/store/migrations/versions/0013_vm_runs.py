"""vm_runs: every run of a VM (a start after a stop, a redeploy), for usage history

A VM's own started_at .. ended_at are reset when it starts again or is redeployed, so
only its latest run was counted. Each existing VM that has started gets one run (its
latest: the earlier ones are not known).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vm_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vm_id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=True),
        sa.Column("host_id", sa.String(length=32), nullable=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_state", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["vm_id"], ["vms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"]),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vm_runs_vm_id", "vm_runs", ["vm_id"])
    op.create_index("ix_vm_runs_group_id", "vm_runs", ["group_id"])
    op.create_index("ix_vm_runs_started_at", "vm_runs", ["started_at"])
    op.execute(
        "INSERT INTO vm_runs"
        " (vm_id, owner_id, group_id, host_id, vcpus, memory_mb, started_at, ended_at, end_state)"
        " SELECT id, owner_id, group_id, host_id, vcpus, memory_mb, started_at, ended_at,"
        " CASE WHEN ended_at IS NULL THEN NULL ELSE state END"
        " FROM vms WHERE started_at IS NOT NULL ORDER BY started_at, id"
    )


def downgrade() -> None:
    op.drop_index("ix_vm_runs_started_at", table_name="vm_runs")
    op.drop_index("ix_vm_runs_group_id", table_name="vm_runs")
    op.drop_index("ix_vm_runs_vm_id", table_name="vm_runs")
    op.drop_table("vm_runs")
