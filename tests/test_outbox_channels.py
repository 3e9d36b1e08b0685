"""The outbox with more than one channel and more than one process: each channel is claimed and
paced on its own (WhatsApp waiting out its daily cap, or just slower, holds up no Telegram
alert), and a dispatcher settles as ambiguous only the rows a dead one left `sending`, never
those another live one has in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.core import Option
from handlers.outbox import Recipient, enqueue
from models import Delivery, DeliveryStatus, Priority, db
from scheduler.outbox import (
    STALE_SENDING_S,
    SWEEP_EVERY_S,
    OutboxDispatcher,
    Pacer,
    RetryLater,
)
from tests.support import ShiftedClock

ZONE = ZoneInfo("America/Santiago")
WAIT_S = 20
# Twilio's daily cap (63018) answers with an hour's pause (bot/whatsapp.py).
HOUR_S = 3600.0


class _Recording:
    """Stands in for a platform that takes every message; `arrived(n)` waits for the n-th."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[str] = []
        self._more = asyncio.Condition()

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        silent: bool = False,
    ) -> str:
        self.sent.append(recipient)
        async with self._more:
            self._more.notify_all()
        return str(len(self.sent))

    async def arrived(self, count: int) -> None:
        try:
            async with asyncio.timeout(WAIT_S), self._more:
                await self._more.wait_for(lambda: len(self.sent) >= count)
        except TimeoutError:
            raise AssertionError(f"{self.channel}: {len(self.sent)} of {count} arrived") from None


class _PausedForAnHour(_Recording):
    """WhatsApp answering every send with a 429 that says to wait an hour: the whole
    channel pauses (its daily cap holds only the one row, `whole_channel=False`)."""

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        silent: bool = False,
    ) -> str:
        await super().send(recipient, text, options, photo, kind)
        raise RetryLater(HOUR_S)


class _NeverAnswers(_Recording):
    """A platform that takes the requests and never answers: what is sent stays in flight."""

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        silent: bool = False,
    ) -> str:
        await super().send(recipient, text, options, photo, kind)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def _whatsapp(count: int) -> list[Recipient]:
    return [
        Recipient(None, "whatsapp", f"+5691000{i:04d}", None, None, False) for i in range(count)
    ]


def _telegram(first: int, count: int) -> list[Recipient]:
    return [Recipient(None, "telegram", str(first + i), None, None, False) for i in range(count)]


async def _queue(
    sessions: async_sessionmaker[AsyncSession],
    recipients: list[Recipient],
    *,
    clock: ShiftedClock,
    broadcast: str | None = "alert:1",
) -> None:
    async with sessions() as session, session.begin():
        await enqueue(
            session,
            recipients,
            "🚨 Alerta: robo en calle Estado",
            now=clock(),
            zone=ZONE,
            priority=Priority.ALERT,
            urgent=True,
            broadcast=broadcast,
        )


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[Delivery]:
    async with sessions() as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())


@contextlib.asynccontextmanager
async def _running(dispatcher: OutboxDispatcher):
    task = asyncio.create_task(dispatcher.run(idle_poll_s=0.05))
    try:
        yield task
    finally:
        dispatcher.stop()
        # Every channel's loop ends, also one waiting out an hour's pause.
        await asyncio.wait_for(task, WAIT_S)


async def test_a_telegram_alert_goes_out_while_whatsapp_waits_out_an_hours_pause(clean_database):
    engine = db.create_engine(clean_database)
    clock = ShiftedClock()
    sessions = db.session_factory(engine, clock)
    try:
        # WhatsApp's copies of the alert were queued first: they lead the queue.
        await _queue(sessions, _whatsapp(3), clock=clock)
        await _queue(sessions, _telegram(81_000, 5), clock=clock)
        telegram, whatsapp = _Recording("telegram"), _PausedForAnHour("whatsapp")
        dispatcher = OutboxDispatcher(
            sessions,
            [whatsapp, telegram],
            {"telegram": Pacer(1000, 1000), "whatsapp": Pacer(10, 10)},
            clock=clock,
        )
        async with _running(dispatcher):
            await telegram.arrived(5)
        rows = await _rows(sessions)
    finally:
        await engine.dispose()

    by_channel = {
        channel: [d for d in rows if d.channel == channel] for channel in ("telegram", "whatsapp")
    }
    assert {d.status for d in by_channel["telegram"]} == {DeliveryStatus.SENT}
    assert len(whatsapp.sent) == 1, "one try drew the pause; the rest wait it out"
    assert {d.status for d in by_channel["whatsapp"]} == {DeliveryStatus.PENDING}
    assert [d.attempts for d in by_channel["whatsapp"]] == [0, 0, 0], "a pause is no attempt"
    assert all(d.sending_since is None for d in rows)


async def test_a_slow_channel_does_not_slow_the_others(clean_database):
    """WhatsApp at its default 1 message a second, Telegram at 1,000: Telegram's copies of an
    alert are all out before half of WhatsApp's."""
    engine = db.create_engine(clean_database)
    clock = ShiftedClock()
    sessions = db.session_factory(engine, clock)
    try:
        await _queue(sessions, _whatsapp(20), clock=clock)
        await _queue(sessions, _telegram(82_000, 40), clock=clock)
        telegram, whatsapp = _Recording("telegram"), _Recording("whatsapp")
        dispatcher = OutboxDispatcher(
            sessions,
            [whatsapp, telegram],
            {"telegram": Pacer(1000, 1000), "whatsapp": Pacer(1, 1)},
            clock=clock,
        )
        async with _running(dispatcher):
            await telegram.arrived(40)
            whatsapp_by_then = len(whatsapp.sent)
    finally:
        await engine.dispose()

    assert sorted(telegram.sent) == [str(82_000 + i) for i in range(40)]
    assert whatsapp_by_then < 10, f"Telegram waited for WhatsApp ({whatsapp_by_then} sent)"


