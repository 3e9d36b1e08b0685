"""The tables. Instants are stored in UTC; the barrio's time zone is applied only when shown."""

from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The system clock: what production hands the runtime. Nothing stamps rows with it
    directly; every timestamp comes from the clock of the session (see `stamp_from_clock`)."""
    return datetime.now(UTC)


def fold(text: str) -> str:
    """Lower case without accents, for matching what people type against names and labels."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


SEARCH_TEXT_LENGTH = 170


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


class Timestamped:
    # Stamped by `stamp_from_clock` with the session's clock, never with the wall clock.
    created_at: Mapped[datetime]


class Role(enum.StrEnum):
    MEMBER = "member"
    COORDINATOR = "coordinator"


class MembershipStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    LEFT = "left"
    # Taken out by the barrio's coordination: like REJECTED, its link does not ask again.
    REMOVED = "removed"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    # The process stopped between "about to send" and "sent": the person may or may not have
    # it. Never resent (that could double it); counted and reported instead.
    AMBIGUOUS = "ambiguous"
    # Not sent because it would have arrived too late to mean anything (a reminder held by
    # quiet hours past its meeting's start), or what it was about is gone. Counted, not sent.
    EXPIRED = "expired"


class Priority(enum.IntEnum):
    """Lower goes first. It also says how quiet hours treat a row (`handlers/outbox.py`)."""

    ALERT = 0
    MEETING_CHANGE = 10
    # About something a person is doing right now (a join request, its answer, a channel
    # linked, a coordinator's broadcast finished): someone waits on it, so quiet hours never
    # hold it.
    PERSONAL = 20
    # A personal notice queued inside its recipient's quiet hours: it goes at once, without
    # sound where the channel allows it. Stored as such, so a retry or a restart sends it alike.
    PERSONAL_SILENT = 21
    # A reminder, or anything else that can wait for the morning.
    NOTICE = 30
    BROADCAST = 50


class AlertKind(enum.StrEnum):
    ROBBERY = "robo"
    ASSAULT = "asalto"
    SUSPICIOUS = "sospechoso"
    FIRE = "incendio"
    ACCIDENT = "accidente"
    OTHER = "otro"


class MeetingStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class RsvpAnswer(enum.StrEnum):
    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


class ReminderKind(enum.StrEnum):
    MEETING = "meeting"
    # A coordinator's "Recordar a quienes no han respondido": fired when it is asked for.
    NUDGE = "nudge"
    FUNDING = "funding"
    DIGEST = "digest"


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    # Fell due when it no longer made sense (the meeting had started, the call had closed, a
    # later reminder of the same meeting was due too): logged and counted, never sent late.
    SKIPPED = "skipped"


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"


def _str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    # Stored as plain strings (no native ENUM type) so adding a value is a one-line change.
    return Enum(
        enum_class,
        native_enum=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Barrio(Timestamped, Base):
    __tablename__ = "barrios"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    comuna: Mapped[str] = mapped_column(String(80))
    region: Mapped[str] = mapped_column(String(80))
    invite_code: Mapped[str] = mapped_column(String(32), unique=True)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=True)
    # The barrio's IANA zone (America/Punta_Arenas in Magallanes); None: BARRIO_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Minutes before each meeting its reminders go out; None: DEFAULT_REMINDER_MINUTES.
    reminder_minutes: Mapped[list[int] | None] = mapped_column(JSON)


