"""inbound dedupe by content, emptied payloads, deliveries tied to a barrio

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_updates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fingerprint", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.alter_column("payload", existing_type=sa.JSON(), nullable=True)
        batch_op.drop_constraint("uq_inbound_updates_channel", type_="unique")
        batch_op.create_unique_constraint(
            "uq_inbound_updates_channel", ["channel", "platform_id", "fingerprint"]
        )
    # Payloads of handled updates are personal data nobody needs any more.
    op.execute("UPDATE inbound_updates SET payload = NULL WHERE processed_at IS NOT NULL")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("barrio_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_barrio_id"), ["barrio_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_barrio_id_barrios"),
            "barrios",
            ["barrio_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deliveries_barrio_id_barrios"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deliveries_barrio_id"))
        batch_op.drop_column("barrio_id")

    op.execute("DELETE FROM inbound_updates WHERE payload IS NULL")
    with op.batch_alter_table("inbound_updates", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_updates_channel", type_="unique")
        batch_op.create_unique_constraint("uq_inbound_updates_channel", ["channel", "platform_id"])
        batch_op.alter_column("payload", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("fingerprint")
