"""Engine, sessions and migrations. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import EMPTY_DICT

from models.entities import SESSION_CLOCK

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    # `hide_parameters`: an error's bound values are names and texts people typed; logs carry
    # ids only. Every connection is used through a Session, which always ends its transaction
    # (commit, or rollback on close); the pool's own reset-on-return would be a second round trip.
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            pool_reset_on_return=None,
            hide_parameters=True,
            module=_OneHopDBAPI(aiosqlite, sqlite3),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_reset_on_return=None,
        hide_parameters=True,
    )


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A statement in one hop to aiosqlite's thread. SQLAlchemy's own cursor takes four
    (create the cursor, execute, fetch the rows, close), and each hop is a round trip between
    threads (a queue, the GIL, a wake-up of the event loop) that costs more CPU than SQLite
    takes to run a statement of ours (`whatsapp_webhook` bench). The rows are fetched whole,
    as SQLAlchemy's cursor does; the connection and its transactions are aiosqlite's, as
    before."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # Not the base's: it creates aiosqlite's cursor, a hop of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows = collections.deque()
        self._soft_closed_memoized = EMPTY_DICT
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None  # sqlite3's: None until a row was inserted
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[no-any-return]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        def run() -> tuple[Any, int, int | None, list[Any] | None]:
            cursor = self._connection._conn.cursor()
            try:
                cursor.execute(operation, () if parameters is None else parameters)
                rows = cursor.fetchall() if cursor.description else None
                return cursor.description, cursor.rowcount, cursor.lastrowid, rows
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            outcome = await self._connection._execute(run)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        if rows is not None:
            self._rows = collections.deque(rows)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        def run() -> tuple[int, int | None]:
            cursor = self._connection._conn.cursor()
            try:
                cursor.executemany(operation, seq_of_parameters)
                return cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            self._rowcount, self._lastrowid = await self._connection._execute(run)
        self._description = None

    async def _async_soft_close(self) -> None:
        pass  # nothing is open on the thread once a statement is done

    def close(self) -> None:
        self._rows.clear()


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneHopCursor


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy adapts it, its connections making `_OneHopCursor`s."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneHopConnection(self, adapted._connection)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the admin commands read and write while the bot runs; foreign keys make
    # ON DELETE CASCADE real, which the right to erasure depends on.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten in the file, not left in its free pages: erased is erased
    # on disk too (some builds have it on by default, not all).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class _OneWriterAtATime(AsyncSessionTransaction):
    """A transaction that waits its turn in this process. SQLite lets one connection write at
    a time; a second writer does not queue but sleeps in SQLite's busy handler (1, 2, 5 … 100
    ms) and tries again, so a burst of turns spent more time asleep than working
    (`whatsapp_webhook` bench: 0.29 of its yardstick, 0.38 with this). Other processes (the
    admin commands, another replica) still meet the busy handler, as before."""

    async def __aenter__(self) -> AsyncSessionTransaction:
        lock: asyncio.Lock = self.session.info[WRITE_LOCK]
        await lock.acquire()
        try:
            return await super().__aenter__()
        except BaseException:
            lock.release()
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        finally:
            self.session.info[WRITE_LOCK].release()


class _SerialisedSession(AsyncSession):
    def begin(self) -> AsyncSessionTransaction:
        return _OneWriterAtATime(self)


WRITE_LOCK = "write_lock"


def session_factory(
    engine: AsyncEngine, clock: Callable[[], datetime]
) -> async_sessionmaker[AsyncSession]:
    """Sessions that stamp rows with `clock`: the runtime's one clock (see entities). On
    SQLite, `session.begin()` transactions of one process take turns (`_OneWriterAtATime`):
    so none may open another inside it."""
    if engine.dialect.name == "sqlite":
        return async_sessionmaker(
            engine,
            class_=_SerialisedSession,
            expire_on_commit=False,
            info={SESSION_CLOCK: clock, WRITE_LOCK: _lock_of(engine)},
        )
    return async_sessionmaker(engine, expire_on_commit=False, info={SESSION_CLOCK: clock})


# One per engine: every session factory on an engine shares its writers' turn.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_of(engine: AsyncEngine) -> asyncio.Lock:
    return _WRITE_LOCKS.setdefault(engine.sync_engine, asyncio.Lock())


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations on the given engine (the engine's own URL, not alembic.ini's)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def off_the_disk(sessions: async_sessionmaker[AsyncSession]) -> None:
    """After an erasure: on SQLite, what the deleted rows held may still be in the
    write-ahead log's older frames (the database file itself was overwritten, secure_delete):
    checkpoint it into the file and truncate it. Nothing to do on PostgreSQL."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return
    async with _lock_of(engine):  # no writer of this process in between
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
