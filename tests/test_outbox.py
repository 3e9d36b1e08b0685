"""The outbox dispatcher against Telegram's failure modes, driven by the emulator:
429 with retry_after, 5xx, priorities, a SIGKILL in the middle of a broadcast and one during a
429 pause, a row erased while in flight, and a database that refuses a window's outcomes."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.core import Option
from handlers.outbox import Recipient, enqueue
from models import Delivery, DeliveryStatus, Priority, db
from models.entities import utcnow
from scheduler.outbox import FINAL, STALE_SENDING_S, OutboxDispatcher, Pacer


def _people(emulator, first: int, count: int) -> list[Recipient]:
    ids = list(range(first, first + count))
    emulator.start_chats(ids)
    return [Recipient(None, "telegram", str(i), None, None, False) for i in ids]


async def _queue(runtime, recipients, text, **kwargs) -> None:
    async with runtime.sessions() as session, session.begin():
        await enqueue(
            session, recipients, text, now=runtime.clock(), zone=runtime.settings.zone, **kwargs
        )
    runtime.dispatcher.wake()


async def _settled(runtime) -> dict[str, int]:
    for _ in range(2000):
        async with runtime.sessions() as session:
            counts = dict(
                (
                    await session.execute(
                        select(Delivery.status, func.count()).group_by(Delivery.status)
                    )
                ).all()
            )
        if counts and all(status in FINAL for status in counts):
            return {str(k): v for k, v in counts.items()}
        await asyncio.sleep(0.01)
    raise AssertionError(f"outbox never settled: {counts}")


def _received(emulator, recipients, fragment) -> collections.Counter[str]:
    return collections.Counter(
        {
            r.address: sum(fragment in (m.get("text") or "") for m in emulator.sent(int(r.address)))
            for r in recipients
        }
    )


async def test_429_is_waited_out_and_nothing_is_lost_or_doubled(runtime, emulator):
    recipients = _people(emulator, 50_000, 20)
    emulator.set_rate_limits(5, None)  # the bot is configured for far more: Telegram says no
    await _queue(runtime, recipients, "Aviso de prueba", broadcast="test:429")
    counts = await _settled(runtime)
    assert counts == {"sent": 20}
    assert emulator.stats["http_429"] > 0
    assert set(_received(emulator, recipients, "Aviso de prueba").values()) == {1}


async def test_server_errors_are_retried_with_backoff(runtime, emulator, clock):
    recipients = _people(emulator, 51_000, 3)
    emulator.fail_next("sendMessage", status=502, count=2)
    await _queue(runtime, recipients, "Reintento")
    for _ in range(200):
        async with runtime.sessions() as session:
            retrying = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.last_error.is_not(None), Delivery.status == DeliveryStatus.PENDING)
            )
        if retrying == 2:
            break
        await asyncio.sleep(0.01)
    assert retrying == 2
    clock.advance(timedelta(seconds=5))  # past the backoff
    runtime.dispatcher.wake()
    assert await _settled(runtime) == {"sent": 3}
    assert set(_received(emulator, recipients, "Reintento").values()) == {1}


async def test_alerts_jump_the_queue(runtime, emulator):
    crowd = _people(emulator, 52_000, 40)
    [neighbour] = _people(emulator, 52_100, 1)
    async with runtime.sessions() as session, session.begin():
        now, zone = runtime.clock(), runtime.settings.zone
        await enqueue(session, crowd, "Boletín", now=now, zone=zone, priority=Priority.BROADCAST)
        await enqueue(
            session,
            [neighbour],
            "🚨 Alerta",
            now=now,
            zone=zone,
            priority=Priority.ALERT,
            urgent=True,
        )
    runtime.dispatcher.wake()
    await _settled(runtime)
    order = [m for m in emulator.sent() if m["chat_id"] >= 52_000]
    assert order[0]["text"] == "🚨 Alerta"


async def test_sigkill_mid_broadcast_skips_nobody_and_doubles_nobody(
    settings, emulator, clean_database, tmp_path
):
    """A real `barrio run` process is killed (SIGKILL) while broadcasting to 300 people, then
    started again. Every person gets the message exactly once, except sends that were in
    flight at the kill, which are marked ambiguous and counted (never resent) once stale."""

    recipients = _people(emulator, 60_000, 300)
    await _queue_without_runtime(settings, recipients)

    rate = 100
    emulator.set_rate_limits(rate, None)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TELEGRAM_BOT_TOKEN": settings.token,
        "TELEGRAM_API_BASE_URL": settings.telegram_api_base_url,
        "TELEGRAM_RATE_PER_S": str(rate),
        "TELEGRAM_CHAT_RATE_PER_S": "1",
        "PORT": "0",
    }
    script = str(Path(sys.executable).parent / "barrio")

    def received() -> int:
        return sum(1 for m in emulator.sent() if m["chat_id"] >= 60_000)

    first = subprocess.Popen(
        [script, "run"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # Generous: a process starting on a busy machine takes a while to send its first 100.
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            if received() >= 100:
                break
            await asyncio.sleep(0.005)
        assert received() >= 100, "the broadcast never started"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = received()
    assert at_kill < 300, "the broadcast finished before the kill; the test proves nothing"
    await _in_flight_long_ago(settings)

    second = subprocess.Popen(
        [script, "run"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        rows = await _final_rows(settings)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()

    per_person = _received(emulator, recipients, "Corte de agua")
    ambiguous = {d.recipient for d in rows if d.status == DeliveryStatus.AMBIGUOUS}
    assert all(d.status in (DeliveryStatus.SENT, DeliveryStatus.AMBIGUOUS) for d in rows)
    assert max(per_person.values()) == 1, "someone got the message twice"
    skipped = {address for address, count in per_person.items() if count == 0}
    assert skipped <= ambiguous, "someone was skipped without the outbox knowing"
    window = max(1, round(0.1 * rate))
    assert len(ambiguous) <= 2 * window


async def _in_flight_long_ago(settings) -> None:
    """As if the restart came after the killed process's rows in flight had gone stale (a
    replica starting next to a live one must leave its rows alone): set back, not waited for."""
    engine = db.create_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING)
                .values(sending_since=datetime.now(UTC) - timedelta(seconds=STALE_SENDING_S + 1))
            )
    finally:
        await engine.dispose()


async def _queue_without_runtime(settings, recipients, broadcast: str = "test:crash") -> None:
    engine = db.create_engine(settings.database_url)
    await db.upgrade(engine)
    async with db.session_factory(engine, utcnow)() as session, session.begin():
        await enqueue(
            session,
            recipients,
            "Corte de agua mañana de 9 a 12",
            now=datetime.now(UTC) - timedelta(seconds=1),
            zone=settings.zone,
            urgent=True,
            broadcast=broadcast,
        )
    await engine.dispose()


async def test_sigkill_during_a_429_pause_skips_nobody_and_marks_nothing_ambiguous(
    settings, emulator, clean_database, tmp_path
):
    """Telegram answers 429 from about the 100th send on; the bot is killed (SIGKILL) while it
    waits out the pause, with no request in flight, and started again. Rows waiting for the
    pacer or the pause were never `sending`: nobody is marked ambiguous, everybody gets the
    message once, and the 429s counted as no attempt."""
    recipients = _people(emulator, 62_000, 300)
    await _queue_without_runtime(settings, recipients, broadcast="test:pause")
    rate = 100
    emulator.set_rate_limits(rate, None)
    env = _barrio_env(settings, rate)

    def received() -> int:
        return sum(1 for m in emulator.sent() if m["chat_id"] >= 62_000)

    first = _barrio_run(env, tmp_path)
    try:
        await emulator.wait_for(lambda: received() >= 100, timeout=60, what="100 sends")
        # From now on every send draws a 429 with a pause long enough to kill the bot in it.
        before = emulator.stats["http_429"]
        emulator.fail_next("sendMessage", status=429, count=100_000, retry_after=5)
        await emulator.wait_for(lambda: emulator.stats["http_429"] > before, timeout=30)
        # Once the rows that drew a 429 are recorded (back to `pending`, due after the pause),
        # the bot is waiting the pause out: that is when it dies.
        stuck = await _rows_waiting_out(settings, lambda: emulator.stats["http_429"] - before)
        await emulator.wait_idle(timeout=10)
        # No await between "no request in flight" and the kill: nothing can leave in between.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = received()
    assert at_kill < 300, "the broadcast finished before the kill; the test proves nothing"
    emulator.clear_faults()

    second = _barrio_run(env, tmp_path)
    try:
        rows = await _final_rows(settings)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()

    ambiguous = [d.recipient for d in rows if d.status == DeliveryStatus.AMBIGUOUS]
    assert not ambiguous, (
        f"{len(ambiguous)} rows marked ambiguous though no request was in flight at the kill"
        f" ({stuck} were `sending` while the bot waited out the pause)"
    )
    assert {d.status for d in rows} == {DeliveryStatus.SENT}
    per_person = _received(emulator, recipients, "Corte de agua")
    assert set(per_person.values()) == {1}, "someone got it twice, or not at all"
    assert max(d.attempts for d in rows) == 1, "a 429 was counted as an attempt"


class _ErasingSender:
    """Stands in for Telegram. While it sends to `erased`, that person erases their data:
    their rows go, as ON DELETE CASCADE takes a member's deliveries."""

    channel = "telegram"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], erased: str) -> None:
        self.sessions = sessions
        self.erased = erased
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
        if recipient == self.erased:
            async with self.sessions() as session, session.begin():
                await session.execute(delete(Delivery).where(Delivery.recipient == recipient))
        return str(len(self.sent))


