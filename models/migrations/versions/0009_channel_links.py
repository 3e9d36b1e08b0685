"""one person on two channels: link codes and where broadcasts reach a member

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.entities

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("broadcast_channel", sa.String(length=16), nullable=True))
    op.create_table(
        "link_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("expires_at", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_link_codes_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_link_codes_code")),
        sa.UniqueConstraint("member_id", name=op.f("uq_link_codes_member_id")),
    )


def downgrade() -> None:
    op.drop_table("link_codes")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("broadcast_channel")
