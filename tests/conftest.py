"""Fixtures: a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL), the Bot API
emulator, and the real bot running against both."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.emulator.telegram import TelegramEmulator, serve_emulator
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from models import Base, db
from tests.support import BOT_ID, BOT_USERNAME, TOKEN, Phone, ShiftedClock


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        url = load_settings(database_url=configured).database_url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    asyncio.run(_recreate(url))
    return url


async def _recreate(url: str) -> None:
    engine = db.create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await db.upgrade(engine)
    await engine.dispose()


@pytest.fixture
def clean_database(database_url: str) -> str:
    asyncio.run(_empty(database_url))
    return database_url


async def _empty(url: str) -> None:
    engine = db.create_engine(url)
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())
    await engine.dispose()


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator(token=TOKEN, bot_id=BOT_ID, bot_username=BOT_USERNAME)
    async with serve_emulator(emulator):
        yield emulator


@pytest.fixture
def settings(clean_database: str, emulator: TelegramEmulator, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=clean_database,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=emulator.base_url,
        telegram_mode="polling",
        public_base_url=None,
        host="127.0.0.1",
        port=0,
        # Telegram's real pacing would make every test wait a second per notice.
        telegram_rate_per_s=1000,
        telegram_chat_rate_per_s=1000,
    )


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def runtime(settings: Settings, clock: ShiftedClock) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
def phone(emulator: TelegramEmulator, runtime: Runtime) -> type[Phone]:
    """Make a person's phone: `ana = phone(5002, "Ana")`."""

    def make(user_id: int, name: str = "Ana") -> Phone:
        return Phone(emulator, runtime, user_id, name)

    return make  # type: ignore[return-value]


@pytest.fixture
def cli_env(clean_database, monkeypatch, tmp_path):
    """The admin command line's environment: the test database, no Telegram token."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", clean_database)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "BarrioTestBot")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    return tmp_path
