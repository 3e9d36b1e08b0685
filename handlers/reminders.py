"""Reminders: what is due when, who gets it, and its words at the moment it is sent.

Every reminder is a `Reminder` row planned here when its meeting or call is created, moved,
withdrawn or cancelled; `scheduler/reminders.py` only decides when to look, claims due rows and
calls `fire` in the transaction that marks them fired. A reminder's deliveries carry a template,
so `render` gives them their words ("mañana", "hoy", the days left) as they go out, and drops one
whose meeting has started, was cancelled or was declined meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from handlers import texts
from handlers.core import Option, Rendered
from handlers.outbox import enqueue, enqueue_per_barrio, quiet_until, recipients_among
from models import (
    Barrio,
    Delivery,
    DeliveryStatus,
    FundingCall,
    Meeting,
    MeetingInvitation,
    MeetingStatus,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Rsvp,
    RsvpAnswer,
)

log = logging.getLogger(__name__)

DEFAULT_REMINDER_MINUTES = (24 * 60, 2 * 60)
# At most this many offsets per barrio, each at most two weeks ahead: enough for "48 h + 3 h".
MAX_REMINDERS = 3
MAX_REMINDER_MINUTES = 14 * 24 * 60
CALL_REMINDER_DAYS = (7, 1)
# Deadline reminders go out at this local hour, well inside the day.
CALL_REMINDER_AT = time(10, 0)
MEETING_TEMPLATE = "meeting_reminder"
CALL_TEMPLATE = "call_reminder"
# A meeting's invitation or change notice (`handlers/meetings.news_words`).
MEETING_NEWS_TEMPLATE = "meeting_news"


def barrio_zone(barrio: Barrio, default: ZoneInfo) -> ZoneInfo:
    return ZoneInfo(barrio.timezone) if barrio.timezone else default


def reminder_minutes(barrio: Barrio) -> tuple[int, ...]:
    minutes = barrio.reminder_minutes
    return tuple(minutes) if minutes is not None else DEFAULT_REMINDER_MINUTES


def describe_offsets(minutes: Sequence[int]) -> str:
    """ "24 h y 2 h antes", "3 h antes", or "sin recordatorios"."""
    if not minutes:
        return texts.REMINDERS_NONE
    parts = [f"{m // 60} h" if m % 60 == 0 else f"{m // 60} h {m % 60} min" for m in minutes]
    words = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " y " + parts[-1]
    return texts.REMINDERS_BEFORE.format(offsets=words)


# --- planning ---------------------------------------------------------------------------------
async def add_reminders(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert reminders whose key is new; an existing key (the same reminder, planned again by
    a second process or a second start) is left as it is."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql_insert(Reminder).on_conflict_do_nothing(index_elements=["key"])
    elif dialect == "sqlite":
        statement = sqlite_insert(Reminder).on_conflict_do_nothing(index_elements=["key"])
    else:  # pragma: no cover - only the two databases above are supported
        statement = insert(Reminder)
    await session.execute(statement, list(rows))


async def plan_meeting(session: AsyncSession, meeting: Meeting, now: datetime) -> None:
    """The meeting's reminders from scratch: those not fired go, those still ahead are written
    for its current date. Called when it is created or moved, or its barrio's offsets change.
    Reminders already fired and held by quiet hours stay queued: they are rendered, and
    expire, by the meeting as it is when they go out."""
    await session.execute(
        delete(Reminder).where(
            Reminder.meeting_id == meeting.id,
            Reminder.kind == ReminderKind.MEETING,
            Reminder.status == ReminderStatus.PENDING,
        )
    )
    await session.execute(
        update(Delivery)
        .where(
            Delivery.template == MEETING_TEMPLATE,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.broadcast == f"reminder:meeting:{meeting.id}",
        )
        .values(expires_at=meeting.starts_at)
    )
    if meeting.status != MeetingStatus.SCHEDULED:
        return
    barrio = meeting.barrio if "barrio" in meeting.__dict__ else None
    if barrio is None:
        barrio = await session.get(Barrio, meeting.barrio_id)
    assert barrio is not None
    rows = []
    for minutes in reminder_minutes(barrio):
        due = meeting.starts_at - timedelta(minutes=minutes)  # real hours: UTC arithmetic
        if due > now:
            rows.append(
                {
                    "key": f"meeting:{meeting.id}:{minutes}:{meeting.starts_at:%Y%m%dT%H%M}",
                    "kind": ReminderKind.MEETING,
                    "meeting_id": meeting.id,
                    "due_at": due,
                    "status": ReminderStatus.PENDING,
                    "recipients": 0,
                    "created_at": now,
                }
            )
    await add_reminders(session, rows)


async def drop_meeting_reminders(session: AsyncSession, meeting_id: int) -> None:
    """The meeting is cancelled: its reminders, planned or queued, go."""
    await session.execute(
        delete(Reminder).where(
            Reminder.meeting_id == meeting_id,
            Reminder.kind == ReminderKind.MEETING,
            Reminder.status == ReminderStatus.PENDING,
        )
    )
    # Reminders queued and not sent yet say nothing true any more.
    await session.execute(
        delete(Delivery).where(
            Delivery.template == MEETING_TEMPLATE,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.broadcast == f"reminder:meeting:{meeting_id}",
        )
    )


async def replan_barrio(session: AsyncSession, barrio: Barrio, now: datetime) -> int:
    """After a barrio's offsets change: every meeting still ahead gets the new ones."""
    meetings = (
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.barrio_id == barrio.id,
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at > now,
            )
            .options(selectinload(Meeting.barrio))
        )
    ).all()
    for meeting in meetings:
        await plan_meeting(session, meeting, now)
    return len(meetings)


