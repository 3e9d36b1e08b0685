"""Two `barrio run` processes on one PostgreSQL database fire every reminder exactly once, also
when one of them is killed (SIGKILL) half-way: the claim is in the database (`FOR UPDATE SKIP
LOCKED` and a conditional update, scheduler/reminders.py), not in either process.

The reminders are seeded straight into the database, due over a few seconds of real time; both
processes are running when they fall due and race for them. A trigger (installed by the test,
removed after) records every claim with the client port of the connection that made it, so the
test can tell which process fired what: the one killed must have fired some first.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import admin
from models import (
    ChannelIdentity,
    Delivery,
    DeliveryStatus,
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
from scheduler.outbox import FINAL, STALE_SENDING_S

MEMBERS = 25
# One reminder per meeting: a meeting's broadcast then holds exactly one message per member.
MEETINGS = 150
FIRST_USER = 70_000
# The first reminder falls due this long after seeding (both processes are up by then), the
# last one SPREAD_S later.
LEAD_S = 3.0
SPREAD_S = 3.0
RATE = 800

CLAIMS = (
    "CREATE TABLE test_reminder_claims"
    " (reminder_id bigint NOT NULL, client_port integer, at timestamptz NOT NULL)",
    """CREATE FUNCTION test_record_claim() RETURNS trigger AS $$
    BEGIN
        INSERT INTO test_reminder_claims VALUES (NEW.id, inet_client_port(), clock_timestamp());
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    # A claim stamps `done_at`; writing the outcome afterwards does not.
    "CREATE TRIGGER test_record_claim AFTER UPDATE ON reminders FOR EACH ROW"
    " WHEN (NEW.status = 'fired' AND NEW.done_at IS DISTINCT FROM OLD.done_at)"
    " EXECUTE FUNCTION test_record_claim()",
)
NO_CLAIMS = (
    "DROP TRIGGER IF EXISTS test_record_claim ON reminders",
    "DROP FUNCTION IF EXISTS test_record_claim()",
    "DROP TABLE IF EXISTS test_reminder_claims",
)


async def test_two_replicas_fire_each_reminder_once_even_when_one_is_killed(
    settings, emulator, tmp_path
):
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        pytest.skip("needs PostgreSQL (TEST_DATABASE_URL): SQLite has one writer anyway")
    users = list(range(FIRST_USER, FIRST_USER + MEMBERS))
    emulator.start_chats(users)
    engine = db.create_engine(settings.database_url)
    try:
        await _script(engine, NO_CLAIMS + CLAIMS)
        meetings, reminder_ids = await _seed(engine, users)
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "TELEGRAM_BOT_TOKEN": settings.token,
            "TELEGRAM_API_BASE_URL": settings.telegram_api_base_url,
            "TELEGRAM_RATE_PER_S": str(RATE),
            # 150 reminders to each member in a few seconds: Telegram's 1/s per chat would
            # make the test wait minutes for what it is not about.
            "TELEGRAM_CHAT_RATE_PER_S": str(RATE),
            "PORT": "0",
        }
        replicas = {name: _barrio_run(env, tmp_path, name) for name in ("a", "b")}
        restarted: subprocess.Popen[bytes] | None = None
        try:
            ports: dict[str, set[int]] = {name: set() for name in replicas}
            at_kill = await _kill_a_mid_way(engine, replicas, ports)
            # The survivor fires the rest and sends what it can.
            await _until(engine, _all_fired_and_nothing_pending, "the survivor to finish")
            if await _stuck_sending(engine, emulator):
                # Rows the killed process left `sending` are settled as ambiguous once stale
                # (STALE_SENDING_S), at a start or by the survivor's sweep: set back rather
                # than waited for, then settled when it starts again (as its supervisor would
                # start it), once the survivor has nothing in flight.
                await _long_stuck(engine)
                restarted = _barrio_run(env, tmp_path, "a-again")
            await _until(engine, _outbox_final, "every delivery to be final")
        finally:
            for process in (*replicas.values(), restarted):
                if process is not None:
                    _stop(process)
        reminders = await _rows(
            engine,
            select(Reminder.id, Reminder.status, Reminder.recipients).where(
                Reminder.kind == ReminderKind.MEETING
            ),
        )
        deliveries = await _rows(
            engine, select(Delivery.broadcast, Delivery.recipient, Delivery.status)
        )
        claims = await _rows(
            engine, text("SELECT reminder_id, client_port FROM test_reminder_claims")
        )
    finally:
        await _script(engine, NO_CLAIMS)
        await engine.dispose()

    assert at_kill["pending"] > 0, "everything fired before the kill; the test proves nothing"
    assert {(r.id, r.status, r.recipients) for r in reminders} == {
        (i, ReminderStatus.FIRED, MEMBERS) for i in reminder_ids
    }

    # No reminder queued twice: exactly one outbox row per meeting and member.
    rows = collections.Counter((d.broadcast, d.recipient) for d in deliveries)
    expected = {(f"reminder:meeting:{m}", str(u)) for m in meetings for u in users}
    assert set(rows) == expected, "a reminder's outbox rows are missing"
    assert max(rows.values()) == 1, "a reminder was queued twice for someone"
    assert {d.status for d in deliveries} <= {DeliveryStatus.SENT, DeliveryStatus.AMBIGUOUS}

    # And nobody got one twice; only a send in flight at the kill may be missing.
    received = collections.Counter(
        (message["chat_id"], _meeting_of(message)) for message in emulator.sent()
    )
    assert max(received.values()) == 1, "someone got the same reminder twice"
    ambiguous = {
        (int(d.recipient), int(d.broadcast.rsplit(":", 1)[1]))
        for d in deliveries
        if d.status == DeliveryStatus.AMBIGUOUS
    }
    missing = {(u, m) for m in meetings for u in users if received[u, m] == 0}
    assert missing <= ambiguous, "a reminder was skipped without the outbox knowing"

    # Each was claimed once, and both processes claimed some (by their connections' ports).
    per_reminder = collections.Counter(c.reminder_id for c in claims)
    assert set(per_reminder) == set(reminder_ids)
    assert max(per_reminder.values()) == 1, "a reminder was claimed twice"
    by = collections.Counter(_who(c.client_port, ports) for c in claims)
    assert by["a"] > 0 and by["b"] > 0, f"both processes must have fired some: {dict(by)}"