async def test_a_row_erased_in_flight_costs_no_other_outcome_nor_the_report(clean_database):
    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, utcnow)
    try:
        addresses = [str(i) for i in range(64_000, 64_005)]
        await _queue_addresses(sessions, addresses, "test:erased")
        reports: list[tuple[str, dict[str, int]]] = []

        async def report(_session: AsyncSession, broadcast: str, counts: dict[str, int]) -> None:
            reports.append((broadcast, counts))

        sender = _ErasingSender(sessions, erased=addresses[2])
        dispatcher = _dispatcher(sessions, sender, report)
        await dispatcher.drain()

        statuses = await _statuses(sessions)
        assert sorted(sender.sent) == addresses, "one window, each sent once"
        assert statuses == {a: DeliveryStatus.SENT for a in addresses if a != addresses[2]}
        assert reports == [("test:erased", {"sent": 4})]
    finally:
        await engine.dispose()


class _CountingSender:
    channel = "telegram"

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


async def test_outcomes_the_database_refuses_are_written_again_not_dropped(clean_database):
    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, utcnow)
    refusals = 2

    def busy_database(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The window's outcomes are the only multi-row UPDATE of deliveries.
        nonlocal refusals
        executemany = _args[-1]
        if executemany and statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            if refusals:
                refusals -= 1
                raise sqlite3.OperationalError("database is locked")

    event.listen(engine.sync_engine, "before_cursor_execute", busy_database)
    try:
        addresses = [str(i) for i in range(65_000, 65_003)]
        await _queue_addresses(sessions, addresses, "test:busy")
        sender = _CountingSender()
        await _dispatcher(sessions, sender).drain()

        assert await _statuses(sessions) == {a: DeliveryStatus.SENT for a in addresses}
        assert sorted(sender.sent) == addresses, "written again, never sent again"
        assert refusals == 0, "the database never refused; the test proves nothing"
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", busy_database)
        await engine.dispose()


def _dispatcher(sessions, sender, report=None) -> OutboxDispatcher:
    # Fast enough that a handful of rows make one window.
    return OutboxDispatcher(
        sessions,
        [sender],
        {"telegram": Pacer(1000, 1000)},
        clock=utcnow,
        on_broadcast_done=report,
    )


async def _queue_addresses(sessions, addresses: list[str], broadcast: str) -> None:
    recipients = [Recipient(None, "telegram", a, None, None, False) for a in addresses]
    async with sessions() as session, session.begin():
        await enqueue(
            session,
            recipients,
            "Corte de luz",
            now=utcnow(),
            zone=ZoneInfo("America/Santiago"),
            broadcast=broadcast,
        )


async def _statuses(sessions) -> dict[str, DeliveryStatus]:
    async with sessions() as session:
        rows = (await session.execute(select(Delivery.recipient, Delivery.status))).all()
    return dict(rows)


def _barrio_env(settings, rate: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TELEGRAM_BOT_TOKEN": settings.token,
        "TELEGRAM_API_BASE_URL": settings.telegram_api_base_url,
        "TELEGRAM_RATE_PER_S": str(rate),
        "TELEGRAM_CHAT_RATE_PER_S": "1",
        "PORT": "0",
    }


# How long a window's outcomes may take to be written after its 429s: far less than the pause.
SETTLE_S = 2.0


def _barrio_run(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    script = str(Path(sys.executable).parent / "barrio")
    return subprocess.Popen(
        [script, "run"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _rows_waiting_out(settings, drawn: Callable[[], int]) -> int:
    """Wait (up to 10 s) until at least `drawn()` rows are back to `pending` to be sent after a
    429's pause, and then (up to `SETTLE_S` more) until no row is `sending`: the outcomes of a
    window still in flight when the 429s came back are written a moment later, under load more
    so. Returns how many rows are `sending` then: a row held `sending` through the 5 s pause
    would still be, which is what the test is after."""
    engine = db.create_engine(settings.database_url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    settled_by: float | None = None
    try:
        while True:
            async with engine.connect() as connection:
                later = await connection.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(
                        Delivery.status == DeliveryStatus.PENDING,
                        Delivery.not_before > datetime.now(UTC),
                    )
                )
                sending = await connection.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.status == DeliveryStatus.SENDING)
                )
            if (later or 0) >= drawn() and settled_by is None:
                settled_by = loop.time() + SETTLE_S
            waited_out = settled_by is not None and (not sending or loop.time() > settled_by)
            if waited_out or loop.time() > deadline:
                return int(sending or 0)
            await asyncio.sleep(0.01)
    finally:
        await engine.dispose()


async def _final_rows(settings) -> list[Delivery]:
    """Every row, once all are final (or after 60 s, for the assertions to say what is not)."""
    engine = db.create_engine(settings.database_url)
    sessions = db.session_factory(engine, utcnow)
    try:
        for _ in range(6000):
            async with sessions() as session:
                counts = dict(
                    (
                        await session.execute(
                            select(Delivery.status, func.count()).group_by(Delivery.status)
                        )
                    ).all()
                )
            if counts and all(s in FINAL for s in counts):
                break
            await asyncio.sleep(0.01)
        async with sessions() as session:
            return list((await session.scalars(select(Delivery))).all())
    finally:
        await engine.dispose()