async def call_zones(session: AsyncSession, call: FundingCall, default: ZoneInfo) -> set[str]:
    barrios = (await session.scalars(select(Barrio).where(_call_barrios(call)))).all()
    return {str(barrio_zone(b, default)) for b in barrios}


def _call_barrios(call: FundingCall) -> Any:
    if call.region is not None:
        return Barrio.region == call.region
    return Barrio.id.in_(call.barrio_ids or [-1])


async def plan_call(
    session: AsyncSession, call: FundingCall, now: datetime, default: ZoneInfo
) -> None:
    """7 days and 1 day before the call closes, at 10:00 in each zone of its audience.
    Deadline reminders already queued stay: their words and whether they still go are decided
    as they are sent, by the call as it is then."""
    await session.execute(
        delete(Reminder).where(
            Reminder.funding_call_id == call.id, Reminder.status == ReminderStatus.PENDING
        )
    )
    await session.execute(
        update(Delivery)
        .where(
            Delivery.template == CALL_TEMPLATE,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.broadcast == f"reminder:call:{call.id}",
        )
        .values(expires_at=None)
    )
    if call.withdrawn_at is not None:
        return
    rows = []
    for zone_name in sorted(await call_zones(session, call, default)):
        zone = ZoneInfo(zone_name)
        for days in CALL_REMINDER_DAYS:
            day = call.closes_on - timedelta(days=days)
            due = _local(day, CALL_REMINDER_AT, zone)
            if due > now and day >= call.opens_on:
                rows.append(
                    {
                        "key": f"call:{call.id}:{days}:{call.closes_on}:{zone_name}",
                        "kind": ReminderKind.FUNDING,
                        "funding_call_id": call.id,
                        "zone": zone_name,
                        "due_at": due,
                        "status": ReminderStatus.PENDING,
                        "recipients": 0,
                        "created_at": now,
                    }
                )
    await add_reminders(session, rows)


async def drop_call_reminders(session: AsyncSession, call_id: int) -> None:
    """The call is withdrawn: its reminders, planned or queued, go."""
    await session.execute(
        delete(Reminder).where(
            Reminder.funding_call_id == call_id, Reminder.status == ReminderStatus.PENDING
        )
    )
    await session.execute(
        delete(Delivery).where(
            Delivery.template == CALL_TEMPLATE,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.broadcast == f"reminder:call:{call_id}",
        )
    )


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


# --- firing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fired:
    """What firing one reminder did: the people it was queued for, those dropped because
    their quiet hours would hold it past the meeting, or why it was skipped."""

    queued: int = 0
    dropped: int = 0
    skipped: str | None = None