async def _seed(engine: AsyncEngine, users: list[int]) -> tuple[list[int], list[int]]:
    """A barrio of `MEMBERS`, `MEETINGS` meetings hours ahead, each inviting everybody, and
    one reminder each, due from `LEAD_S` seconds from now over `SPREAD_S` seconds."""
    now = utcnow()
    async with db.session_factory(engine, utcnow)() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Réplicas", comuna="Talca", region="Maule", open_to_all=True
        )
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
        await session.execute(
            insert(Membership),
            [
                {
                    "member_id": m,
                    "barrio_id": barrio.id,
                    "status": MembershipStatus.ACTIVE,
                    "decided_at": now,
                    "created_at": now,
                }
                for m in member_ids
            ],
        )
        meetings = list(
            await session.scalars(
                insert(Meeting).returning(Meeting.id, sort_by_parameter_order=True),
                [
                    {
                        "barrio_id": barrio.id,
                        "title": f"Reunión {i}",
                        "starts_at": now + timedelta(hours=3, minutes=i),
                        "place": "Sede vecinal",
                        "status": MeetingStatus.SCHEDULED,
                        "created_at": now,
                    }
                    for i in range(MEETINGS)
                ],
            )
        )
        await session.execute(
            insert(MeetingInvitation),
            [
                {"meeting_id": meeting, "member_id": member, "invited_at": now}
                for meeting in meetings
                for member in member_ids
            ],
        )
        reminder_ids = list(
            await session.scalars(
                insert(Reminder).returning(Reminder.id, sort_by_parameter_order=True),
                [
                    {
                        "key": f"meeting:{meeting}:replicas",
                        "kind": ReminderKind.MEETING,
                        "meeting_id": meeting,
                        "due_at": now + timedelta(seconds=LEAD_S + SPREAD_S * i / MEETINGS),
                        "status": ReminderStatus.PENDING,
                        "recipients": 0,
                        "created_at": now,
                    }
                    for i, meeting in enumerate(meetings)
                ],
            )
        )
    return meetings, reminder_ids


