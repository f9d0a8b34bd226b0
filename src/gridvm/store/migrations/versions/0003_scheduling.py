"""scheduling: group tree and shares, usage, quotas, reservations, placement wishes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("shares", sa.Float(), nullable=False, server_default="1.0"))
        batch.create_foreign_key("fk_groups_parent_id_groups", "groups", ["parent_id"], ["id"])
    op.create_table(
        "group_usage",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("core_seconds", sa.Float(), nullable=False),
        sa.Column("memory_mb_seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"]),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "quotas",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subject_kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("cores", sa.Integer(), nullable=True),
        sa.Column("memory_mb", sa.Integer(), nullable=True),
        sa.Column("vms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject_kind", "subject_id", name="uq_quotas_subject"),
    )
    op.create_index("ix_quotas_subject_id", "quotas", ["subject_id"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("cores", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reservations_group_id", "reservations", ["group_id"])
    op.create_index("ix_reservations_ends_at", "reservations", ["ends_at"])
    op.create_table(
        "scheduler_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO scheduler_lock (id) VALUES (1)")
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("gang", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("affinity", sa.String(length=16), nullable=False, server_default="none")
        )
        batch.add_column(sa.Column("selector", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("queue_timeout_s", sa.Integer(), nullable=True))
    op.add_column("vms", sa.Column("priority", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("vms", "priority")
    with op.batch_alter_table("deployments") as batch:
        for column in ("queue_timeout_s", "selector", "affinity", "gang"):
            batch.drop_column(column)
    op.drop_table("scheduler_lock")
    op.drop_index("ix_reservations_ends_at", table_name="reservations")
    op.drop_index("ix_reservations_group_id", table_name="reservations")
    op.drop_table("reservations")
    op.drop_index("ix_quotas_subject_id", table_name="quotas")
    op.drop_table("quotas")
    op.drop_table("group_usage")
    with op.batch_alter_table("groups") as batch:
        batch.drop_constraint("fk_groups_parent_id_groups", type_="foreignkey")
        batch.drop_column("shares")
        batch.drop_column("parent_id")
