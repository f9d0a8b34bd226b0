"""vms.site_address and hosts.uplink_address: VM-to-VM peers across hosts (issue 6)

The agent reports the address it gave each VM on its zone bridge (the guest cannot forge
it, unlike vms.guest_ip) and its host's uplink IPv4 address; the server sends a vm_to_vm
VM's peers on other hosts as (peer address, peer host's uplink address).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("vms", sa.Column("site_address", sa.String(length=64), nullable=True))
    op.add_column("hosts", sa.Column("uplink_address", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("uplink_address")
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("site_address")
