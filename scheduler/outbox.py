"""The outbox dispatcher: sends queued `Delivery` rows, paced per channel and per chat.

A delivery is claimed (status `sending`, committed) before the platform is called and marked
`sent` with the platform's message id after, so a crash leaves an honest trace: a row still in
`sending` at start-up is a send whose outcome is unknown, never silently repeated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.core import Option
from models import Delivery, DeliveryStatus
from models.entities import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
AMBIGUOUS = "ambiguous: the process stopped during the send"


class Unreachable(Exception):
    """The person blocked the bot or the chat does not exist: stop, do not retry."""


class RetryLater(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Sender(Protocol):
    channel: str

    async def send(self, recipient: str, text: str, options: Sequence[Option]) -> str: ...


class Pacer:
    """At most `overall_per_s` sends per second, and `per_chat_per_s` to any one chat."""

    def __init__(
        self,
        overall_per_s: float,
        per_chat_per_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.overall_gap = 1.0 / overall_per_s
        self.chat_gap = 1.0 / per_chat_per_s
        self.clock = clock
        self.next_overall = 0.0
        self.next_for_chat: dict[str, float] = {}

    def delay(self, chat: str) -> float:
        now = self.clock()
        return max(0.0, self.next_overall - now, self.next_for_chat.get(chat, 0.0) - now)

    def taken(self, chat: str) -> None:
        now = self.clock()
        self.next_overall = max(now, self.next_overall) + self.overall_gap
        self.next_for_chat[chat] = max(now, self.next_for_chat.get(chat, 0.0)) + self.chat_gap


@dataclass
class DispatchStats:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    ambiguous: int = 0


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Sequence[Sender],
        pacers: dict[str, Pacer],
        *,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 100,
    ) -> None:
        self.sessions = sessions
        self.senders = {s.channel: s for s in senders}
        self.pacers = pacers
        self.clock = clock
        self.batch = batch
        self.stats = DispatchStats()
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def recover(self) -> int:
        """Rows left in `sending` by a crash: their outcome is unknown, so they are not resent."""
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.FAILED, last_error=AMBIGUOUS)
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        self.stats.ambiguous += count
        if count:
            log.warning("%d deliveries were in flight at the last stop; not resent", count)
        return count

    async def run(self, idle_poll_s: float = 1.0) -> None:
        await self.recover()
        while not self._stopping:
            self._wake.clear()
            try:
                done = await self.drain()
            except Exception:
                log.exception("outbox pass failed")
                done = 0
            if not done:
                try:
                    await asyncio.wait_for(self._wake.wait(), idle_poll_s)
                except TimeoutError:
                    pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def drain(self) -> int:
        """Send every delivery that is due now; returns how many were attempted."""
        async with self.sessions() as session:
            due = (
                await session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.status == DeliveryStatus.PENDING,
                        Delivery.not_before <= self.clock(),
                        Delivery.channel.in_(list(self.senders)),
                    )
                    .order_by(Delivery.priority, Delivery.id)
                    .limit(self.batch)
                )
            ).all()
        for delivery in due:
            if self._stopping:
                break
            await self._deliver(delivery)
        return len(due)

    async def _deliver(self, delivery: Delivery) -> None:
        sender = self.senders[delivery.channel]
        pacer = self.pacers.get(delivery.channel)
        if pacer is not None:
            if (wait := pacer.delay(delivery.recipient)) > 0:
                await asyncio.sleep(wait)
            pacer.taken(delivery.recipient)
        if not await self._claim(delivery):
            return
        options = [Option(o["label"], o["payload"]) for o in delivery.options]
        values: dict[str, object]
        try:
            message_id = await sender.send(delivery.recipient, delivery.text, options)
        except RetryLater as later:
            self.stats.retried += 1
            values = {
                "status": DeliveryStatus.PENDING,
                "attempts": delivery.attempts,  # a 429 is the platform's pacing, not a failure
                "not_before": self.clock() + timedelta(seconds=later.seconds),
            }
        except Unreachable as error:
            self.stats.unreachable += 1
            values = {"status": DeliveryStatus.UNREACHABLE, "last_error": str(error)[:255]}
        except SendFailed as error:
            attempts = delivery.attempts + 1
            if error.permanent or attempts >= MAX_ATTEMPTS:
                self.stats.failed += 1
                values = {"status": DeliveryStatus.FAILED, "last_error": str(error)[:255]}
            else:
                self.stats.retried += 1
                values = {
                    "status": DeliveryStatus.PENDING,
                    "last_error": str(error)[:255],
                    "not_before": self.clock() + timedelta(seconds=2**attempts),
                }
        else:
            self.stats.sent += 1
            values = {
                "status": DeliveryStatus.SENT,
                "sent_at": self.clock(),
                "platform_message_id": message_id,
            }
        async with self.sessions() as session, session.begin():
            await session.execute(update(Delivery).where(Delivery.id == delivery.id).values(values))

    async def _claim(self, delivery: Delivery) -> bool:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
            )
        return int(getattr(result, "rowcount", 0) or 0) == 1