async def _fire_meeting(
    session: AsyncSession, reminder: Reminder, now: datetime, default: ZoneInfo
) -> Fired:
    meeting = await _meeting(session, reminder.meeting_id)
    if meeting is None or meeting.status != MeetingStatus.SCHEDULED:
        return Fired(skipped="meeting cancelled")
    if meeting.starts_at <= now:
        return Fired(skipped="meeting started")
    if await _a_later_one_is_due(session, reminder, Reminder.meeting_id == meeting.id, now):
        return Fired(skipped="a later reminder is due too")
    audience = await reminder_audience(session, meeting)
    return await queue_meeting_reminder(session, meeting, audience, now, default)


async def _a_later_one_is_due(
    session: AsyncSession, reminder: Reminder, same_subject: ColumnElement[bool], now: datetime
) -> bool:
    """Fell due while the bot was down, together with a later reminder of the same meeting or
    call (and zone): one reminder, the nearer, is enough."""
    later = await session.scalar(
        select(Reminder.id)
        .where(
            same_subject,
            Reminder.kind == reminder.kind,
            Reminder.zone.is_(None) if reminder.zone is None else Reminder.zone == reminder.zone,
            Reminder.status == ReminderStatus.PENDING,
            Reminder.due_at > reminder.due_at,
            Reminder.due_at <= now,
        )
        .limit(1)
    )
    return later is not None


async def reminder_audience(
    session: AsyncSession, meeting: Meeting, *, unanswered_only: bool = False
) -> list[int]:
    """Active members of the meeting's barrio who said Asistiré or Tal vez, and those invited
    who have not answered. Who said No podré gets nothing."""
    answers = dict(
        (
            await session.execute(
                select(Rsvp.member_id, Rsvp.answer).where(Rsvp.meeting_id == meeting.id)
            )
        ).all()
    )
    invited = set(
        (
            await session.scalars(
                select(MeetingInvitation.member_id).where(
                    MeetingInvitation.meeting_id == meeting.id
                )
            )
        ).all()
    )
    active = set(
        (
            await session.scalars(
                select(Membership.member_id).where(
                    Membership.barrio_id == meeting.barrio_id,
                    Membership.status == MembershipStatus.ACTIVE,
                )
            )
        ).all()
    )
    unanswered = {m for m in invited if m not in answers}
    if unanswered_only:
        chosen = unanswered
    else:
        coming = {m for m, a in answers.items() if a in (RsvpAnswer.YES, RsvpAnswer.MAYBE)}
        chosen = unanswered | coming
    return sorted(chosen & active)


async def queue_meeting_reminder(
    session: AsyncSession,
    meeting: Meeting,
    member_ids: Sequence[int],
    now: datetime,
    default: ZoneInfo,
) -> Fired:
    """Queue the reminder of `meeting` to `member_ids`. Quiet hours hold it; a recipient it
    would reach only after the meeting has started gets none (counted)."""
    zone = barrio_zone(meeting.barrio, default)
    recipients = await recipients_among(session, Member.id.in_(list(member_ids)))
    answered = set(
        (
            await session.scalars(
                select(Rsvp.member_id).where(
                    Rsvp.meeting_id == meeting.id, Rsvp.member_id.in_(list(member_ids))
                )
            )
        ).all()
    )
    # Counted per person: one reached on any channel is reached; one whose every reachable
    # address is held past the start is dropped.
    reachable = [r for r in recipients if not r.unreachable]
    in_time = {
        r.member_id
        for r in reachable
        if quiet_until(now, zone, r.quiet_start, r.quiet_end) < meeting.starts_at
    }
    dropped = len({r.member_id for r in reachable} - in_time)
    for has_answer in (False, True):
        group = [r for r in recipients if (r.member_id in answered) == has_answer]
        if not group:
            continue
        text, options = meeting_reminder_words(meeting, zone, now, answered=has_answer)
        await enqueue(
            session,
            group,
            text,
            now=now,
            zone=zone,
            options=options,
            priority=Priority.NOTICE,
            broadcast=f"reminder:meeting:{meeting.id}",
            barrio_id=meeting.barrio_id,
            template=MEETING_TEMPLATE,
            params={"meeting": meeting.id},
            expires_at=meeting.starts_at,
        )
    if dropped:
        log.info(
            "meeting %s: %d reminders dropped (quiet hours past its start)", meeting.id, dropped
        )
    return Fired(queued=len(in_time), dropped=dropped)


