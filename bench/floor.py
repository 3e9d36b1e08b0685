"""The least a bot must do per message to be as crash-safe as ours, with no dialogue at all.

In one transaction: mark the update processed (so a replay after a crash is skipped) and read
who sent it (conversation, member, memberships, barrios). Run straight on the driver and
through SQLAlchemy Core, so `inbound_updates` shows how much of its target this alone uses up.
It is a floor: the real stack also stores each update before acknowledging it, loads ORM
objects and runs the dialogue.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.inbound import CHANNEL
from models import db

# (sender id, update id) → one committed transaction.
FloorTurn = Callable[[str, str], Awaitable[None]]

RECEIPT = (
    "UPDATE inbound_updates SET processed_at = CURRENT_TIMESTAMP, payload = NULL"
    " WHERE channel = :channel AND platform_id = :update_id AND processed_at IS NULL"
)
STATE = (
    "SELECT c.id, c.flow, c.step, c.data, m.id, m.name, m.business_name, m.business_category,"
    " ms.barrio_id, ms.role, ms.status, b.name, b.comuna"
    " FROM conversations c"
    " LEFT JOIN channel_identities ci"
    "  ON ci.channel = c.channel AND ci.external_id = c.external_id"
    " LEFT JOIN members m ON m.id = ci.member_id"
    " LEFT JOIN memberships ms ON ms.member_id = m.id"
    " LEFT JOIN barrios b ON b.id = ms.barrio_id"
    " WHERE c.channel = :channel AND c.external_id = :sender"
)


@contextlib.asynccontextmanager
async def raw_driver(database_url: str) -> AsyncIterator[FloorTurn]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        lite = await aiosqlite.connect(url.database, isolation_level=None)

        async def sqlite_turn(sender: str, update_id: str) -> None:
            await lite.execute("BEGIN")
            await lite.execute(RECEIPT, {"channel": CHANNEL, "update_id": update_id})
            await (await lite.execute(STATE, {"channel": CHANNEL, "sender": sender})).fetchall()
            await lite.execute("COMMIT")

        try:
            yield sqlite_turn
        finally:
            await lite.close()
        return
    pg = await asyncpg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    receipt, state = _numbered(RECEIPT), _numbered(STATE)

    async def postgres_turn(sender: str, update_id: str) -> None:
        async with pg.transaction():
            await pg.execute(receipt, CHANNEL, update_id)
            await pg.fetch(state, CHANNEL, sender)

    try:
        yield postgres_turn
    finally:
        await pg.close()


@contextlib.asynccontextmanager
async def sqlalchemy_core(database_url: str) -> AsyncIterator[FloorTurn]:
    engine = db.create_engine(database_url)
    receipt, state = text(RECEIPT), text(STATE)

    async def turn(sender: str, update_id: str) -> None:
        async with engine.begin() as connection:
            await connection.execute(receipt, {"channel": CHANNEL, "update_id": update_id})
            (await connection.execute(state, {"channel": CHANNEL, "sender": sender})).all()

    try:
        yield turn
    finally:
        await engine.dispose()


def _numbered(sql: str) -> str:
    """asyncpg takes $1, $2: the channel first, then the update or sender id."""
    names: dict[str, Any] = {"channel": "$1"}
    return re.sub(r":(\w+)", lambda m: names.setdefault(m.group(1), "$2"), sql)