async def test_drain_sends_every_channel(clean_database):
    engine = db.create_engine(clean_database)
    clock = ShiftedClock()
    sessions = db.session_factory(engine, clock)
    try:
        await _queue(sessions, _whatsapp(3), clock=clock)
        await _queue(sessions, _telegram(83_000, 3), clock=clock)
        telegram, whatsapp = _Recording("telegram"), _Recording("whatsapp")
        dispatcher = OutboxDispatcher(
            sessions,
            [whatsapp, telegram],
            {"telegram": Pacer(1000, 1000), "whatsapp": Pacer(1000, 1000)},
            clock=clock,
        )
        assert await dispatcher.drain() == 6
        rows = await _rows(sessions)
    finally:
        await engine.dispose()

    assert {d.status for d in rows} == {DeliveryStatus.SENT}
    assert len(telegram.sent) == len(whatsapp.sent) == 3


async def test_a_replica_leaves_anothers_sends_alone_and_settles_a_dead_ones(clean_database):
    """Two dispatchers on one database, as two `barrio run` processes. The second one's start
    leaves the first one's rows in flight alone; once the first is killed, the second settles
    what it left `sending` as ambiguous when that is stale — by its periodic sweep, without a
    restart — never sends it again, and reports the broadcast."""
    clock = ShiftedClock()  # both processes' wall clock
    engines = [db.create_engine(clean_database) for _ in range(2)]
    first_sessions, second_sessions = (db.session_factory(e, clock) for e in engines)
    reports: list[tuple[str, dict[str, int]]] = []
    reported = asyncio.Event()

    async def report(_session: AsyncSession, broadcast: str, counts: dict[str, int]) -> None:
        reports.append((broadcast, counts))
        reported.set()

    try:
        await _queue(first_sessions, _telegram(84_000, 3), clock=clock, broadcast="alert:7")
        stalled = _NeverAnswers("telegram")
        first = OutboxDispatcher(
            first_sessions, [stalled], {"telegram": Pacer(1000, 1000)}, clock=clock
        )
        killed = asyncio.create_task(first.run(idle_poll_s=0.05))
        await stalled.arrived(3)  # all three are on their way: `sending`

        second_sender = _Recording("telegram")
        second = OutboxDispatcher(
            second_sessions,
            [second_sender],
            {"telegram": Pacer(1000, 1000)},
            clock=clock,
            on_broadcast_done=report,
        )
        async with _running(second):
            # Queued once the first one's window is out: the second one sends it, so it is up.
            await _queue(second_sessions, _telegram(84_100, 1), clock=clock, broadcast=None)
            second.wake()
            await second_sender.arrived(1)
            in_flight = [d for d in await _rows(second_sessions) if d.broadcast == "alert:7"]
            assert {d.status for d in in_flight} == {DeliveryStatus.SENDING}, (
                "the second start took the first one's live sends for a crash's"
            )
            assert all(d.sending_since is not None for d in in_flight)

            killed.cancel()  # SIGKILL, as far as the database can tell: nothing more is written
            with contextlib.suppress(asyncio.CancelledError):
                await killed
            assert reports == []
            clock.advance(timedelta(seconds=STALE_SENDING_S + SWEEP_EVERY_S))
            await asyncio.wait_for(reported.wait(), WAIT_S)
        rows = await _rows(second_sessions)
    finally:
        for engine in engines:
            await engine.dispose()

    left = [d for d in rows if d.broadcast == "alert:7"]
    assert {d.status for d in left} == {DeliveryStatus.AMBIGUOUS}
    assert all(d.sending_since is None for d in rows)
    assert second_sender.sent == ["84100"], "nothing of the dead one's was sent again"
    assert reports == [("alert:7", {"ambiguous": 3})]
    assert second.stats.ambiguous == 3


async def test_a_row_sending_from_before_the_upgrade_is_settled_at_start(clean_database):
    """A row left `sending` by a version that did not stamp `sending_since` cannot be told
    from a live one by age: it is settled at once, as every such row used to be."""
    engine = db.create_engine(clean_database)
    clock = ShiftedClock()
    sessions = db.session_factory(engine, clock)
    try:
        await _queue(sessions, _telegram(85_000, 2), clock=clock)
        old, live = await _rows(sessions)
        async with sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(Delivery.id == old.id)
                .values(status=DeliveryStatus.SENDING, sending_since=None)
            )
            await session.execute(
                update(Delivery)
                .where(Delivery.id == live.id)
                .values(status=DeliveryStatus.SENDING, sending_since=clock())
            )
        dispatcher = OutboxDispatcher(sessions, [_Recording("telegram")], {}, clock=clock)
        assert await dispatcher.recover() == 1
        statuses = {d.id: d.status for d in await _rows(sessions)}
    finally:
        await engine.dispose()

    assert statuses == {old.id: DeliveryStatus.AMBIGUOUS, live.id: DeliveryStatus.SENDING}
