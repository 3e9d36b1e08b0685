"""Inbound updates are stored before Telegram is told we have them.

PTB's own polling loop and webhook server acknowledge an update before it is processed, so a
crash in between loses it. Here the poller asks `getUpdates`, stores the batch (unique on the
update id), and only then moves the offset that acknowledges it; the webhook stores before it
answers 200. Each turn marks its update processed in the same transaction as its effects, so a
redelivered or replayed update is never handled twice. At start, stored updates that were never
processed are replayed in order; those too old to act on get a short "se me pasó" instead.

What a person sent is kept only until their turn is handled: marking an update processed
empties its payload. The bare row (update id and a content hash) stays `KEEP_PROCESSED`,
because a redelivery can come that late (Telegram keeps an unacknowledged update a day) and
must still be recognised. Update ids alone do not identify an update: Telegram restarts their
numbering after a week without updates, and so does every new emulator.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Update
from telegram.constants import ChatType
from telegram.error import RetryAfter, TelegramError

from handlers import texts
from handlers.outbox import Recipient, enqueue
from models import InboundUpdate, Priority
from scheduler.outbox import LATE_REPLY

log = logging.getLogger(__name__)

CHANNEL = "telegram"
KEEP_PROCESSED = timedelta(days=1)
REPLAY_WITHIN = timedelta(minutes=30)


async def store(
    sessions: async_sessionmaker[AsyncSession], updates: Sequence[Update], now: datetime
) -> list[Update]:
    """Store the updates; returns those not seen before (a redelivery returns nothing)."""
    if not updates:
        return []
    async with sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        rows = []
        for u in updates:
            payload = u.to_dict()
            rows.append(
                {
                    "channel": CHANNEL,
                    "platform_id": str(u.update_id),
                    "fingerprint": fingerprint(payload),
                    "payload": payload,
                    "received_at": now,
                }
            )
        result = await session.execute(
            insert(InboundUpdate)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["channel", "platform_id", "fingerprint"])
            .returning(InboundUpdate.platform_id)
        )
        new = {int(platform_id) for platform_id in result.scalars()}
    return [u for u in updates if u.update_id in new]


def fingerprint(payload: dict[str, Any]) -> str:
    """Equal for a redelivery of one update, different for a new update under a reused id."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


async def unprocessed(
    sessions: async_sessionmaker[AsyncSession], bot: Bot, now: datetime
) -> list[Update]:
    """Stored updates never handled, oldest first. Those older than `REPLAY_WITHIN` are
    dropped instead (a tap on "Enviar alerta" must not act hours later), and whoever sent
    them is told, once, that their message was missed."""
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(InboundUpdate.id, InboundUpdate.payload, InboundUpdate.received_at)
                .where(InboundUpdate.channel == CHANNEL, InboundUpdate.processed_at.is_(None))
                .order_by(InboundUpdate.id)
            )
        ).all()
        replay: list[Update] = []
        dropped: list[int] = []
        missed_chats: set[str] = set()
        for row_id, payload, received_at in rows:
            stored = Update.de_json(payload, bot) if payload else None
            if stored is not None and received_at >= now - REPLAY_WITHIN:
                replay.append(stored)
                continue
            dropped.append(row_id)
            chat = stored.effective_chat if stored is not None else None
            if chat is not None and chat.type == ChatType.PRIVATE:
                missed_chats.add(str(chat.id))
        # Someone whose later message is replayed has not lost their last message.
        missed_chats -= {str(u.effective_chat.id) for u in replay if u.effective_chat}
        if dropped:
            await session.execute(
                update(InboundUpdate)
                .where(InboundUpdate.id.in_(dropped))
                .values(processed_at=now, payload=None)
            )
            log.warning("%d stored updates were too old to replay; dropped", len(dropped))
        await enqueue(
            session,
            [Recipient(None, CHANNEL, chat, None, None, False) for chat in sorted(missed_chats)],
            texts.MISSED_MESSAGE,
            now=now,
            zone=ZoneInfo("UTC"),
            priority=Priority.PERSONAL,
            broadcast=LATE_REPLY,
        )
        return replay


async def forget_old(
    sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
) -> None:
    now = clock()
    async with sessions() as session, session.begin():
        await session.execute(
            delete(InboundUpdate).where(
                InboundUpdate.processed_at.is_not(None),
                InboundUpdate.processed_at < now - KEEP_PROCESSED,
            )
        )


# Runs once per inbound message, so it is built once. No loaded object holds these rows, so
# the ORM need not look for any to update (that search costs more CPU than the UPDATE).
_MARK_PROCESSED = (
    update(InboundUpdate)
    .where(
        InboundUpdate.channel == CHANNEL,
        InboundUpdate.platform_id == bindparam("update_id"),
        InboundUpdate.processed_at.is_(None),
    )
    # What the person sent is not needed once the turn is done.
    .values(processed_at=bindparam("processed_now"), payload=None)
    .execution_options(synchronize_session=False)
)


async def mark_processed(session: AsyncSession, update_id: int, now: datetime) -> bool:
    """Claim an update for processing in the caller's transaction; False if it already was."""
    result = await session.execute(
        _MARK_PROCESSED, {"update_id": str(update_id), "processed_now": now}
    )
    return bool(getattr(result, "rowcount", 0))


class DurablePoller:
    """getUpdates → store → acknowledge → hand to PTB's update queue."""

    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        queue: asyncio.Queue[Any],
        clock: Callable[[], datetime],
        *,
        timeout: int = 10,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.queue = queue
        self.clock = clock
        self.timeout = timeout
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        for pending in await unprocessed(self.sessions, self.bot, self.clock()):
            await self.queue.put(pending)
        offset: int | None = None
        while not self._stopping.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.timeout, allowed_updates=Update.ALL_TYPES
                )
            except RetryAfter as error:
                await self._pause(retry_after_seconds(error.retry_after))
                continue
            except TelegramError as error:  # NetworkError, TimedOut and the rest
                if self._stopping.is_set():
                    return
                log.warning("getUpdates failed: %s", error)
                await self._pause(1.0)
                continue
            if not updates:
                continue
            try:
                fresh = await store(self.sessions, updates, self.clock())
            except Exception:
                # Not stored, so not acknowledged: Telegram sends them again on the next poll.
                log.exception("storing %d updates failed; retrying", len(updates))
                await self._pause(1.0)
                continue
            for new in fresh:
                await self.queue.put(new)
            # Only now: the next getUpdates with this offset tells Telegram we have them.
            offset = updates[-1].update_id + 1

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def stop(self) -> None:
        self._stopping.set()


def retry_after_seconds(retry_after: object) -> float:
    """PTB gives `RetryAfter.retry_after` as a timedelta (PTB_TIMEDELTA) or, formerly, an int."""
    total = getattr(retry_after, "total_seconds", None)
    return float(total()) if callable(total) else float(retry_after)  # type: ignore[arg-type]