def meeting_reminder_words(
    meeting: Meeting, zone: ZoneInfo, now: datetime, *, answered: bool
) -> tuple[str, list[Option]]:
    from handlers.meetings import calendar_option, meeting_card, rsvp_options

    card = meeting_card(meeting, zone, now)
    if answered:
        return texts.REMINDER_MEETING.format(card=card), [calendar_option(meeting.id)]
    return texts.REMINDER_MEETING_UNANSWERED.format(card=card), rsvp_options(meeting.id)


async def _meeting(session: AsyncSession, meeting_id: int | None) -> Meeting | None:
    if meeting_id is None:
        return None
    return await session.scalar(
        select(Meeting).where(Meeting.id == meeting_id).options(selectinload(Meeting.barrio))
    )


async def _fire_call(
    session: AsyncSession, reminder: Reminder, now: datetime, default: ZoneInfo
) -> Fired:
    call = await session.get(FundingCall, reminder.funding_call_id)
    zone = ZoneInfo(reminder.zone) if reminder.zone else default
    if call is None or call.withdrawn_at is not None:
        return Fired(skipped="call withdrawn")
    today = now.astimezone(zone).date()
    if call.closes_on < today:
        return Fired(skipped="call closed")
    if await _a_later_one_is_due(session, reminder, Reminder.funding_call_id == call.id, now):
        return Fired(skipped="a later reminder is due too")
    barrios = (await session.scalars(select(Barrio).where(_call_barrios(call)))).all()
    zone_of = {b.id: str(barrio_zone(b, default)) for b in barrios}
    # One reminder per person: from the zone of their first barrio of the audience.
    home: dict[int, int] = {}
    rows = await session.execute(
        select(Membership.member_id, Membership.barrio_id)
        .where(
            Membership.barrio_id.in_(list(zone_of)), Membership.status == MembershipStatus.ACTIVE
        )
        .order_by(Membership.id)
    )
    for member_id, barrio_id in rows.all():
        home.setdefault(member_id, barrio_id)
    member_ids = [m for m, b in home.items() if zone_of[b] == str(zone)]
    recipients = await recipients_among(session, Member.id.in_(list(member_ids)))
    text = call_reminder_words(call, today)
    # Leaving the barrio it reaches someone through withdraws it while quiet hours hold it.
    await enqueue_per_barrio(
        session,
        recipients,
        list(zone_of),
        text,
        now=now,
        zone=zone,
        priority=Priority.BROADCAST,
        broadcast=f"reminder:call:{call.id}",
        template=CALL_TEMPLATE,
        params={"call": call.id, "zone": str(zone)},
        expires_at=_local(call.closes_on + timedelta(days=1), time(0, 0), zone),
    )
    return Fired(queued=len({r.member_id for r in recipients if not r.unreachable}))


def call_reminder_words(call: FundingCall, today: date) -> str:
    from handlers.funding import card, days_left_line

    return texts.REMINDER_CALL.format(card=card(call) + days_left_line(call, today))


