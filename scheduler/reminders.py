"""The reminder loop: looks at the `reminders` table when the next one is due, and fires it.

The database is the schedule; this loop keeps nothing of its own, so a start rebuilds it by
asking for the next due row. Firing happens in one transaction per batch: due rows are picked
`FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer anyway), each is claimed with a
conditional update (`pending` → `fired`) and its outbox rows are written before the commit. Two
processes on one database therefore fire each reminder once, and a process killed half-way
leaves its reminders `pending` for the other (or for its own next start).

A reminder that fell due while the bot was down is fired at start if it still makes sense, and
otherwise marked `skipped` with the reason, logged and counted: nothing is dropped silently
(APScheduler's `misfire_grace_time` would). APScheduler's CronTrigger is not used for reminders
either: its wall-clock arithmetic skips or doubles runs across Chile's clock changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import reminders
from handlers.reminders import Fired
from models import Reminder, ReminderKind, ReminderStatus
from scheduler.outbox import traceback_without_values

log = logging.getLogger(__name__)

# Reminders claimed per transaction: one commit for a burst, and a short one.
BATCH = 50
# The loop looks at least this often, so that a reminder planned by another process (which
# cannot wake this one) is late by at most this much.
MAX_SLEEP_S = 15.0
# Fired this long after its due time, a reminder counts as late (it fell due while stopped).
LATE_AFTER = timedelta(seconds=60)
# Planning what is missing (reminders of meetings from before reminders existed, the next
# digests, the next occurrences of recurring meetings) is repeated this often.
PLAN_EVERY_S = 3600.0
RETRY_S = 1.0
BUSY_ELSEWHERE_S = 0.5

Planner = Callable[[AsyncSession, datetime], Awaitable[None]]


@dataclass
class ReminderStats:
    fired: int = 0
    skipped: int = 0
    late: int = 0
    queued: int = 0
    # Recipients whose quiet hours would have held it past the meeting's start.
    dropped: int = 0
    failed: int = 0
    plan_failed: int = 0


class ReminderLoop:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime],
        zone: ZoneInfo,
        firers: Mapping[ReminderKind, reminders.Firer],
        planners: Sequence[Planner] = (),
        on_enqueued: Callable[[], None] | None = None,
        max_sleep_s: float = MAX_SLEEP_S,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.zone = zone
        self.firers = firers
        self.planners = planners
        self.on_enqueued = on_enqueued
        self.max_sleep_s = max_sleep_s
        self.stats = ReminderStats()
        # Set once the first look at the database is done: the schedule is rebuilt.
        self.ready = asyncio.Event()
        # Told each fired reminder's due time and when its outbox rows were committed (the
        # bench measures lateness with it).
        self.on_fired: Callable[[datetime, datetime], None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        planned_at: float | None = None
        while not self._stopping:
            self._wake.clear()
            if planned_at is None or loop.time() - planned_at >= PLAN_EVERY_S:
                # A planner that fails is logged and tried again at the next round; it must
                # never keep due reminders from firing.
                await self.plan()
                planned_at = loop.time()
            try:
                claimed = await self.fire_due()
                next_due = await self.next_due()
            except Exception as error:
                log.error("reminder pass failed; retrying\n%s", traceback_without_values(error))
                await self._sleep(RETRY_S)
                continue
            self.ready.set()
            sleep = self.max_sleep_s
            if next_due is not None:
                sleep = min(sleep, max(0.0, (next_due - self.clock()).total_seconds()))
                if not claimed and sleep == 0.0:
                    # Due rows another process holds (SKIP LOCKED passed them by): look again
                    # shortly rather than at once, over and over.
                    sleep = BUSY_ELSEWHERE_S
            await self._sleep(sleep)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    async def plan(self) -> None:
        for planner in self.planners:
            try:
                async with self.sessions() as session, session.begin():
                    await planner(session, self.clock())
            except Exception as error:
                self.stats.plan_failed += 1
                log.error("reminder planning failed\n%s", traceback_without_values(error))

    async def next_due(self) -> datetime | None:
        async with self.sessions() as session:
            due: datetime | None = await session.scalar(
                select(func.min(Reminder.due_at)).where(Reminder.status == ReminderStatus.PENDING)
            )
        return due

    async def fire_due(self) -> int:
        """Fire everything due now, a batch per transaction; returns how many were claimed."""
        total = 0
        while not self._stopping:
            claimed = await self._fire_batch()
            total += claimed
            if claimed < BATCH:
                break
        return total

    async def _fire_batch(self) -> int:
        now = self.clock()
        queued = 0
        fired: list[datetime] = []
        async with self.sessions() as session, session.begin():
            due = (
                await session.scalars(
                    select(Reminder.id)
                    .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
                    .order_by(Reminder.due_at, Reminder.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for reminder_id in due:
                reminder = await self._claim(session, reminder_id, now)
                if reminder is None:
                    continue  # another process fired it first
                kind, due_at = reminder.kind, reminder.due_at
                try:
                    async with session.begin_nested():
                        outcome = await self._fire(session, reminder, now)
                except Exception as error:
                    # Its own failure must not hold back the others, nor repeat for ever.
                    self.stats.failed += 1
                    log.error(
                        "reminder %s failed; marked skipped\n%s",
                        reminder_id,
                        traceback_without_values(error),
                    )
                    await _finish(
                        session, reminder_id, status=ReminderStatus.SKIPPED, note="failed"
                    )
                    continue
                behind = (now - due_at).total_seconds()
                if outcome.skipped is not None:
                    self.stats.skipped += 1
                    await _finish(
                        session, reminder_id, status=ReminderStatus.SKIPPED, note=outcome.skipped
                    )
                    log.info(
                        "reminder %s (%s) skipped %ds after its due time: %s",
                        reminder_id,
                        kind,
                        behind,
                        outcome.skipped,
                    )
                    continue
                late = now - due_at > LATE_AFTER
                self.stats.fired += 1
                self.stats.late += late
                self.stats.queued += outcome.queued
                self.stats.dropped += outcome.dropped
                note = f"{outcome.dropped} held past the start" if outcome.dropped else None
                await _finish(session, reminder_id, recipients=outcome.queued, note=note)
                if late:
                    log.info(
                        "reminder %s (%s) fired %ds after its due time (the bot was stopped)",
                        reminder_id,
                        kind,
                        behind,
                    )
                queued += outcome.queued
                fired.append(due_at)
        if self.on_fired is not None:
            written = self.clock()
            for due_at in fired:
                self.on_fired(due_at, written)
        if queued and self.on_enqueued is not None:
            self.on_enqueued()
        return len(due)

    async def _fire(self, session: AsyncSession, reminder: Reminder, now: datetime) -> Fired:
        firer = self.firers.get(reminder.kind)
        if firer is None:
            return Fired(skipped="no firer for its kind")
        return await firer(session, reminder, now, self.zone)

    async def _claim(
        self, session: AsyncSession, reminder_id: int, now: datetime
    ) -> Reminder | None:
        claimed: Reminder | None = await session.scalar(
            update(Reminder)
            .where(Reminder.id == reminder_id, Reminder.status == ReminderStatus.PENDING)
            .values(status=ReminderStatus.FIRED, done_at=now)
            .returning(Reminder)
            .execution_options(synchronize_session=False)
        )
        return claimed


async def _finish(session: AsyncSession, reminder_id: int, **values: object) -> None:
    await session.execute(update(Reminder).where(Reminder.id == reminder_id).values(**values))
