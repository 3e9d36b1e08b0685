"""`inbound_updates`: member messages through the whole stack against plain PTB bots.

Five bots poll the same Bot API emulator, which runs in its own process (as Telegram would be
elsewhere), and are fed the same burst of messages, timed from the burst to the last reply the
emulator records:
- a bare PTB echo (the issue's yardstick);
- a plain PTB bot sending the very replies our dialogue gives (menus with buttons, a directory
  page), with no database: what our answers cost PTB;
- the same plus the least per-message durable work (`bench.floor`), on the raw driver and
  through SQLAlchemy Core: what crash safety costs before any dialogue runs;
- the whole stack.
Same run, same machine: compare the ratios, not the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench import floor
from bot.inbound import CHANNEL
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.telegram import send
from handlers import admin
from handlers.core import Inbound, InboundKind, Reply
from handlers.dialogue import Dialogue
from models import (
    Base,
    ChannelIdentity,
    Conversation,
    Member,
    Membership,
    MembershipStatus,
    db,
)

TOKEN = "777000:BENCH-token"
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
MEMBERS = 200
FIRST_USER = 20_000
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://root@127.0.0.1:5432/test"
# What members send most: their barrio, a directory search, their profile, help, small talk.
MIX = tuple(os.environ.get("BENCH_MIX", "/barrio|/directorio pan|/perfil|/ayuda|hola").split("|"))
# Seconds for the burst, and this process's CPU milliseconds per message.
Timing = tuple[float, float]
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


async def _burst(control: httpx.AsyncClient, items: list[dict[str, Any]]) -> Timing:
    """Inject every message, wait until the bot has sent one reply per message; returns the
    seconds taken and this process's CPU milliseconds per message."""
    started = time.perf_counter()
    cpu = time.process_time()
    for start in range(0, len(items), 1000):
        response = await control.post(
            "/control/messages/bulk", json={"items": items[start : start + 1000]}
        )
        response.raise_for_status()
    # One long wait, answered by the emulator when the last reply arrives: polling for
    # progress would take CPU from the bot under test, which shares this process.
    deadline = started + 60 + len(items) / 20  # a bot slower than 20/s is broken, not slow
    while True:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(items)} replies not sent in {deadline - started:.0f} s")
        waited = await control.get(
            "/control/stats/wait", params={"sent_messages": len(items), "timeout": 30}
        )
        if waited.status_code != 408:
            waited.raise_for_status()
            elapsed = time.perf_counter() - started
            return elapsed, 1000 * (time.process_time() - cpu) / len(items)


def _messages() -> list[dict[str, Any]]:
    return [
        {"user_id": FIRST_USER + i % MEMBERS, "text": MIX[i % len(MIX)]} for i in range(MESSAGES)
    ]


Answer = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


async def _plain_ptb(base_url: str, control: httpx.AsyncClient, answer: Answer) -> Timing:
    """A python-telegram-bot application as its documentation builds one: `Updater` polling,
    one handler, nothing else."""
    application: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(TOKEN).base_url(f"{base_url}/bot").build()
    )
    application.add_handler(MessageHandler(filters.ALL, answer))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=10)
        elapsed = await _burst(control, _messages())
        await application.updater.stop()
        await application.stop()
    return elapsed


async def _echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(update.effective_message.text or "")


def _same_replies(replies: dict[str, list[Reply]]) -> Answer:
    """Sends, without any database or dialogue, the replies the dialogue gives to each text
    (menus with buttons, a directory page): what PTB alone costs for this bot's answers."""

    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        for reply in replies[message.text]:
            await send(context.bot, message.chat_id, reply.text, reply.options)

    return answer


def _durable_replies(replies: dict[str, list[Reply]], durable_turn: floor.FloorTurn) -> Answer:
    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        assert message.from_user is not None
        await durable_turn(str(message.from_user.id), str(update.update_id))
        for reply in replies[message.text]:
            await send(context.bot, message.chat_id, reply.text, reply.options)

    return answer


async def _floor(
    base_url: str,
    control: httpx.AsyncClient,
    replies: dict[str, list[Reply]],
    transaction: AbstractAsyncContextManager[floor.FloorTurn],
) -> Timing:
    async with transaction as durable_turn:
        return await _plain_ptb(base_url, control, _durable_replies(replies, durable_turn))


