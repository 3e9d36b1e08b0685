"""why a request was turned down, and the contact a coordinator shares with their barrio

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rejection_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("rejection_note", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("contact", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("contact")
        batch_op.drop_column("rejection_note")
        batch_op.drop_column("rejection_reason")