class Member(Timestamped, Base):
    """A person. Created only when registration ends with consent, so no consent, no row."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    business_name: Mapped[str] = mapped_column(String(80))
    business_category: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20))
    consent_at: Mapped[datetime]
    show_in_directory: Mapped[bool] = mapped_column(Boolean, default=True)
    show_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    show_address: Mapped[bool] = mapped_column(Boolean, default=False)
    # fold(name + business name), kept by the ORM events below, so the directory can search
    # accent-insensitively in SQL on SQLite and PostgreSQL alike.
    search_text: Mapped[str] = mapped_column(String(SEARCH_TEXT_LENGTH), default="")
    # Quiet hours in minutes after local midnight; both None means "no quiet hours".
    quiet_start: Mapped[int | None] = mapped_column(Integer, default=22 * 60)
    quiet_end: Mapped[int | None] = mapped_column(Integer, default=8 * 60)
    # The Monday summary of the week (handlers/digest.py): off unless the member asks for it.
    weekly_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Where broadcasts reach a member linked on two channels ("telegram", "whatsapp"); None:
    # the channel they registered on. Replies always go where the person wrote.
    broadcast_channel: Mapped[str | None] = mapped_column(String(16))

    identities: Mapped[list[ChannelIdentity]] = relationship(
        back_populates="member", cascade="all, delete-orphan", passive_deletes=True
    )
    # In the order joined: a person's "first barrio" (whose zone their dates are said in)
    # is the same on every query and database.
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="member",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Membership.id",
    )


@event.listens_for(Member, "before_insert")
@event.listens_for(Member, "before_update")
def _fold_search_text(_mapper: Any, _connection: Any, member: Member) -> None:
    # fold() can lengthen text (ß → ss); the column is a search aid, so cut rather than fail.
    member.search_text = fold(f"{member.name} {member.business_name}")[:SEARCH_TEXT_LENGTH]


class ChannelIdentity(Timestamped, Base):
    """How a member is reached on one channel: the Telegram user id, the WhatsApp number."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    # Set when the platform says the person blocked the bot; cleared when they write again.
    unreachable_at: Mapped[datetime | None]
    # When the person last wrote on this channel: WhatsApp lets a business write freely only
    # within 24 hours of it (outside, an approved template).
    last_inbound_at: Mapped[datetime | None]

    member: Mapped[Member] = relationship(back_populates="identities")


class LinkCode(Timestamped, Base):
    """A short code shown to a member on one channel, typed on another to link it to the same
    profile (`handlers/linking.py`). One per member at a time; used once, then deleted."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True
    )
    code: Mapped[str] = mapped_column(String(12), unique=True)
    expires_at: Mapped[datetime]


class SharedFile(Timestamped, Base):
    """A file the bot's web app serves under an unguessable address, for a channel that takes
    media only as a URL (WhatsApp): a photo of an announcement, a meeting's calendar file, a
    person's `/misdatos`. Kept until `expires_at`, then pruned; one that is a person's data
    names them (`member_id`), so erasing them deletes it at once."""

    __tablename__ = "shared_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(80))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    # What it is a copy of ("telegram-photo:<file_id>"), so one photo sent to a thousand
    # WhatsApp members is fetched and stored once.
    source: Mapped[str | None] = mapped_column(String(255), unique=True)
    expires_at: Mapped[datetime]


class Membership(Timestamped, Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("member_id", "barrio_id"),
        Index("ix_memberships_barrio_status", "barrio_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    barrio_id: Mapped[int] = mapped_column(ForeignKey("barrios.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(_str_enum(Role), default=Role.MEMBER)
    status: Mapped[MembershipStatus] = mapped_column(
        _str_enum(MembershipStatus), default=MembershipStatus.PENDING
    )
    decided_at: Mapped[datetime | None]
    # Why a coordinator turned the request down, as the applicant is told it: a key of
    # `texts.REJECTION_REASONS`, or "other" with the coordinator's own words in the note;
    # None: no reason given.
    rejection_reason: Mapped[str | None] = mapped_column(String(20))
    rejection_note: Mapped[str | None] = mapped_column(String(200))
    # A coordinator's own choice of how the barrio's members and applicants may reach them
    # (a phone or a short text); only while they coordinate the barrio.
    contact: Mapped[str | None] = mapped_column(String(120))

    member: Mapped[Member] = relationship(back_populates="memberships")
    barrio: Mapped[Barrio] = relationship()


class Conversation(Base):
    """Where a person is in a dialogue, keyed by channel address so it exists before a Member."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    flow: Mapped[str | None] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Stamped on every change by `stamp_from_clock`.
    updated_at: Mapped[datetime]


