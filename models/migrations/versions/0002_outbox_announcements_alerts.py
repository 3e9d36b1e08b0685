"""outbox, announcements, alerts, inbound log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:53:20.690205
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "inbound_updates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_updates")),
        sa.UniqueConstraint("channel", "platform_id", name=op.f("uq_inbound_updates_channel")),
    )
    with op.batch_alter_table("inbound_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_updates_processed_at"), ["processed_at"], unique=False
        )

    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("barrio_ids", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo", sa.String(length=255), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["members.id"],
            name=op.f("fk_announcements_author_id_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_table(
        "security_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("barrio_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "robo",
                "asalto",
                "sospechoso",
                "incendio",
                "accidente",
                "otro",
                name="alertkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "open", "resolved", "false_alarm", name="alertstatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["members.id"],
            name=op.f("fk_security_alerts_author_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["barrio_id"],
            ["barrios.id"],
            name=op.f("fk_security_alerts_barrio_id_barrios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alerts")),
    )
    with op.batch_alter_table("security_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_security_alerts_author_created", ["author_id", "created_at"], unique=False
        )

    with op.batch_alter_table("channel_identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreachable_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("broadcast", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("about_member_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_deliveries_about_member_id"), ["about_member_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_about_member_id_members"),
            "members",
            ["about_member_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.drop_index(batch_op.f("ix_deliveries_status_priority"))
        batch_op.create_index(
            "ix_deliveries_status_priority",
            ["status", "priority", "not_before", "id"],
            unique=False,
        )
        batch_op.create_index("ix_deliveries_broadcast", ["broadcast", "status"], unique=False)

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("quiet_start", sa.Integer(), nullable=True, server_default="1320")
        )
        batch_op.add_column(
            sa.Column("quiet_end", sa.Integer(), nullable=True, server_default="480")
        )


def downgrade() -> None:

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("quiet_end")
        batch_op.drop_column("quiet_start")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_broadcast")
        batch_op.drop_index("ix_deliveries_status_priority")
        batch_op.create_index(
            batch_op.f("ix_deliveries_status_priority"), ["status", "priority", "id"], unique=False
        )
        batch_op.drop_constraint(
            batch_op.f("fk_deliveries_about_member_id_members"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_deliveries_about_member_id"))
        batch_op.drop_column("about_member_id")
        batch_op.drop_column("broadcast")
        batch_op.drop_column("photo")

    with op.batch_alter_table("channel_identities", schema=None) as batch_op:
        batch_op.drop_column("unreachable_at")

    with op.batch_alter_table("security_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_security_alerts_author_created")

    op.drop_table("security_alerts")
    op.drop_table("announcements")
    with op.batch_alter_table("inbound_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_updates_processed_at"))

    op.drop_table("inbound_updates")
