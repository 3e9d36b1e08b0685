"""`reminders_10k`: a real `barrio run` process over 10,000 pending reminders.

The database holds 10,000 pending meeting reminders: `WINDOW` of them fall due within a window
of `WINDOW_S` seconds that opens `LEAD_S` after the process is started, the rest are due from
two hours to a month ahead. The bot is `barrio run` in its own process (bench/barrio_run.py: the
real command plus a hook that prints when the reminder loop is ready and what it fires), against
the emulator in another, at Telegram's 30 messages/s.

Figures: `startup_s`, from starting the process to the end of the reminder loop's first pass
(`ReminderLoop.ready`: schedule rebuilt from the database); `lateness_p50_s` / `_p99_s` /
`_max_s`, from each due time to the commit of its outbox rows (`ReminderLoop.on_fired`);
`rss_mb`, the process's resident memory (VmRSS) after the window, and `rss_peak_mb` (VmHWM).
Targets: start-up under 2 s, p99 lateness under 1 s, RSS under 150 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, insert, update

from bench.inbound import TOKEN, _fresh_database, emulator_process
from handlers import admin
from models import (
    ChannelIdentity,
    Meeting,
    MeetingInvitation,
    MeetingStatus,
    Member,
    Membership,
    MembershipStatus,
    Reminder,
    ReminderKind,
    ReminderStatus,
    db,
)
from models.entities import utcnow

REMINDERS = 10_000
WINDOW = 300
LEAD_S = 4.0
WINDOW_S = 5.0
BARRIOS = 10
MEMBERS_PER_BARRIO = 40
FIRST_USER = 300_000
RATE = 30.0
ROOT = Path(__file__).resolve().parent.parent


async def reminders_10k(database: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        database_url = await _fresh_database(database, directory)
        engine = db.create_engine(database_url)
        try:
            await db.upgrade(engine)
            users, window_ids = await _seed(engine)
            async with (
                emulator_process(rate=RATE, chat_rate=1) as base_url,
                httpx.AsyncClient(base_url=base_url, timeout=60) as control,
            ):
                (await control.post("/control/chats", json={"user_ids": users})).raise_for_status()
                figures = await _measure(engine, database_url, base_url, window_ids, directory)
        finally:
            await engine.dispose()
    return {"name": "reminders_10k", "database": database, **figures}


async def _seed(engine: Any) -> tuple[list[int], list[int]]:
    """`BARRIOS` barrios of `MEMBERS_PER_BARRIO` members, no quiet hours; `WINDOW` meetings
    hours ahead with one reminder each (due time set at start, `_open_window`), each inviting
    its barrio; and meetings a day to a month ahead with two reminders each (24 h and 2 h
    before), up to `REMINDERS`. Returns the members' Telegram ids and the window's reminders."""
    now = utcnow()
    users = list(range(FIRST_USER, FIRST_USER + BARRIOS * MEMBERS_PER_BARRIO))
    async with db.session_factory(engine, utcnow)() as session, session.begin():
        barrios = [
            (
                await admin.create_barrio(
                    session,
                    name=f"Barrio {b}",
                    comuna="Valparaíso",
                    region="Valparaíso",
                    open_to_all=True,
                )
            ).id
            for b in range(BARRIOS)
        ]
        member_ids = list(
            await session.scalars(
                # render_nulls: without it the ORM's bulk insert leaves out a None column, and the
                # default quiet hours (22:00–08:00) would hold every message sent at night.
                insert(Member)
                .execution_options(render_nulls=True)
                .returning(Member.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"Socia {u}",
                        "business_name": f"Negocio {u}",
                        "business_category": "almacen",
                        "consent_at": now,
                        "search_text": f"socia {u}",
                        "quiet_start": None,
                        "quiet_end": None,
                        "created_at": now,
                    }
                    for u in users
                ],
            )
        )
        await session.execute(
            insert(ChannelIdentity),
            [
                {"member_id": m, "channel": "telegram", "external_id": str(u), "created_at": now}
                for m, u in zip(member_ids, users, strict=True)
            ],
        )
        members_of = {
            barrio: member_ids[i * MEMBERS_PER_BARRIO : (i + 1) * MEMBERS_PER_BARRIO]
            for i, barrio in enumerate(barrios)
        }
        await session.execute(
            insert(Membership),
            [
                {
                    "member_id": m,
                    "barrio_id": barrio,
                    "status": MembershipStatus.ACTIVE,
                    "decided_at": now,
                    "created_at": now,
                }
                for barrio, members in members_of.items()
                for m in members
            ],
        )
        far = (REMINDERS - WINDOW) // 2
        starts = [now + timedelta(hours=3, seconds=i) for i in range(WINDOW)] + [
            now + timedelta(days=1, hours=2) + timedelta(days=30) * i / far for i in range(far)
        ]
        meetings = list(
            await session.scalars(
                insert(Meeting).returning(Meeting.id, sort_by_parameter_order=True),
                [
                    {
                        "barrio_id": barrios[i % BARRIOS],
                        "title": f"Reunión {i}",
                        "starts_at": start,
                        "place": "Sede vecinal",
                        "status": MeetingStatus.SCHEDULED,
                        "created_at": now,
                    }
                    for i, start in enumerate(starts)
                ],
            )
        )
        window = meetings[:WINDOW]
        await session.execute(
            insert(MeetingInvitation),
            [
                {"meeting_id": meeting, "member_id": member, "invited_at": now}
                for i, meeting in enumerate(window)
                for member in members_of[barrios[i % BARRIOS]]
            ],
        )
        rows = [
            _reminder(meeting, starts[i], 0, now, due=now + timedelta(days=1))
            for i, meeting in enumerate(window)
        ]
        for i, meeting in enumerate(meetings[WINDOW:], start=WINDOW):
            for minutes in (24 * 60, 2 * 60):
                rows.append(_reminder(meeting, starts[i], minutes, now))
        assert len(rows) == REMINDERS
        ids = list(
            await session.scalars(
                insert(Reminder).returning(Reminder.id, sort_by_parameter_order=True), rows
            )
        )
    return users, ids[:WINDOW]


def _reminder(
    meeting: int, starts: datetime, minutes: int, now: datetime, due: datetime | None = None
) -> dict[str, Any]:
    return {
        "key": f"meeting:{meeting}:{minutes}:{starts:%Y%m%dT%H%M}",
        "kind": ReminderKind.MEETING,
        "meeting_id": meeting,
        "due_at": due or starts - timedelta(minutes=minutes),
        "status": ReminderStatus.PENDING,
        "recipients": 0,
        "created_at": now,
    }


async def _open_window(engine: Any, window_ids: list[int], opens: datetime) -> None:
    """The window's reminders fall due evenly from `opens` over `WINDOW_S`."""
    async with engine.begin() as connection:
        await connection.execute(
            update(Reminder).where(Reminder.id == bindparam("rid")).values(due_at=bindparam("due")),
            [
                {"rid": rid, "due": opens + timedelta(seconds=WINDOW_S * i / WINDOW)}
                for i, rid in enumerate(window_ids)
            ],
        )