class Delivery(Timestamped, Base):
    """One outbound message to one recipient on one channel: the durable outbox."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # Each channel's outbox lane picks its own due rows in this order (scheduler/outbox.py).
        Index(
            "ix_deliveries_status_channel_priority",
            "status",
            "channel",
            "priority",
            "not_before",
            "id",
        ),
        Index("ix_deliveries_broadcast", "broadcast", "status"),
        # Status callbacks name the platform's message id.
        Index("ix_deliveries_platform_message", "channel", "platform_message_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    # The person the text is about (a join request names the applicant): erasing that person
    # deletes these messages too.
    about_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    # The barrio this message is for, when it is one barrio's business: leaving that barrio
    # withdraws what is still queued.
    barrio_id: Mapped[int | None] = mapped_column(
        ForeignKey("barrios.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    photo: Mapped[str | None] = mapped_column(String(255))
    # What this message is part of ("announcement:12", "alert:3"), for progress and reports.
    broadcast: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    status: Mapped[DeliveryStatus] = mapped_column(
        _str_enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(255))
    # A message whose words depend on when it arrives (a reminder says "mañana" or "hoy") names
    # its template and parameters and is rendered by the dispatcher as it is sent; `text` is
    # then what was rendered when queued, replaced by what went out.
    template: Mapped[str | None] = mapped_column(String(32))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Not sent at all after this instant (status `expired`): a reminder held by quiet hours
    # past the start of its meeting.
    expires_at: Mapped[datetime | None]
    # What the platform said after the send, where it tells (WhatsApp's status callbacks):
    # "delivered", then "read"; never back.
    receipt: Mapped[str | None] = mapped_column(String(16))
    # When this row was last marked `sending`, by the dispatcher's clock; None in any other
    # status. A row `sending` far longer than any send takes was left by a process that died.
    sending_since: Mapped[datetime | None]


class EarlyReceipt(Base):
    """A status callback that came before the outbox had written which of its rows the message
    was (its outcome is written per window, after the sends): kept until that row names the
    message id, then applied to it and deleted. Holds no personal data, only the platform's
    message id and what it said; one the bot never recorded is pruned after a day."""

    __tablename__ = "early_receipts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_message_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]


class Announcement(Timestamped, Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    barrio_ids: Mapped[list[int]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(255))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime | None]


class SecurityAlert(Timestamped, Base):
    __tablename__ = "security_alerts"
    __table_args__ = (Index("ix_security_alerts_author_created", "author_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    barrio_id: Mapped[int] = mapped_column(ForeignKey("barrios.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    kind: Mapped[AlertKind] = mapped_column(_str_enum(AlertKind))
    description: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    status: Mapped[AlertStatus] = mapped_column(_str_enum(AlertStatus), default=AlertStatus.OPEN)
    closed_at: Mapped[datetime | None]

    barrio: Mapped[Barrio] = relationship()


class InboundUpdate(Base):
    """An update or webhook as received, stored before it is acknowledged to the platform.

    The payload holds what the person sent; it is emptied as soon as the turn is handled. The
    row itself stays a day, only so that a redelivery is recognised (see bot/inbound.py)."""

    __tablename__ = "inbound_updates"
    # Telegram numbers updates afresh after a week of silence (and an emulator at every start):
    # the id alone does not tell a redelivery from a new update, the content does.
    __table_args__ = (UniqueConstraint("channel", "platform_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[str] = mapped_column(String(64))
    # A short hash of the payload: equal for a redelivery, different for a new update.
    fingerprint: Mapped[str] = mapped_column(String(16), server_default="")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None] = mapped_column(index=True)


class Meeting(Timestamped, Base):
    __tablename__ = "meetings"
    __table_args__ = (
        Index("ix_meetings_barrio_starts", "barrio_id", "starts_at"),
        UniqueConstraint("series_id", "occurrence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    barrio_id: Mapped[int] = mapped_column(ForeignKey("barrios.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(80))
    starts_at: Mapped[datetime]
    place: Mapped[str] = mapped_column(String(120))
    agenda: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[MeetingStatus] = mapped_column(
        _str_enum(MeetingStatus), default=MeetingStatus.SCHEDULED
    )
    # Bumped on every change, as calendar apps expect of an updated .ics.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # An occurrence of a recurring meeting: its series, and the local wall time the rule gave
    # it ("2026-12-03T19:00"), which stays its identity (RECURRENCE-ID, EXDATE) when it is
    # moved, and makes creating it twice (two replicas) impossible.
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_series.id", ondelete="CASCADE")
    )
    occurrence: Mapped[str | None] = mapped_column(String(16))

    barrio: Mapped[Barrio] = relationship()
    series: Mapped[MeetingSeries | None] = relationship()


class MeetingSeries(Timestamped, Base):
    """A recurring meeting: a rule (RFC 5545 RRULE) read from the coordinator's words. Its
    occurrences are created as `Meeting` rows a bounded time ahead (`handlers/series.py`)."""

    __tablename__ = "meeting_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    barrio_id: Mapped[int] = mapped_column(ForeignKey("barrios.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(80))
    place: Mapped[str] = mapped_column(String(120))
    agenda: Mapped[str] = mapped_column(Text, default="")
    rule: Mapped[str] = mapped_column(String(120))
    # The first occurrence's local wall time ("2026-12-03T19:00"): DTSTART in the barrio's zone.
    starts_local: Mapped[str] = mapped_column(String(16))
    # Occurrences exist up to here; the next ones are created as time goes by.
    planned_until: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    barrio: Mapped[Barrio] = relationship()


class MeetingInvitation(Base):
    """Who was invited to a meeting: the members the invitation was queued for (or, for an
    occurrence of a series, the barrio's members when it was created)."""

    __tablename__ = "meeting_invitations"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    invited_at: Mapped[datetime]


class Rsvp(Base):
    __tablename__ = "rsvps"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    answer: Mapped[RsvpAnswer] = mapped_column(_str_enum(RsvpAnswer))
    answered_at: Mapped[datetime]


class FundingCall(Timestamped, Base):
    """A call for funding (Sercotec's or another's). Its audience is a list of barrios or a
    whole region."""

    __tablename__ = "funding_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(300))
    region: Mapped[str | None] = mapped_column(String(80))
    barrio_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date, index=True)
    # Withdrawn by a coordinator: no longer listed, its reminders gone.
    withdrawn_at: Mapped[datetime | None]


