"""Recurring meetings: a `MeetingSeries` holds the rule; its occurrences are ordinary `Meeting`
rows (with invitations and reminders) created `HORIZON` ahead and no further, so one can be
moved or cancelled like any meeting, and the series never becomes an unbounded set of rows.

The reminder loop calls `extend_all` every hour and at each start: a series whose occurrences
end within a day of the horizon gets the next ones. Extending first moves the series' mark
with a conditional update, so two processes never create the same occurrences (and the unique
(series, occurrence) pair would refuse them anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from handlers import reminders
from handlers.recurrence import Occurrence, Rule, instant, occurrences
from models import (
    Barrio,
    ChannelIdentity,
    Meeting,
    MeetingInvitation,
    MeetingSeries,
    MeetingStatus,
    Membership,
    MembershipStatus,
    queries,
)
from scheduler.outbox import traceback_without_values

log = logging.getLogger(__name__)

HORIZON = timedelta(weeks=8)
YEAR = timedelta(days=366)
# A series is extended once its last occurrence is within this of the horizon.
EXTEND_MARGIN = timedelta(days=1)


def rule_of(series: MeetingSeries) -> Rule:
    return Rule(series.rule, datetime.fromisoformat(series.starts_local))


def local_key(local: datetime) -> str:
    return local.isoformat(timespec="minutes")


async def create(
    session: AsyncSession,
    *,
    barrio: Barrio,
    author_id: int | None,
    title: str,
    place: str,
    agenda: str,
    rule: Rule,
    now: datetime,
    default: ZoneInfo,
) -> tuple[MeetingSeries, list[Meeting]]:
    series = MeetingSeries(
        barrio=barrio,
        author_id=author_id,
        title=title,
        place=place,
        agenda=agenda,
        rule=rule.rrule,
        starts_local=local_key(rule.start),
        planned_until=now,
    )
    session.add(series)
    await session.flush()
    # A rule whose first date is beyond the horizon ("el 31" asked on 1 February) still gets
    # that first date now: the series exists with at least the meeting it announces.
    first = occurrences(rule, reminders.barrio_zone(barrio, default), now, now + YEAR, limit=1)
    until = max(now + HORIZON, first[0].at) if first else now + HORIZON
    return series, await extend(session, series, now, default, until=until)


async def extend(
    session: AsyncSession,
    series: MeetingSeries,
    now: datetime,
    default: ZoneInfo,
    *,
    until: datetime | None = None,
) -> list[Meeting]:
    """Create the occurrences between what exists and `now + HORIZON`; returns them."""
    until = until or now + HORIZON
    planned = series.planned_until
    if series.ended_at is not None or planned >= until - EXTEND_MARGIN:
        return []
    claimed = await queries.updated(
        session,
        update(MeetingSeries)
        .where(
            MeetingSeries.id == series.id,
            MeetingSeries.planned_until == planned,
            MeetingSeries.ended_at.is_(None),
        )
        .values(planned_until=until),
    )
    if not claimed:
        return []  # another process extended it meanwhile
    barrio = await session.get(Barrio, series.barrio_id)
    assert barrio is not None
    zone = reminders.barrio_zone(barrio, default)
    existing = set(
        (
            await session.scalars(select(Meeting.occurrence).where(Meeting.series_id == series.id))
        ).all()
    )
    found = [
        o
        for o in occurrences(rule_of(series), zone, max(planned, now), until)
        if local_key(o.local) not in existing
    ]
    return await _create_occurrences(session, series, barrio, found, now)


async def _create_occurrences(
    session: AsyncSession,
    series: MeetingSeries,
    barrio: Barrio,
    found: Sequence[Occurrence],
    now: datetime,
) -> list[Meeting]:
    # Like a one-off invitation: the barrio's active members who can be reached, not the
    # author. Who joins later is invited to the dates created after they join.
    reachable = select(ChannelIdentity.member_id).where(ChannelIdentity.unreachable_at.is_(None))
    invited = (
        await session.scalars(
            select(Membership.member_id).where(
                Membership.barrio_id == barrio.id,
                Membership.status == MembershipStatus.ACTIVE,
                Membership.member_id != (series.author_id or 0),
                Membership.member_id.in_(reachable),
            )
        )
    ).all()
    meetings = []
    for occurrence in found:
        meeting = Meeting(
            barrio=barrio,
            author_id=series.author_id,
            title=series.title,
            starts_at=occurrence.at,
            place=series.place,
            agenda=series.agenda,
            series_id=series.id,
            occurrence=local_key(occurrence.local),
        )
        session.add(meeting)
        meetings.append(meeting)
    await session.flush()
    for meeting in meetings:
        if invited:
            await session.execute(
                insert(MeetingInvitation),
                [{"meeting_id": meeting.id, "member_id": m, "invited_at": now} for m in invited],
            )
        await reminders.plan_meeting(session, meeting, now)
    return meetings


async def extend_all(session: AsyncSession, now: datetime, default: ZoneInfo) -> None:
    due = (
        await session.scalars(
            select(MeetingSeries).where(
                MeetingSeries.ended_at.is_(None),
                MeetingSeries.planned_until < now + HORIZON - EXTEND_MARGIN,
            )
        )
    ).all()
    for series in due:
        series_id = series.id
        # Each series on its own: one that cannot be extended must not hold back the rest.
        try:
            async with session.begin_nested():
                await extend(session, series, now, default)
        except Exception as error:
            log.error("series %s not extended\n%s", series_id, traceback_without_values(error))


async def end(session: AsyncSession, series: MeetingSeries, now: datetime) -> list[Meeting]:
    """End the series: its occurrences still ahead are cancelled (returned, for telling
    those invited); those past stay as they were. False twice: conditional."""
    ended = await queries.updated(
        session,
        update(MeetingSeries)
        .where(MeetingSeries.id == series.id, MeetingSeries.ended_at.is_(None))
        .values(ended_at=now),
    )
    if not ended:
        return []
    ahead = (
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.series_id == series.id,
                Meeting.status == MeetingStatus.SCHEDULED,
                Meeting.starts_at > now,
            )
            .order_by(Meeting.starts_at)
            .options(selectinload(Meeting.barrio))
        )
    ).all()
    for meeting in ahead:
        meeting.status = MeetingStatus.CANCELLED
        meeting.sequence += 1
        await reminders.drop_meeting_reminders(session, meeting.id)
    return list(ahead)


def occurrence_instant(meeting: Meeting, zone: ZoneInfo) -> datetime | None:
    """Where the rule put this occurrence (it may have been moved since)."""
    if meeting.occurrence is None:
        return None
    return instant(datetime.fromisoformat(meeting.occurrence), zone)


async def dates_of(session: AsyncSession, series_id: int) -> list[Meeting]:
    """Every date of the series created so far, cancelled and moved ones too, in order."""
    rows = await session.scalars(
        select(Meeting).where(Meeting.series_id == series_id).order_by(Meeting.occurrence)
    )
    return list(rows.all())
