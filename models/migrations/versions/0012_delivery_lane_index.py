"""the outbox picks each channel's due rows on its own: the index leads with the channel

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_priority")
        batch_op.create_index(
            "ix_deliveries_status_channel_priority",
            ["status", "channel", "priority", "not_before", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_channel_priority")
        batch_op.create_index(
            "ix_deliveries_status_priority",
            ["status", "priority", "not_before", "id"],
            unique=False,
        )
