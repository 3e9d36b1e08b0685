"""What happens when every message of a broadcast has reached a final state, and when a
channel holds part of one back (WhatsApp's daily cap, `bot/whatsapp.py`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import announcements
from handlers.core import parse_id
from handlers.outbox import PERSONAL_PRIORITIES, quiet_until
from models import Delivery, DeliveryStatus, Member


class BroadcastReports:
    """The dispatcher's `on_broadcast_done`: routes "announcement:12" to its report."""

    def __init__(self, clock: Callable[[], datetime], zone: ZoneInfo) -> None:
        self.clock = clock
        self.zone = zone

    async def __call__(self, session: AsyncSession, broadcast: str, counts: dict[str, int]) -> None:
        announcement_id = _announcement_id(broadcast)
        if announcement_id is not None:
            await announcements.report_done(
                session, announcement_id, counts, self.clock(), self.zone
            )


def _announcement_id(broadcast: str | None) -> int | None:
    kind, _, key = (broadcast or "").partition(":")
    return parse_id(key) if kind == "announcement" else None


async def serialise(session: AsyncSession, broadcast: str | None) -> None:
    """Take the broadcast's lock for the rest of the transaction: two status callbacks of one
    broadcast handled at once must not both find its author not told yet. (A write to its
    announcement's row: a row lock on PostgreSQL, the database's write lock on SQLite.)"""
    announcement_id = _announcement_id(broadcast)
    if announcement_id is not None:
        await announcements.lock(session, announcement_id)


async def zone_of(session: AsyncSession, broadcast: str | None, default: ZoneInfo) -> ZoneInfo:
    """The zone a broadcast's times are said and its quiet hours read in."""
    announcement_id = _announcement_id(broadcast)
    if announcement_id is None:
        return default
    return await announcements.zone_of(session, announcement_id, default)


async def hold_pending(
    session: AsyncSession,
    rows: ColumnElement[bool],
    until: datetime,
    zone: ZoneInfo,
    *,
    reason: str,
) -> None:
    """The pending `rows` due before `until` wait until then, or, for a member whose quiet
    hours `until` falls in, until those end (the outbox sends a row once it is due, and
    nothing later keeps it out of their night), except personal notices, which quiet hours
    never hold (`handlers/outbox.timing`); `reason` is kept as their last error."""
    sooner = rows & (Delivery.status == DeliveryStatus.PENDING) & (Delivery.not_before < until)
    personal = Delivery.priority.in_([int(p) for p in PERSONAL_PRIORITIES])
    await session.execute(
        update(Delivery)
        .where(sooner, personal)
        .values(not_before=until, last_error=reason[:255])
        .execution_options(synchronize_session=False)
    )
    sooner = sooner & ~personal
    hours = (
        await session.execute(
            select(Member.quiet_start, Member.quiet_end)
            .select_from(Delivery)
            .outerjoin(Member, Member.id == Delivery.member_id)
            .where(sooner)
            .distinct()
        )
    ).all()
    for start, end in hours:
        alike: ColumnElement[bool] = Delivery.member_id.in_(
            select(Member.id).where(
                Member.quiet_start.is_not_distinct_from(start),
                Member.quiet_end.is_not_distinct_from(end),
            )
        )
        if start is None and end is None:
            alike = alike | Delivery.member_id.is_(None)
        await session.execute(
            update(Delivery)
            .where(sooner, alike)
            .values(not_before=quiet_until(until, zone, start, end), last_error=reason[:255])
            .execution_options(synchronize_session=False)
        )


async def held_back(
    session: AsyncSession,
    broadcast: str,
    *,
    waiting: int,
    until: datetime,
    now: datetime,
    default_zone: ZoneInfo,
    tell: bool,
) -> bool:
    """Part of `broadcast` waits until `until`: its final report comes when it truly
    finishes, and with `tell` its author hears how many wait and from when. True if a
    message was queued."""
    announcement_id = _announcement_id(broadcast)
    if announcement_id is None:
        return False
    return await announcements.report_held(
        session, announcement_id, waiting, until, now, default_zone, tell=tell
    )
