"""The outbox dispatcher: sends queued `Delivery` rows in priority order, paced per channel.

Guarantee (also in the README): every queued message is sent at most once, and is sent unless
the person is unreachable or the platform keeps failing. A row is claimed (`sending`, committed)
before the platform is called and marked `sent` with the platform's message id after. A row
found still `sending` at start-up is a send whose answer was lost in a crash: neither Telegram
nor Twilio offers an idempotency key, so it is marked `ambiguous` and counted, never resent.
At most two small windows of rows are in flight at once, which bounds that number.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.core import Option
from models import Announcement, ChannelIdentity, Delivery, DeliveryStatus
from models.queries import broadcast_counts

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
SAFETY = 0.985
# Requests arrive a little bunched (the emulator or Telegram is busy too): count our sends
# over a window slightly longer than the platform's one second.
COUNTED_WINDOW_S = 1.01
MAX_BACKOFF_S = 300.0
WINDOW_S = 0.1  # a window holds the sends of about this long
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
FINAL = tuple(status for status in DeliveryStatus if status not in UNFINISHED)


class Unreachable(Exception):
    """The person blocked the bot or the chat does not exist: stop, do not retry."""


class RetryLater(Exception):
    """The platform asked us to slow down (429): nothing was sent."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class SendFailed(Exception):
    """The platform refused (`permanent`) or failed before sending (retry with backoff)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class SendAmbiguous(Exception):
    """The request may have reached the platform but no answer came (a read timeout)."""


class Sender(Protocol):
    channel: str

    async def send(
        self, recipient: str, text: str, options: Sequence[Option], photo: str | None
    ) -> str: ...


class Pacer:
    """Spaces sends so that at most `overall_per_s` leave per second, and `per_chat_per_s`
    to any one chat: evenly, so the platform never sees a burst, and never a 429."""

    def __init__(
        self,
        overall_per_s: float,
        per_chat_per_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A hair under the limit: evenly spaced sends at exactly the limit put limit + 1 of
        # them in some one-second windows, and the platform answers that one with a 429.
        overall_per_s *= SAFETY
        self.overall_gap = 1.0 / overall_per_s
        self.per_second = max(1, math.floor(overall_per_s))
        self.recent: collections.deque[float] = collections.deque()
        self.chat_gap = 1.0 / per_chat_per_s
        self.clock = clock
        self.next_overall = 0.0
        self.next_for_chat: dict[str, float] = {}

    def reserve(self, chat: str, *, per_chat: bool = True) -> float:
        """Book the earliest allowed start for a send to `chat`; returns seconds to wait.
        Direct replies pass `per_chat=False`: the person is waiting for them, and Telegram
        allows a private chat a short burst."""
        now = self.clock()
        start = max(now, self.next_overall)
        if per_chat:
            start = max(start, self.next_for_chat.get(chat, 0.0))
        self.next_overall = start + self.overall_gap
        self.next_for_chat[chat] = max(self.next_for_chat.get(chat, 0.0), start + self.chat_gap)
        if len(self.next_for_chat) > 50_000:
            self.next_for_chat = {c: t for c, t in self.next_for_chat.items() if t > now}
        return start - now

    async def acquire(self, chat: str, *, per_chat: bool = True) -> None:
        """Wait for this send's slot. Beyond even spacing, count the sends that actually
        left in the last second: a stalled event loop releases late sends together, and the
        platform counts arrivals, not our plan."""
        if (wait := self.reserve(chat, per_chat=per_chat)) > 0:
            await asyncio.sleep(wait)
        while True:
            now = self.clock()
            while self.recent and self.recent[0] <= now - COUNTED_WINDOW_S:
                self.recent.popleft()
            if len(self.recent) < self.per_second:
                self.recent.append(now)
                return
            await asyncio.sleep(self.recent[0] + COUNTED_WINDOW_S - now + 0.001)

    def pause(self, seconds: float) -> None:
        self.next_overall = max(self.next_overall, self.clock() + seconds)

    def window(self) -> int:
        return max(1, math.ceil(WINDOW_S / self.overall_gap))


@dataclass
class DispatchStats:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    ambiguous: int = 0


BroadcastDone = Callable[[AsyncSession, str, dict[str, int]], Awaitable[None]]


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Sequence[Sender],
        pacers: dict[str, Pacer],
        *,
        clock: Callable[[], datetime],
        on_broadcast_done: BroadcastDone | None = None,
    ) -> None:
        self.sessions = sessions
        self.senders = {s.channel: s for s in senders}
        self.pacers = pacers
        self.clock = clock
        self.on_broadcast_done = on_broadcast_done
        self.stats = DispatchStats()
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def recover(self) -> int:
        """Rows a crash left in `sending` become `ambiguous` (see the module docstring)."""
        async with self.sessions() as session, session.begin():
            stuck = (
                await session.scalars(
                    select(Delivery.id).where(Delivery.status == DeliveryStatus.SENDING)
                )
            ).all()
            if stuck:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(stuck))
                    .values(status=DeliveryStatus.AMBIGUOUS, last_error="process stopped mid-send")
                )
        self.stats.ambiguous += len(stuck)
        if stuck:
            log.warning("%d deliveries were in flight at the last stop; not resent", len(stuck))
        return len(stuck)

    async def run(self, idle_poll_s: float = 1.0) -> None:
        recovered = False
        while not self._stopping:
            if not recovered:
                try:
                    await self.recover()
                    recovered = True
                except Exception:
                    log.exception("outbox recovery failed; retrying")
                    await asyncio.sleep(idle_poll_s)
                    continue
                try:
                    await self.report_unreported()
                except Exception:
                    log.exception("reporting finished broadcasts failed")
            self._wake.clear()
            try:
                busy = await self.drain()
            except Exception:
                log.exception("outbox pass failed")
                busy = 0
            if not busy:
                try:
                    await asyncio.wait_for(self._wake.wait(), idle_poll_s)
                except TimeoutError:
                    pass

    async def drain(self) -> int:
        """Send what is due now, one small window at a time, two windows in flight; returns
        how many were attempted. Returns early when something new is queued, so an alert
        queued during a long broadcast goes out next."""
        attempted = 0
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                claimed = await self._claim_window()
                if not claimed:
                    break
                attempted += len(claimed)
                task = asyncio.create_task(self._send_window(claimed))
                in_flight.add(task)
                task.add_done_callback(_forget_and_log(in_flight))
                if len(in_flight) >= 2:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                if self._wake.is_set():
                    break
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        return attempted

    async def _claim_window(self) -> list[Delivery]:
        """The most urgent due rows, marked `sending` in one committed transaction. Only rows
        this process actually switched from `pending` are returned, so two dispatchers on one
        database never send the same row."""
        async with self.sessions() as session, session.begin():
            due = (
                select(Delivery.id)
                .where(
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.not_before <= self.clock(),
                    Delivery.channel.in_(list(self.senders)),
                )
                # The index's own order (status, priority, not_before, id): no sort of the
                # whole backlog per claim. Within a priority, the longest due goes first.
                .order_by(Delivery.priority, Delivery.not_before, Delivery.id)
                .limit(self._window_size())
                .with_for_update(skip_locked=True)
            )
            ids = (await session.scalars(due)).all()
            if not ids:
                return []
            claimed = await session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            rows = list(claimed.all())
        return sorted(rows, key=lambda d: (d.priority, d.not_before, d.id))

    def _window_size(self) -> int:
        return min((p.window() for p in self.pacers.values()), default=1)

    async def _send_window(self, window: list[Delivery]) -> None:
        outcomes = await asyncio.gather(*(self._send_one(d) for d in window))
        async with self.sessions() as session, session.begin():
            await session.execute(update(Delivery), [values for values, _ in outcomes])
            for delivery, (_, blocked) in zip(window, outcomes, strict=True):
                if blocked:
                    await session.execute(
                        update(ChannelIdentity)
                        .where(
                            ChannelIdentity.channel == delivery.channel,
                            ChannelIdentity.external_id == delivery.recipient,
                        )
                        .values(unreachable_at=self.clock())
                    )
        # After the commit, in its own transaction: two windows of one broadcast finishing at
        # once must each see the other's rows; the report itself is guarded against doubles.
        for broadcast in {d.broadcast for d in window if d.broadcast}:
            await self.report_if_done(broadcast)

    async def _send_one(self, delivery: Delivery) -> tuple[dict[str, Any], bool]:
        """Send one row; returns its new column values and whether the person is unreachable."""
        sender = self.senders[delivery.channel]
        pacer = self.pacers.get(delivery.channel)
        if pacer is not None:
            await pacer.acquire(delivery.recipient)
        options = [Option(o["label"], o["payload"]) for o in delivery.options]
        attempts = delivery.attempts  # already counted by the claim
        values: dict[str, Any] = {"id": delivery.id}
        try:
            message_id = await sender.send(
                delivery.recipient, delivery.text, options, delivery.photo
            )
        except RetryLater as later:
            self.stats.rate_limited += 1
            if pacer is not None:
                pacer.pause(later.seconds)
            # A 429 is the platform's pacing, not a failed attempt.
            values |= {
                "status": DeliveryStatus.PENDING,
                "attempts": attempts - 1,
                "not_before": self.clock() + timedelta(seconds=later.seconds),
            }
        except Unreachable as error:
            self.stats.unreachable += 1
            values |= {"status": DeliveryStatus.UNREACHABLE, "last_error": str(error)[:255]}
            return values, True
        except SendAmbiguous as error:
            self.stats.ambiguous += 1
            values |= {"status": DeliveryStatus.AMBIGUOUS, "last_error": str(error)[:255]}
        except SendFailed as error:
            if error.permanent or attempts >= MAX_ATTEMPTS:
                self.stats.failed += 1
                values |= {"status": DeliveryStatus.FAILED, "last_error": str(error)[:255]}
            else:
                self.stats.retried += 1
                backoff = min(MAX_BACKOFF_S, 2.0**attempts)
                values |= {
                    "status": DeliveryStatus.PENDING,
                    "last_error": str(error)[:255],
                    "not_before": self.clock() + timedelta(seconds=backoff),
                }
        except Exception as error:  # a bug in a sender must not stop the outbox
            log.exception("sender crashed on delivery %s", delivery.id)
            self.stats.failed += 1
            values |= {"status": DeliveryStatus.FAILED, "last_error": repr(error)[:255]}
        else:
            self.stats.sent += 1
            values |= {
                "status": DeliveryStatus.SENT,
                "sent_at": self.clock(),
                "platform_message_id": message_id,
            }
        return values, False

    async def report_unreported(self) -> None:
        """Broadcasts that finished without passing through a send (every recipient already
        unreachable, or the last rows turned ambiguous at start-up) still get their report."""
        if self.on_broadcast_done is None:
            return
        async with self.sessions() as session:
            ids = (
                await session.scalars(
                    select(Announcement.id).where(Announcement.reported_at.is_(None))
                )
            ).all()
        for announcement_id in ids:
            await self.report_if_done(f"announcement:{announcement_id}")

    async def report_if_done(self, broadcast: str) -> None:
        if self.on_broadcast_done is None:
            return
        async with self.sessions() as session, session.begin():
            # Runs after every window of a broadcast: one index probe while rows remain,
            # the full count only once none do.
            unfinished = select(Delivery.id).where(
                Delivery.broadcast == broadcast,
                Delivery.status.in_(UNFINISHED),
            )
            if await session.scalar(unfinished.limit(1)) is not None:
                return
            counts = await broadcast_counts(session, broadcast)
            if not counts:
                return
            await self.on_broadcast_done(session, broadcast, counts)
        self.wake()


def _forget_and_log(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The sends happened; only recording them failed. Those rows stay `sending` and
            # become `ambiguous` at the next start, never resent.
            log.error("recording a window failed", exc_info=task.exception())

    return done