class Reminder(Timestamped, Base):
    """One reminder due at one instant: the database is the schedule. Firing claims the row
    (conditional update) and writes its outbox rows in the same transaction, so two processes
    on one database, or a crash half-way, fire it once (scheduler/reminders.py)."""

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # What it is for, unique: planning the same reminder twice (two replicas) adds nothing.
    key: Mapped[str] = mapped_column(String(96), unique=True)
    kind: Mapped[ReminderKind] = mapped_column(_str_enum(ReminderKind))
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    funding_call_id: Mapped[int | None] = mapped_column(
        ForeignKey("funding_calls.id", ondelete="CASCADE"), index=True
    )
    # The time zone whose members it is for (funding-call deadlines, the weekly digest).
    zone: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime]
    status: Mapped[ReminderStatus] = mapped_column(
        _str_enum(ReminderStatus), default=ReminderStatus.PENDING
    )
    done_at: Mapped[datetime | None]
    # How many messages it queued, or why it was skipped.
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(String(64))


SESSION_CLOCK = "clock"


@event.listens_for(Session, "before_flush")
def stamp_from_clock(session: Session, _context: Any, _instances: Any) -> None:
    """Creation and change stamps come from the clock the session was built with
    (`models.db.session_factory`), the same clock the runtime decides with: a test that moves
    the clock moves every stamp, on any day of the year."""
    changed = [c for c in session.dirty if isinstance(c, Conversation) and session.is_modified(c)]
    if not session.new and not changed:
        return
    clock = session.info.get(SESSION_CLOCK)
    if clock is None:
        raise RuntimeError("session without a clock: build it with models.db.session_factory")
    now = clock()
    for row in session.new:
        if isinstance(row, Timestamped) and row.created_at is None:
            row.created_at = now
        if isinstance(row, Conversation):
            row.updated_at = now
    for conversation in changed:
        conversation.updated_at = now
