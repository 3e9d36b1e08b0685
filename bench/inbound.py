"""`inbound_updates`: member messages through the whole stack against a bare PTB echo bot.

Both bots poll the same Bot API emulator, which runs in its own process (as Telegram would be
elsewhere), are fed the same number of messages in one burst, and are timed from the burst to
the last reply the emulator records. Same run, same machine: compare the ratio, not the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.runtime import Runtime
from bot.settings import load_settings
from handlers import admin
from models import Base, ChannelIdentity, Member, Membership, MembershipStatus, db

TOKEN = "777000:BENCH-token"
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "3000"))
MEMBERS = 200
STATS_EVERY_S = 0.025
FIRST_USER = 20_000
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/test"
# What members send most: their barrio, a directory search, their profile, help, small talk.
MIX = tuple(os.environ.get("BENCH_MIX", "/barrio|/directorio pan|/perfil|/ayuda|hola").split("|"))
CATEGORIES = ("panaderia", "almacen", "comida", "ferreteria", "belleza")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def emulator_process(
    rate: float | None = None, chat_rate: float | None = None
) -> AsyncIterator[str]:
    """The Bot API emulator in its own process, as Telegram is elsewhere; yields its URL."""
    limits = []
    if rate is not None:
        limits += ["--rate", str(rate)]
    if chat_rate is not None:
        limits += ["--chat-rate", str(chat_rate)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.emulator.telegram",
        "--port",
        "0",
        "--token",
        TOKEN,
        *limits,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    base_url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    try:
        yield base_url
    finally:
        process.terminate()
        await process.wait()


async def _burst(control: httpx.AsyncClient, items: list[dict[str, Any]]) -> tuple[float, float]:
    """Inject every message, wait until the bot has sent one reply per message; returns the
    seconds taken and this process's CPU milliseconds per message."""
    started = time.perf_counter()
    cpu = time.process_time()
    for start in range(0, len(items), 1000):
        response = await control.post(
            "/control/messages/bulk", json={"items": items[start : start + 1000]}
        )
        response.raise_for_status()
    while True:
        stats = (await control.get("/control/stats")).json()
        if _replies(stats) >= len(items):
            elapsed = time.perf_counter() - started
            return elapsed, 1000 * (time.process_time() - cpu) / len(items)
        # This loop shares the process (and its CPU) with the bot under test: ask seldom.
        # 25 ms is under 1% of the shortest run.
        await asyncio.sleep(STATS_EVERY_S)


def _replies(stats: dict[str, Any]) -> int:
    return int(stats["sent_messages"])


def _messages() -> list[dict[str, Any]]:
    return [
        {"user_id": FIRST_USER + i % MEMBERS, "text": MIX[i % len(MIX)]} for i in range(MESSAGES)
    ]


async def _bare_echo(base_url: str, control: httpx.AsyncClient) -> tuple[float, float]:
    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    application: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(TOKEN).base_url(f"{base_url}/bot").build()
    )
    application.add_handler(MessageHandler(filters.ALL, echo))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=10)
        elapsed = await _burst(control, _messages())
        await application.updater.stop()
        await application.stop()
    return elapsed


async def _seed(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Bench", comuna="Rancagua", region="O'Higgins", open_to_all=True
        )
        for i in range(MEMBERS):
            member = Member(
                name=f"Socia {i}",
                business_name=f"Negocio {i}",
                consent_at=now,
                business_category=CATEGORIES[i % len(CATEGORIES)],
            )
            member.identities = [
                ChannelIdentity(channel="telegram", external_id=str(FIRST_USER + i))
            ]
            member.memberships = [
                Membership(barrio=barrio, status=MembershipStatus.ACTIVE, decided_at=now)
            ]
            session.add(member)


async def _whole_stack(
    base_url: str, control: httpx.AsyncClient, database_url: str
) -> tuple[float, float]:
    settings = load_settings(
        database_url=database_url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=base_url,
        telegram_mode="polling",
        public_base_url=None,
        # The bare echo bot is not paced either: measure the stack, not Telegram's 30/s.
        telegram_rate_per_s=1_000_000,
    )
    runtime = Runtime(settings, serve_web=False)
    await db.upgrade(runtime.engine)
    await _seed(runtime)
    await runtime.start()
    try:
        return await _burst(control, _messages())
    finally:
        await runtime.stop()


async def _fresh_database(database: str, directory: str) -> str:
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{directory}/bench.sqlite3"
    url = load_settings(
        database_url=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    ).database_url
    engine = db.create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()
    return url


async def postgres_answers() -> bool:
    url = load_settings(
        database_url=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    ).database_url
    engine = db.create_engine(url)
    try:
        await asyncio.wait_for(db.ping(engine), 5)
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


async def run(database: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        database_url = await _fresh_database(database, directory)
        async with (
            emulator_process() as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=60) as control,
        ):
            _say(f"inbound_updates on {database}: bare PTB echo, {MESSAGES} messages…")
            bare, bare_cpu = await _bare_echo(base_url, control)
            await control.post("/control/reset", json={})
            _say(f"inbound_updates on {database}: whole stack, {MESSAGES} messages…")
            ours, our_cpu = await _whole_stack(base_url, control, database_url)
    bare_rate, our_rate = MESSAGES / bare, MESSAGES / ours
    return {
        "name": "inbound_updates",
        "database": database,
        "messages": MESSAGES,
        "updates_per_s": round(our_rate, 1),
        "bare_ptb_updates_per_s": round(bare_rate, 1),
        "ratio": round(our_rate / bare_rate, 3),
        "cpu_ms_per_update": round(our_cpu, 2),
        "bare_cpu_ms_per_update": round(bare_cpu, 2),
    }