async def _kill_a_mid_way(
    engine: AsyncEngine, replicas: dict[str, subprocess.Popen[bytes]], ports: dict[str, set[int]]
) -> dict[str, int]:
    """SIGKILL replica `a` once both replicas have fired reminders and half are still pending;
    returns the reminders' counts at that moment. `ports` collects each replica's client
    ports, to tell whose connection made each claim."""
    deadline = asyncio.get_running_loop().time() + LEAD_S + SPREAD_S + 15
    while True:
        for name, process in replicas.items():
            assert process.poll() is None, f"replica {name} stopped: {_log_tail(process)}"
            ports[name] |= _client_ports(process.pid)
        async with engine.connect() as connection:
            counts = dict(
                (
                    await connection.execute(
                        select(Reminder.status, func.count())
                        .where(Reminder.kind == ReminderKind.MEETING)
                        .group_by(Reminder.status)
                    )
                ).all()
            )
            claimed = (
                await connection.execute(text("SELECT client_port FROM test_reminder_claims"))
            ).scalars()
            by = collections.Counter(_who(port, ports) for port in claimed)
        pending = counts.get(ReminderStatus.PENDING, 0)
        if by["a"] >= 3 and by["b"] >= 3 and pending <= MEETINGS // 2:
            replicas["a"].send_signal(signal.SIGKILL)
            replicas["a"].wait(timeout=10)
            return {"pending": pending, "fired": counts.get(ReminderStatus.FIRED, 0), **by}
        assert pending, f"all fired before both replicas had claimed some: {dict(by)}"
        assert asyncio.get_running_loop().time() < deadline, f"reminders never fired: {counts}"
        await asyncio.sleep(0.01)


def _client_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process `pid` holds (Linux /proc)."""
    inodes = set()
    with os.scandir(f"/proc/{pid}/fd") as entries:
        for entry in entries:
            try:
                target = os.readlink(entry.path)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _who(port: int | None, ports: dict[str, set[int]]) -> str:
    return next((name for name, seen in ports.items() if port in seen), "unknown")


async def _all_fired_and_nothing_pending(engine: AsyncEngine) -> bool:
    # (The digest planned at start stays pending: it is due next Monday.)
    return not await _count(
        engine,
        Reminder,
        Reminder.status == ReminderStatus.PENDING,
        Reminder.kind == ReminderKind.MEETING,
    ) and not await _count(engine, Delivery, Delivery.status == DeliveryStatus.PENDING)


async def _outbox_final(engine: AsyncEngine) -> bool:
    return not await _count(engine, Delivery, Delivery.status.not_in(FINAL))


async def _stuck_sending(engine: AsyncEngine, emulator) -> int:
    """Rows left `sending` once the survivor's last sends are answered and recorded."""
    await emulator.wait_idle(timeout=10)
    sending = await _count(engine, Delivery, Delivery.status == DeliveryStatus.SENDING)
    while True:
        await asyncio.sleep(0.3)
        again = await _count(engine, Delivery, Delivery.status == DeliveryStatus.SENDING)
        if again == sending:
            return sending
        sending = again


async def _long_stuck(engine: AsyncEngine) -> None:
    long_ago = utcnow() - timedelta(seconds=STALE_SENDING_S + 1)
    async with engine.begin() as connection:
        await connection.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING)
            .values(sending_since=long_ago)
        )


async def _count(engine: AsyncEngine, table, *conditions) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(table).where(*conditions))
    return int(count or 0)


async def _until(engine: AsyncEngine, done, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not await done(engine):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _rows(engine: AsyncEngine, statement):
    async with engine.connect() as connection:
        return (await connection.execute(statement)).all()


async def _script(engine: AsyncEngine, statements: tuple[str, ...]) -> None:
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


def _meeting_of(message: dict) -> int | None:
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("callback_data", "").startswith("rsv:y:"):
                return int(button["callback_data"].rsplit(":", 1)[1])
    return None


def _barrio_run(env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
    script = str(Path(sys.executable).parent / "barrio")
    path = cwd / f"{name}.log"
    with path.open("wb") as log:
        process = subprocess.Popen(
            [script, "run"], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
    process.log_path = path  # type: ignore[attr-defined]
    return process


def _log_tail(process: subprocess.Popen[bytes]) -> str:
    path: Path = process.log_path  # type: ignore[attr-defined]
    return path.read_text(errors="replace")[-2000:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
