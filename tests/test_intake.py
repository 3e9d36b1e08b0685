"""One person cannot slow everyone down: a per-sender limit at intake, a share of the sending
budget kept for alerts, and replies that wait out a 429 outside the turn's slot."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.telegram import SenderLimit
from handlers import texts
from handlers.core import Option
from handlers.outbox import Recipient, enqueue
from models import InboundUpdate, Priority, db
from models.entities import utcnow
from scheduler.outbox import OutboxDispatcher, Pacer
from tests.support import Phone, ShiftedClock, text_of


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_flooding_sender_is_told_once_then_ignored(runtime, phone):
    clock = _Clock()
    runtime.transport.intake = SenderLimit(per_minute=20, burst=3, clock=clock)
    reached: list[str] = []
    handle = runtime.dialogue.handle

    async def counted(inbound, receipt=None):
        reached.append(inbound.sender_id)
        return await handle(inbound, receipt)

    runtime.dialogue.handle = counted
    flor = phone(7201, "Flor")

    for _ in range(3):
        assert await flor.say("/ayuda"), "within the burst: answered"
    assert text_of(await flor.say("/ayuda")) == texts.TOO_MANY_MESSAGES
    for _ in range(5):
        assert await flor.say("/ayuda") == [], "told once; then silence"
    assert reached == ["7201"] * 3, "what is over the limit never reaches the dialogue"
    async with runtime.sessions() as session:
        unprocessed = await session.scalar(
            select(func.count())
            .select_from(InboundUpdate)
            .where(InboundUpdate.processed_at.is_(None))
        )
    assert unprocessed == 0, "over the limit or not, every update is marked processed"

    assert await phone(7202, "Gabo").say("/ayuda"), "someone else is not affected"
    clock.now += 60  # a minute later Flor is welcome again
    again = text_of(await flor.say("/ayuda"))
    assert again and texts.TOO_MANY_MESSAGES not in again


def test_the_intake_limit_is_a_share_of_the_sending_budget():
    at_telegrams_rate = SenderLimit.sharing(30)
    assert at_telegrams_rate.rate * 60 == pytest.approx(20)
    assert at_telegrams_rate.burst == 10


def test_replies_yield_to_alerts_but_keep_a_share():
    clock = _Clock()
    pacer = Pacer(30, 1, clock=clock, reply_share=0.1)
    assert [pacer.reply_wait() for _ in range(3)] == [0, 0, 0], "no alert: replies just go"

    pacer.favour_alerts()
    assert pacer.reply_wait() == 0, "the replies' share"
    wait = pacer.reply_wait()
    assert wait > 0, "the next reply waits while the alert takes the slots"
    clock.now += wait
    assert pacer.reply_wait() == 0
    assert pacer.reply_wait() > 0

    clock.now += 60  # the alert went out and nothing renewed the favour
    assert [pacer.reply_wait() for _ in range(3)] == [0, 0, 0]


class _Sink:
    channel = "telegram"

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
        return "1"


async def test_the_outbox_favours_alerts_only_while_it_sends_them(clean_database, settings):
    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, utcnow)
    try:
        clock = _Clock()  # stands still: a favour, once given, is still on when we look
        pacers = {}
        for priority in (Priority.BROADCAST, Priority.ALERT):
            pacers[priority] = pacer = Pacer(1000, 1000, clock=clock)
            async with sessions() as session, session.begin():
                recipient = Recipient(None, "telegram", str(7300 + priority), None, None, False)
                await enqueue(
                    session,
                    [recipient],
                    "Aviso",
                    now=utcnow(),
                    zone=settings.zone,
                    priority=priority,
                )
            dispatcher = OutboxDispatcher(sessions, [_Sink()], {"telegram": pacer}, clock=utcnow)
            assert await dispatcher.drain() == 1
        assert pacers[Priority.BROADCAST].reply_wait() == 0
        assert pacers[Priority.BROADCAST].reply_wait() == 0
        assert pacers[Priority.ALERT].reply_wait() == 0
        assert pacers[Priority.ALERT].reply_wait() > 0
    finally:
        await engine.dispose()


async def test_a_reply_that_draws_a_429_waits_it_out_outside_the_turn(settings, emulator):
    """With a single turn slot, Ana's answer draws a 429: Beto is answered while hers waits,
    and her next answer still comes after her first."""
    runtime = Runtime(settings.model_copy(update={"telegram_concurrency": 1}), clock=ShiftedClock())
    await runtime.start()
    try:
        assert runtime.transport is not None
        released = asyncio.Event()
        waits: list[float] = []

        async def until_released(seconds: float) -> None:
            waits.append(seconds)
            await released.wait()

        runtime.transport.sleep = until_released
        ana, beto = Phone(emulator, runtime, 7401, "Ana"), Phone(emulator, runtime, 7402, "Beto")
        emulator.fail_next("sendMessage", status=429, retry_after=7)

        assert await ana.say("/ayuda") == [], "her turn ends; the answer waits out the 429"
        assert waits == [7]
        assert await beto.say("/ayuda"), "the only turn slot is free for Beto"
        assert await ana.say("/barrio") == [], "her next answer queues behind the first"

        released.set()
        first, second = await emulator.wait_for_sent(7401, count=2)
        assert first["text"] == beto.texts()[0], "the /ayuda answer first"
        assert second["text"] != first["text"]
    finally:
        await runtime.stop()


class _Recording(_Sink):
    def __init__(self) -> None:
        self.sent: list[str] = []

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
        return str(len(self.sent))


async def test_an_alert_to_a_busy_chat_waits_aside_and_keeps_replies_out(clean_database, settings):
    """Someone flooding the bot keeps their own chat busy with replies: their copy of the
    alert waits aside without holding up the others', and replies to them wait for it."""
    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, utcnow)
    try:
        clock = _Clock()
        pacer = Pacer(1000, 1, clock=clock)
        pacer.reserve("7500", per_chat=False)  # a reply just went to the flooder's chat
        async with sessions() as session, session.begin():
            await enqueue(
                session,
                [Recipient(None, "telegram", str(a), None, None, False) for a in range(7500, 7504)],
                "🚨 Alerta",
                now=utcnow(),
                zone=settings.zone,
                priority=Priority.ALERT,
                urgent=True,
            )
        sender = _Recording()
        dispatcher = OutboxDispatcher(sessions, [sender], {"telegram": pacer}, clock=utcnow)
        await dispatcher.drain()

        assert sender.sent == ["7501", "7502", "7503"], "the others are not held up"
        assert pacer.reply_wait("7500") > 0, "replies to the busy chat wait for the alert"
        assert pacer.reply_wait("7600") == 0, "the one reply share"
        clock.now += 2  # the chat is free again
        assert await dispatcher.drain() == 1
        assert sender.sent[-1] == "7500"
    finally:
        await engine.dispose()
