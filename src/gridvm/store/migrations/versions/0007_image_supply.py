"""image supply and trust: versions, inspections, certifications, builds, image lists,
volumes, resumable uploads, VM zones, group managers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_list_subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("endorser_dn", sa.String(length=512), nullable=False),
        sa.Column("ca_pem", sa.Text(), nullable=False),
        sa.Column("list_identifier", sa.String(length=64), nullable=True),
        sa.Column("list_expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="upload")
        )
        batch.add_column(sa.Column("sha512", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("subscription_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("list_identifier", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_images_owner_name", type_="unique")
        batch.create_unique_constraint(
            "uq_images_owner_name_version", ["owner_id", "name", "version"]
        )
        batch.create_foreign_key(
            "fk_images_subscription_id",
            "image_list_subscriptions",
            ["subscription_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute("UPDATE images SET source = 'template' WHERE trust = 'site'")
    op.create_table(
        "image_inspections",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("os_id", sa.String(length=32), nullable=True),
        sa.Column("os_version", sa.String(length=32), nullable=True),
        sa.Column("os_name", sa.String(length=128), nullable=True),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("inspected_at", sa.DateTime(), nullable=False),
        sa.Column("vulns", sa.JSON(), nullable=True),
        sa.Column("vuln_feed", sa.String(length=71), nullable=True),
        sa.Column("scanned_at", sa.DateTime(), nullable=True),
        sa.Column("worst_severity", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("image_id"),
    )
    op.create_table(
        "image_certifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("certified_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("certified_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("subscription_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["image_list_subscriptions.id"], ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_image_certifications_image_id", "image_certifications", ["image_id"])
    op.create_table(
        "image_builds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Text(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("trust", sa.String(length=16), nullable=True),
        sa.Column("image_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_image_builds_owner_id", "image_builds", ["owner_id"])
    op.create_index("ix_image_builds_state", "image_builds", ["state"])
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("host_id", sa.String(length=32), nullable=True),
        sa.Column("vm_id", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"]),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"]),
        sa.ForeignKeyConstraint(["vm_id"], ["vms.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name", name="uq_volumes_owner_name"),
    )
    op.create_index("ix_volumes_owner_id", "volumes", ["owner_id"])
    op.create_index("ix_volumes_host_id", "volumes", ["host_id"])
    op.create_index("ix_volumes_vm_id", "volumes", ["vm_id"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_uploads_owner_id", "uploads", ["owner_id"])
    op.add_column("vms", sa.Column("zone", sa.String(length=16), nullable=True))
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(
            sa.Column("manager", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("manager")
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("zone")
    for table in ("uploads", "volumes", "image_builds", "image_certifications"):
        op.drop_table(table)
    op.drop_table("image_inspections")
    with op.batch_alter_table("images") as batch:
        batch.drop_constraint("fk_images_subscription_id", type_="foreignkey")
        batch.drop_constraint("uq_images_owner_name_version", type_="unique")
        batch.create_unique_constraint("uq_images_owner_name", ["owner_id", "name"])
        for column in ("list_identifier", "subscription_id", "sha512", "source", "version"):
            batch.drop_column(column)
    op.drop_table("image_list_subscriptions")