# --- rendering as sent ------------------------------------------------------------------------
async def render(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime, default: ZoneInfo
) -> dict[int, Rendered | None]:
    """Words for templated deliveries about to be sent; None for one that must not go (its
    meeting started, was cancelled or declined; its call closed or was withdrawn)."""
    out: dict[int, Rendered | None] = {}
    from handlers.meetings import SERIES_INVITE, news_words

    about_meetings = (MEETING_TEMPLATE, MEETING_NEWS_TEMPLATE)
    meeting_ids = {
        int(d.params["meeting"]) for d in deliveries if d.template in about_meetings and d.params
    }
    meetings = {
        m.id: m
        for m in (
            await session.scalars(
                select(Meeting)
                .where(Meeting.id.in_(meeting_ids))
                .options(selectinload(Meeting.barrio))
            )
        ).all()
    }
    answers: dict[tuple[int, int], RsvpAnswer] = {}
    if meeting_ids:
        rows = await session.execute(
            select(Rsvp.meeting_id, Rsvp.member_id, Rsvp.answer).where(
                Rsvp.meeting_id.in_(meeting_ids),
                Rsvp.member_id.in_({d.member_id for d in deliveries if d.member_id}),
            )
        )
        answers = {(m, p): a for m, p, a in rows.all()}
    series_next: dict[int | None, Meeting | None] = {}
    for delivery in deliveries:
        params = delivery.params or {}
        if delivery.template == MEETING_TEMPLATE:
            meeting = meetings.get(int(params.get("meeting", 0)))
            answer = answers.get((meeting.id, delivery.member_id or 0)) if meeting else None
            if (
                meeting is None
                or meeting.status != MeetingStatus.SCHEDULED
                or meeting.starts_at <= now
                or answer == RsvpAnswer.NO
            ):
                out[delivery.id] = None
                continue
            zone = barrio_zone(meeting.barrio, default)
            text, options = meeting_reminder_words(meeting, zone, now, answered=answer is not None)
            out[delivery.id] = Rendered(text, options)
        elif delivery.template == MEETING_NEWS_TEMPLATE:
            meeting = meetings.get(int(params.get("meeting", 0)))
            if meeting is not None and params.get("news") == SERIES_INVITE:
                # A series' invitation answers its first date still ahead, whichever it is now.
                if meeting.series_id not in series_next:
                    series_next[meeting.series_id] = await _next_date(session, meeting, now)
                meeting = series_next[meeting.series_id]
            out[delivery.id] = (
                news_words(meeting, barrio_zone(meeting.barrio, default), now, params)
                if meeting is not None
                else None
            )
        elif delivery.template == CALL_TEMPLATE:
            call = await session.get(FundingCall, int(params.get("call", 0)))
            zone = ZoneInfo(str(params.get("zone") or default))
            today = now.astimezone(zone).date()
            if call is None or call.withdrawn_at is not None or call.closes_on < today:
                out[delivery.id] = None
                continue
            out[delivery.id] = Rendered(call_reminder_words(call, today), [])
    return out


async def _next_date(session: AsyncSession, meeting: Meeting, now: datetime) -> Meeting | None:
    """`meeting` if it is still ahead, else the next date of its series that is."""
    if meeting.status == MeetingStatus.SCHEDULED and meeting.starts_at > now:
        return meeting
    return await session.scalar(
        select(Meeting)
        .where(
            Meeting.series_id == meeting.series_id,
            Meeting.status == MeetingStatus.SCHEDULED,
            Meeting.starts_at > now,
        )
        .order_by(Meeting.starts_at)
        .limit(1)
        .options(selectinload(Meeting.barrio))
    )


Firer = Callable[[AsyncSession, Reminder, datetime, ZoneInfo], Awaitable[Fired]]
# What fires each kind (the digest adds its own, `handlers/digest.py`). A firer queues what the
# reminder sends, in the transaction that claimed it.
FIRERS: dict[ReminderKind, Firer] = {
    ReminderKind.MEETING: _fire_meeting,
    ReminderKind.FUNDING: _fire_call,
}


async def plan_missing(session: AsyncSession, now: datetime, default: ZoneInfo) -> None:
    """Meetings ahead and calls still open that have no reminders at all (created before
    reminders existed): plan them. Runs at every start, so nothing waits for a change."""
    has_reminder = select(Reminder.id).where(Reminder.meeting_id == Meeting.id).exists()
    meetings = (
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at > now,
                ~has_reminder,
            )
            .options(selectinload(Meeting.barrio))
        )
    ).all()
    for meeting in meetings:
        await plan_meeting(session, meeting, now)
    call_has_reminder = select(Reminder.id).where(Reminder.funding_call_id == FundingCall.id)
    calls = (
        await session.scalars(
            select(FundingCall).where(
                FundingCall.withdrawn_at.is_(None),
                FundingCall.closes_on >= (now - timedelta(days=1)).date(),
                ~call_has_reminder.exists(),
            )
        )
    ).all()
    for call in calls:
        await plan_call(session, call, now, default)
