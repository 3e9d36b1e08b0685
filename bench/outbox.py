"""Outbox benchmarks against the emulator enforcing Telegram-style rate limits.

`broadcast_10k`: 10,000 queued messages, emulator limit 300/s (Telegram's 30/s scaled up so
the run takes about half a minute): attained rate as a fraction of the limit, 429s drawn,
messages lost and duplicated. `alert_200`: a member confirms `/alerta` in a barrio of 200, at
Telegram's real 30/s: seconds to the first and the last delivery, next to the floor 199/30.
`alert_200_flood`: the same while 10 members flood the bot with messages, from a second before
the alert is confirmed until its last delivery; the target is the last delivery within 1.1×
of the same floor.

The alert's deliveries are timed by the outbox's own `sent_at` stamps (taken as each send's
answer arrives), not by polling the emulator's list of sent messages: that list grows with
every flood reply, and reading it back every few milliseconds would take the CPU of the bot
under test, which shares this process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from bench.inbound import TOKEN, _fresh_database, emulator_process
from bot.runtime import Runtime
from bot.settings import load_settings
from handlers import admin
from handlers.outbox import barrio_recipients, enqueue
from models import (
    ChannelIdentity,
    Delivery,
    DeliveryStatus,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    Role,
    db,
)

FIRST_USER = 100_000


async def _seed_barrio(runtime: Runtime, size: int) -> int:
    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Bench", comuna="Rancagua", region="O'Higgins", open_to_all=True
        )
        first_id = FIRST_USER
        await session.execute(
            # render_nulls: without it the ORM's bulk insert leaves out a None column, and the
            # default quiet hours (22:00–08:00) would hold every message sent at night.
            insert(Member).execution_options(render_nulls=True),
            [
                {
                    "id": first_id + i,
                    "name": f"Socia {i}",
                    "business_name": f"Negocio {i}",
                    "business_category": "almacen",
                    "consent_at": now,
                    "show_in_directory": True,
                    "show_phone": False,
                    "show_address": False,
                    "search_text": f"socia {i}",
                    "quiet_start": None,
                    "quiet_end": None,
                    "created_at": now,
                }
                for i in range(size)
            ],
        )
        await session.execute(
            insert(ChannelIdentity),
            [
                {
                    "member_id": first_id + i,
                    "channel": "telegram",
                    "external_id": str(first_id + i),
                    "created_at": now,
                }
                for i in range(size)
            ],
        )
        await session.execute(
            insert(Membership),
            [
                {
                    "member_id": first_id + i,
                    "barrio_id": barrio.id,
                    "created_at": now,
                    "role": Role.COORDINATOR if i == 0 else Role.MEMBER,
                    "status": MembershipStatus.ACTIVE,
                    "decided_at": now,
                }
                for i in range(size)
            ],
        )
        return barrio.id


async def _runtime(base_url: str, database_url: str, rate: float) -> Runtime:
    settings = load_settings(
        database_url=database_url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=base_url,
        telegram_mode="polling",
        public_base_url=None,
        telegram_rate_per_s=rate,
    )
    runtime = Runtime(settings, serve_web=False)
    await db.upgrade(runtime.engine)
    return runtime


@contextlib.asynccontextmanager
async def _barrio_on_emulator(
    database: str, size: int, rate: float
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient, int]]:
    """A fresh database with a barrio of `size` members who all started the bot, the emulator
    in its own process enforcing `rate` (and 1/s per chat), and the bot running."""
    with tempfile.TemporaryDirectory() as directory:
        database_url = await _fresh_database(database, directory)
        async with (
            emulator_process(rate=rate, chat_rate=1) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=120) as control,
        ):
            runtime = await _runtime(base_url, database_url, rate)
            barrio_id = await _seed_barrio(runtime, size)
            ids = list(range(FIRST_USER, FIRST_USER + size))
            (await control.post("/control/chats", json={"user_ids": ids})).raise_for_status()
            await runtime.start()
            try:
                yield runtime, control, barrio_id
            finally:
                await runtime.stop()


async def _sent_total(control: httpx.AsyncClient) -> int:
    return int((await control.get("/control/stats")).json()["sent_messages"])


async def broadcast_10k(database: str, size: int = 10_000, rate: float = 300) -> dict[str, Any]:
    async with _barrio_on_emulator(database, size, rate) as (runtime, control, barrio_id):
        baseline = await _sent_total(control)
        async with runtime.sessions() as session, session.begin():
            recipients = await barrio_recipients(session, [barrio_id])
            await enqueue(
                session,
                recipients,
                "Corte de agua mañana de 9 a 12 en todo el barrio.",
                now=runtime.clock(),
                zone=runtime.settings.zone,
                broadcast="bench",
                priority=Priority.BROADCAST,
                urgent=True,
            )
        assert runtime.dispatcher is not None
        started = time.perf_counter()  # queued and committed: the dispatcher's turn
        runtime.dispatcher.wake()
        while await _sent_total(control) - baseline < size:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(1)  # anything sent twice would show up now
        sent = (await control.get("/control/sent")).json()
        stats = (await control.get("/control/stats")).json()
    ids = range(FIRST_USER, FIRST_USER + size)
    per_chat = collections.Counter(m["chat_id"] for m in sent if m["chat_id"] >= FIRST_USER)
    attained = size / elapsed
    return {
        "name": "broadcast_10k",
        "database": database,
        "recipients": size,
        "limit_per_s": rate,
        "attained_per_s": round(attained, 1),
        "fraction_of_limit": round(attained / rate, 3),
        "http_429": stats["http_429"],
        "lost": sum(1 for i in ids if per_chat[i] == 0),
        "duplicated": sum(1 for count in per_chat.values() if count > 1),
    }


async def _tap(control: httpx.AsyncClient, user_id: int, label: str) -> None:
    messages = (await control.get("/control/sent", params={"chat_id": user_id})).json()
    for message in reversed(messages):
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if label in button["text"]:
                    await control.post(
                        "/control/callbacks",
                        json={
                            "user_id": user_id,
                            "message_id": message["message_id"],
                            "data": button["callback_data"],
                        },
                    )
                    return
    raise RuntimeError(f"no button {label!r} for {user_id}")


async def _say(control: httpx.AsyncClient, user_id: int, text: str) -> None:
    await control.post("/control/messages", json={"user_id": user_id, "text": text})


FLOOD_ACCOUNTS = 10
FLOOD_PER_ACCOUNT_PER_S = 4  # 40 messages/s in all: more than the bot may send
FLOOD_LEAD_S = 1.0
FLOOD_TEXTS = ("hola", "/ayuda", "/barrio")


async def alert_200(database: str, size: int = 200, rate: float = 30) -> dict[str, Any]:
    return await _alert("alert_200", database, size, rate, flood_accounts=0)


async def alert_200_flood(database: str, size: int = 200, rate: float = 30) -> dict[str, Any]:
    return await _alert("alert_200_flood", database, size, rate, flood_accounts=FLOOD_ACCOUNTS)


async def _alert(
    name: str, database: str, size: int, rate: float, *, flood_accounts: int
) -> dict[str, Any]:
    author = FIRST_USER + 1
    flooders = [author + 1 + i for i in range(flood_accounts)]
    async with _barrio_on_emulator(database, size, rate) as (runtime, control, _barrio):
        for step in ("/alerta", "Robo", "Forzaron la reja del local 12", "Seguir sin"):
            before = await _sent_total(control)
            if step.startswith("/") or step.startswith("Forzaron"):
                await _say(control, author, step)
            else:
                await _tap(control, author, step)
            while await _sent_total(control) == before:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
        flooding = asyncio.Event()
        flood = asyncio.create_task(_flood(control, flooders, flooding)) if flooders else None
        try:
            if flood is not None:
                await asyncio.sleep(FLOOD_LEAD_S)
            started = datetime.now(UTC)
            await _tap(control, author, "Enviar alerta")
            first, last = await _alert_delivered(runtime, size - 1, started)
        finally:
            flooding.set()
            if flood is not None:
                flood_messages = await flood
                print(f"  {name}: {flood_messages} flood messages", file=sys.stderr)
    return {
        "name": name,
        "database": database,
        "recipients": size - 1,
        "limit_per_s": rate,
        "first_delivery_s": round(first, 3),
        "last_delivery_s": round(last, 3),
        "floor_s": round((size - 1) / rate, 3),
    }


async def _flood(control: httpx.AsyncClient, flooders: list[int], done: asyncio.Event) -> int:
    """Every flooder writes `FLOOD_PER_ACCOUNT_PER_S` messages a second until `done`."""
    tick = 1 / FLOOD_PER_ACCOUNT_PER_S
    sent = 0
    while not done.is_set():
        text = FLOOD_TEXTS[sent // len(flooders) % len(FLOOD_TEXTS)]
        items = [{"user_id": user_id, "text": text} for user_id in flooders]
        (await control.post("/control/messages/bulk", json={"items": items})).raise_for_status()
        sent += len(items)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), tick)
    return sent


async def _alert_delivered(runtime: Runtime, count: int, started: datetime) -> tuple[float, float]:
    """Seconds from `started` to the first and the last of the alert's `count` deliveries."""
    alerts = Delivery.broadcast.like("alert:%")
    while True:
        async with runtime.sessions() as session:
            total, done, first, last = (
                await session.execute(
                    select(
                        func.count(),
                        func.count().filter(Delivery.status == DeliveryStatus.SENT),
                        func.min(Delivery.sent_at),
                        func.max(Delivery.sent_at),
                    ).where(alerts)
                )
            ).one()
        if total >= count and done >= count:
            return (first - started).total_seconds(), (last - started).total_seconds()
        await asyncio.sleep(0.05)
