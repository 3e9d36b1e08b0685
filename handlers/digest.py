"""The weekly digest: on Mondays at 09:00 in the barrio's zone, to members who asked for it
(`/resumen`), the week's meetings of their barrios with their own answer, the calls open with
their days left, and how many joined. A member with nothing to report that week gets nothing.

One `Reminder` per zone and week; firing it plans the next week's, and `plan_next` (at every
start) makes sure each zone in use has one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from handlers import texts
from handlers.common import active_memberships, main_menu, require_member
from handlers.core import Option, Turn
from handlers.funding import days_left_line
from handlers.outbox import enqueue, recipients_of
from handlers.reminders import Fired, add_reminders, barrio_zone
from handlers.when import describe_when
from models import (
    Barrio,
    FundingCall,
    Meeting,
    MeetingStatus,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    Reminder,
    ReminderKind,
    ReminderStatus,
    Rsvp,
)

FLOW = "dig"
DIGEST_WEEKDAY = 0  # Monday
DIGEST_AT = time(9, 0)


# --- the member's choice ------------------------------------------------------------------------
async def show(turn: Turn, _args: str = "") -> None:
    member = require_member(turn)
    if member is None:
        return
    state = texts.DIGEST_IS_ON if member.weekly_digest else texts.DIGEST_IS_OFF
    option = (
        Option(texts.DIGEST_TURN_OFF, f"{FLOW}:off")
        if member.weekly_digest
        else Option(texts.DIGEST_TURN_ON, f"{FLOW}:on")
    )
    turn.say(f"{texts.DIGEST_EXPLAINED}\n\n{state}", [option, *main_menu(member)[:1]])


async def on_button(turn: Turn, action: str, _arg: str) -> bool:
    member = require_member(turn)
    if member is None:
        return True
    if action not in ("on", "off"):
        return False
    member.weekly_digest = action == "on"
    if member.weekly_digest:
        # A barrio created since the last planning has no Monday yet.
        await plan_next(turn.session, turn.now, turn.default_zone)
        turn.planned = True
    turn.say(texts.DIGEST_ON if member.weekly_digest else texts.DIGEST_OFF, main_menu(member))
    return True


# --- planning and firing -------------------------------------------------------------------------
def next_digest(now: datetime, zone: ZoneInfo) -> datetime:
    """The first Monday 09:00 in `zone` strictly after `now` (UTC)."""
    today = now.astimezone(zone).date()
    day = today + timedelta(days=(DIGEST_WEEKDAY - today.weekday()) % 7)
    moment = datetime.combine(day, DIGEST_AT, tzinfo=zone).astimezone(UTC)
    if moment <= now:
        moment = datetime.combine(day + timedelta(days=7), DIGEST_AT, tzinfo=zone).astimezone(UTC)
    return moment


def _row(zone: ZoneInfo, due: datetime, now: datetime) -> dict[str, object]:
    week = due.astimezone(zone).date()
    return {
        "key": f"digest:{zone}:{week}",
        "kind": ReminderKind.DIGEST,
        "zone": str(zone),
        "due_at": due,
        "status": ReminderStatus.PENDING,
        "recipients": 0,
        "created_at": now,
    }


async def plan_next(session: AsyncSession, now: datetime, default: ZoneInfo) -> None:
    zones = {barrio_zone(b, default) for b in (await session.scalars(select(Barrio))).all()}
    await add_reminders(session, [_row(zone, next_digest(now, zone), now) for zone in zones])


async def fire(
    session: AsyncSession, reminder: Reminder, now: datetime, default: ZoneInfo
) -> Fired:
    zone = ZoneInfo(reminder.zone) if reminder.zone else default
    await add_reminders(session, [_row(zone, next_digest(now, zone), now)])
    week_start = reminder.due_at.astimezone(zone).date()
    today = now.astimezone(zone).date()
    if today >= week_start + timedelta(days=7):
        return Fired(skipped="its week is over")
    members = (
        await session.scalars(
            select(Member)
            .where(Member.weekly_digest.is_(True))
            .options(
                selectinload(Member.memberships).selectinload(Membership.barrio),
                selectinload(Member.identities),
            )
        )
    ).all()
    queued = 0
    week_end = datetime.combine(week_start + timedelta(days=7), time(0), tzinfo=zone)
    for member in members:
        barrios = [m.barrio for m in active_memberships(member)]
        # One digest per person: in the zone of their first barrio.
        if not barrios or barrio_zone(barrios[0], default) != zone:
            continue
        text = await digest_text(session, member, barrios, now, zone, week_start)
        if text is None:
            continue
        queued += await enqueue(
            session,
            recipients_of(member),
            text,
            now=now,
            zone=zone,
            priority=Priority.BROADCAST,
            broadcast=f"digest:{week_start}",
            expires_at=week_end.astimezone(UTC),
        )
    return Fired(queued=queued)


async def digest_text(
    session: AsyncSession,
    member: Member,
    barrios: list[Barrio],
    now: datetime,
    zone: ZoneInfo,
    week_start: date,
) -> str | None:
    """The member's digest for the week starting on `week_start`, or None if nothing to say."""
    barrio_ids = [b.id for b in barrios]
    start = datetime.combine(week_start, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(week_start + timedelta(days=7), time(0), tzinfo=zone).astimezone(UTC)
    meetings = (
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.barrio_id.in_(barrio_ids),
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at >= max(start, now),
                Meeting.starts_at < end,
            )
            .order_by(Meeting.starts_at)
            .options(selectinload(Meeting.barrio))
        )
    ).all()
    answers = dict(
        (
            await session.execute(
                select(Rsvp.meeting_id, Rsvp.answer).where(
                    Rsvp.member_id == member.id, Rsvp.meeting_id.in_([m.id for m in meetings])
                )
            )
        ).all()
    )
    today = now.astimezone(zone).date()
    regions = {b.region for b in barrios}
    calls = [
        call
        for call in (
            await session.scalars(
                select(FundingCall)
                .where(
                    FundingCall.withdrawn_at.is_(None),
                    FundingCall.opens_on <= today,
                    FundingCall.closes_on >= today,
                )
                .order_by(FundingCall.closes_on)
            )
        ).all()
        if call.region in regions or set(barrio_ids) & set(call.barrio_ids)
    ]
    joined = await session.scalar(
        select(func.count(func.distinct(Membership.member_id))).where(
            Membership.barrio_id.in_(barrio_ids),
            Membership.status == MembershipStatus.ACTIVE,
            Membership.decided_at >= now - timedelta(days=7),
            Membership.member_id != member.id,
        )
    )
    if not meetings and not calls and not joined:
        return None
    parts = [texts.DIGEST_TITLE]
    if meetings:
        lines = []
        for meeting in meetings:
            answer = answers.get(meeting.id)
            lines.append(
                texts.DIGEST_MEETING.format(
                    # Without "hoy"/"mañana": quiet hours may hold the digest past the day.
                    when=describe_when(meeting.starts_at, zone),
                    title=meeting.title,
                    barrio=meeting.barrio.name,
                    answer=texts.RSVP_LABELS[answer.value] if answer else texts.DIGEST_NO_ANSWER,
                )
            )
        parts.append(texts.DIGEST_MEETINGS + "\n" + "\n".join(lines))
    if calls:
        lines = [
            texts.DIGEST_CALL.format(name=c.name, left=days_left_line(c, today).strip())
            for c in calls
        ]
        parts.append(texts.DIGEST_CALLS + "\n" + "\n".join(lines))
    if joined:
        parts.append(texts.DIGEST_JOINED.format(count=joined))
    parts.append(texts.DIGEST_FOOTER)
    return "\n\n".join(parts)
