"""funding calls

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 00:27:54.635267
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "funding_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=True),
        sa.Column("region", sa.String(length=80), nullable=True),
        sa.Column("barrio_ids", sa.JSON(), nullable=False),
        sa.Column("opens_on", sa.Date(), nullable=False),
        sa.Column("closes_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["members.id"],
            name=op.f("fk_funding_calls_author_id_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_calls")),
    )
    with op.batch_alter_table("funding_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funding_calls_closes_on"), ["closes_on"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("funding_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funding_calls_closes_on"))

    op.drop_table("funding_calls")