async def _replies_to_mix(runtime: Runtime) -> dict[str, list[Reply]]:
    dialogue = Dialogue(runtime.sessions, "bench_bot", clock=runtime.clock)
    sender = str(FIRST_USER + MEMBERS)  # registered, but not among the burst's senders
    replies = {}
    for typed in MIX:
        command, _, args = typed.removeprefix("/").partition(" ")
        inbound = (
            Inbound(CHANNEL, sender, InboundKind.COMMAND, text=typed, command=command, args=args)
            if typed.startswith("/")
            else Inbound(CHANNEL, sender, InboundKind.TEXT, text=typed)
        )
        replies[typed] = await dialogue.handle(inbound)
    return replies


async def _seed(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Bench", comuna="Rancagua", region="O'Higgins", open_to_all=True
        )
        for i in range(MEMBERS + 1):
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
            # Everyone has written before: the steady state, for every bot measured.
            session.add(Conversation(channel=CHANNEL, external_id=str(FIRST_USER + i), data={}))


def _settings(base_url: str, database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=base_url,
        telegram_mode="polling",
        public_base_url=None,
        # The plain PTB bots are not paced either: measure the stack, not Telegram's 30/s.
        telegram_rate_per_s=1_000_000,
    )


async def _whole_stack(base_url: str, control: httpx.AsyncClient, database_url: str) -> Timing:
    runtime = Runtime(_settings(base_url, database_url), serve_web=False)
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
    """Each configuration runs `ROUNDS` times, alternating; the best round of each counts, so
    a moment of noise from the machine's neighbours does not decide the ratio."""
    best: dict[str, Timing] = {}
    with tempfile.TemporaryDirectory() as directory:
        database_url = await _fresh_database(database, directory)
        async with (
            emulator_process() as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=60) as control,
        ):
            runtime = Runtime(_settings(base_url, database_url), serve_web=False)
            await db.upgrade(runtime.engine)
            await _seed(runtime)
            replies = await _replies_to_mix(runtime)
            await runtime.engine.dispose()
            configurations: dict[str, Callable[[], Awaitable[Timing]]] = {
                "bare PTB echo": lambda: _plain_ptb(base_url, control, _echo),
                "PTB sending the same replies": lambda: _plain_ptb(
                    base_url, control, _same_replies(replies)
                ),
                "PTB + receipt and sender on the raw driver": lambda: _floor(
                    base_url, control, replies, floor.raw_driver(database_url)
                ),
                "PTB + receipt and sender through SQLAlchemy Core": lambda: _floor(
                    base_url, control, replies, floor.sqlalchemy_core(database_url)
                ),
                "whole stack": lambda: _whole_stack(base_url, control, database_url),
            }
            for round_number in range(1, ROUNDS + 1):
                for label, measure in configurations.items():
                    _say(f"inbound_updates on {database}, round {round_number}: {label}…")
                    timing = await measure()
                    await control.post("/control/reset", json={})
                    best[label] = min(best.get(label, timing), timing)
    bare, same, raw, core, ours = (best[label] for label in configurations)
    return {
        "name": "inbound_updates",
        "database": database,
        "messages": MESSAGES,
        "updates_per_s": round(MESSAGES / ours[0], 1),
        "bare_ptb_updates_per_s": round(MESSAGES / bare[0], 1),
        "ratio": round(bare[0] / ours[0], 3),
        "same_replies_ptb_updates_per_s": round(MESSAGES / same[0], 1),
        "ratio_vs_same_replies": round(same[0] / ours[0], 3),
        "cpu_ms_per_update": round(ours[1], 2),
        "bare_cpu_ms_per_update": round(bare[1], 2),
        "same_replies_cpu_ms_per_update": round(same[1], 2),
        "floor_raw_driver_updates_per_s": round(MESSAGES / raw[0], 1),
        "floor_raw_driver_ratio": round(bare[0] / raw[0], 3),
        "floor_raw_driver_cpu_ms_per_update": round(raw[1], 2),
        "floor_sqlalchemy_updates_per_s": round(MESSAGES / core[0], 1),
        "floor_sqlalchemy_ratio": round(bare[0] / core[0], 3),
        "floor_sqlalchemy_cpu_ms_per_update": round(core[1], 2),
    }
