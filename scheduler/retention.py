"""Retention: finished outbox rows are personal data (who got what, and its words) kept only as
long as they serve a purpose. The runtime runs this every few hours."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import String, cast, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    Delivery,
    EarlyReceipt,
    LinkCode,
    Meeting,
    MeetingStatus,
    Reminder,
    ReminderStatus,
)
from scheduler.outbox import FINAL

log = logging.getLogger(__name__)


async def prune_deliveries(
    sessions: async_sessionmaker[AsyncSession], now: datetime, keep: timedelta
) -> int:
    """Delete finished deliveries queued more than `keep` ago; returns how many. Invitations
    to a meeting still ahead stay: moving or cancelling it tells exactly those people."""
    ahead = select(literal("meeting:") + cast(Meeting.id, String)).where(
        Meeting.status == MeetingStatus.SCHEDULED, Meeting.starts_at > now
    )
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(Delivery)
            .where(
                Delivery.status.in_(FINAL),
                Delivery.created_at < now - keep,
                Delivery.broadcast.is_(None) | Delivery.broadcast.not_in(ahead),
            )
            .execution_options(synchronize_session=False)
        )
    pruned = int(getattr(result, "rowcount", 0) or 0)
    if pruned:
        log.info("deleted %d finished deliveries older than %d days", pruned, keep.days)
    return pruned


async def prune_reminders(
    sessions: async_sessionmaker[AsyncSession], now: datetime, keep: timedelta
) -> int:
    """Delete reminders fired or skipped more than `keep` ago: the schedule's history."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(Reminder).where(
                Reminder.status != ReminderStatus.PENDING, Reminder.due_at < now - keep
            )
        )
    pruned = int(getattr(result, "rowcount", 0) or 0)
    if pruned:
        log.info("deleted %d reminders done more than %d days ago", pruned, keep.days)
    return pruned


async def prune_link_codes(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Delete link codes (`/vincular`) past their validity: they link nothing any more."""
    async with sessions() as session, session.begin():
        result = await session.execute(delete(LinkCode).where(LinkCode.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_early_receipts(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Delete status callbacks kept for a message no row came to name within a day (one sent
    just before a crash, whose row is `ambiguous`): none will."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(EarlyReceipt).where(EarlyReceipt.received_at < now - timedelta(days=1))
        )
    return int(getattr(result, "rowcount", 0) or 0)
