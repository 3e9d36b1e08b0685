"""delivery receipts from WhatsApp's status callbacks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "ix_deliveries_platform_message", ["channel", "platform_message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_platform_message")
        batch_op.drop_column("receipt")