async def _measure(
    engine: Any, database_url: str, base_url: str, window_ids: list[int], directory: str
) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": base_url,
        "TELEGRAM_RATE_PER_S": str(RATE),
        "PORT": "0",
    }
    opens = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    await _open_window(engine, window_ids, opens)
    log = Path(directory) / "barrio.log"
    lines: dict[str, float] = {}
    fired: list[float] = []
    with log.open("wb") as stderr:
        spawned = time.time()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.barrio_run",
            env=env,
            cwd=directory,  # not the checkout: its .env must not change the settings
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    reader = asyncio.create_task(_read(process, lines, fired))
    rss_at_ready = None
    try:
        # A second past the window, and until all its reminders fired (at most 10 s more).
        until = opens.timestamp() + WINDOW_S + 1.0
        give_up = until + 10.0
        while (time.time() < until or len(fired) < WINDOW) and time.time() < give_up:
            if reader.done():
                break
            if rss_at_ready is None and "ready" in lines:
                rss_at_ready = _memory(process.pid)["VmRSS"]
            await asyncio.sleep(0.05)
        if reader.done() or "ready" not in lines:
            raise RuntimeError(f"barrio run did not get ready: {log.read_text()[-2000:]}")
        memory = _memory(process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        await reader
    lateness = sorted(fired)
    return {
        "process": "barrio run (bench/barrio_run.py)",
        "reminders": REMINDERS,
        "due_in_window": WINDOW,
        "window_s": WINDOW_S,
        "fired": len(fired),
        "startup_s": round(lines["ready"] - spawned, 3),
        "interpreter_s": round(lines["started"] - spawned, 3),
        "first_pass_s": round(lines["ready"] - lines["loop"], 3),
        "lateness_p50_s": _percentile(lateness, 50),
        "lateness_p99_s": _percentile(lateness, 99),
        "lateness_max_s": round(lateness[-1], 3) if lateness else None,
        "rss_mb": round(memory["VmRSS"] / 1024, 1),
        "rss_at_ready_mb": round((rss_at_ready or 0) / 1024, 1),
        "rss_peak_mb": round(memory["VmHWM"] / 1024, 1),
    }


async def _read(
    process: asyncio.subprocess.Process, lines: dict[str, float], fired: list[float]
) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        kind, *values = raw.decode().split()
        if kind == "fired":
            due, written = map(float, values)
            fired.append(written - due)
        else:
            lines[kind] = float(values[0])


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in kB (Linux /proc)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q% of the values at or below it."""
    if not values:
        return None
    return round(values[max(0, math.ceil(q / 100 * len(values)) - 1)], 3)
