"""status callbacks that arrive before their delivery names the message

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "early_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("platform_message_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_receipts")),
    )
    with op.batch_alter_table("early_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_early_receipts_platform_message_id"),
            ["platform_message_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("early_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_early_receipts_platform_message_id"))
    op.drop_table("early_receipts")
