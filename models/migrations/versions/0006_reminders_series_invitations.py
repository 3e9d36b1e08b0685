"""reminders, recurring meetings, invitations, barrio zones

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:50:45
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.entities

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("barrio_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("place", sa.String(length=120), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=120), nullable=False),
        sa.Column("starts_local", sa.String(length=16), nullable=False),
        sa.Column("planned_until", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.entities.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["members.id"],
            name=op.f("fk_meeting_series_author_id_members"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["barrio_id"],
            ["barrios.id"],
            name=op.f("fk_meeting_series_barrio_id_barrios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_series")),
    )
    op.create_table(
        "meeting_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("invited_at", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_invitations_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_meeting_invitations_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_invitations")),
        sa.UniqueConstraint(
            "meeting_id", "member_id", name=op.f("uq_meeting_invitations_meeting_id")
        ),
    )
    with op.batch_alter_table("meeting_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_invitations_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "reminders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "meeting",
                "nudge",
                "funding",
                "digest",
                name="reminderkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("funding_call_id", sa.Integer(), nullable=True),
        sa.Column("zone", sa.String(length=64), nullable=True),
        sa.Column("due_at", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "fired", "skipped", name="reminderstatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("done_at", models.entities.UtcDateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=64), nullable=True),
        sa.Column("created_at", models.entities.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["funding_call_id"],
            ["funding_calls.id"],
            name=op.f("fk_reminders_funding_call_id_funding_calls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_reminders_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
        sa.UniqueConstraint("key", name=op.f("uq_reminders_key")),
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reminders_funding_call_id"), ["funding_call_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reminders_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index("ix_reminders_status_due", ["status", "due_at"], unique=False)

    with op.batch_alter_table("barrios", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reminder_minutes", sa.JSON(), nullable=True))

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("expires_at", models.entities.UtcDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("funding_calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("withdrawn_at", models.entities.UtcDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("occurrence", sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_meetings_series_id"), ["series_id", "occurrence"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_meetings_series_id_meeting_series"),
            "meeting_series",
            ["series_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("weekly_digest", sa.Boolean(), server_default="0", nullable=False)
        )

    # Who was invited to meetings still ahead, as the delivery log had it: the invitations that
    # left (or may have).
    op.execute(
        """
        INSERT INTO meeting_invitations (meeting_id, member_id, invited_at)
        SELECT m.id, d.member_id, MIN(d.created_at)
        FROM meetings m JOIN deliveries d ON d.broadcast = 'meeting:' || m.id
        WHERE d.member_id IS NOT NULL AND d.status IN ('sent', 'ambiguous')
        GROUP BY m.id, d.member_id
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("weekly_digest")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_meetings_series_id_meeting_series"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_meetings_series_id"), type_="unique")
        batch_op.drop_column("occurrence")
        batch_op.drop_column("series_id")

    with op.batch_alter_table("funding_calls", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("params")
        batch_op.drop_column("template")

    with op.batch_alter_table("barrios", schema=None) as batch_op:
        batch_op.drop_column("reminder_minutes")
        batch_op.drop_column("timezone")

    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_status_due")
        batch_op.drop_index(batch_op.f("ix_reminders_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_reminders_funding_call_id"))

    op.drop_table("reminders")
    with op.batch_alter_table("meeting_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_invitations_member_id"))

    op.drop_table("meeting_invitations")
    op.drop_table("meeting_series")
