"""WhatsApp benchmarks against the Twilio emulator (`bot.emulator.twilio`), which runs in its
own process, as Twilio would be elsewhere; the bot talks to it with the real twilio client.

`whatsapp_webhook`: a burst of `BENCH_WHATSAPP_MESSAGES` member messages ("reuniones",
"directorio pan", "perfil", "ayuda", "hola", typed without a slash, from 300 registered
WhatsApp members of a barrio with two meetings ahead) posted by the emulator as Twilio does —
signed, form-encoded, `BENCH_WHATSAPP_CONCURRENCY` in flight — to two endpoints in turn, both
served by uvicorn in this process, best of `BENCH_ROUNDS` rounds each:
- a minimal Starlette endpoint that only checks `X-Twilio-Signature` with twilio's
  `RequestValidator` and answers an empty TwiML document (the yardstick), timed until every
  webhook was answered. It needs a fraction of a millisecond of CPU per webhook, so what it
  measures is mostly how fast the emulator signs and posts them (about a core's worth);
- the whole bot (`Runtime`, WhatsApp only): signature check, the webhook stored before it is
  acknowledged, each person's turns in order through the dialogue core, every reply sent with
  the REST client to the emulator. Timed until the emulator has accepted every reply the turns
  give (the count per text is calibrated first, from a member outside the burst); then every
  stored webhook must be marked processed, and no reply may be extra.
Neither side is paced: the emulator enforces no rate and the bot's WHATSAPP_RATE_PER_S is set
out of reach, so what is measured is the stack, not Twilio's 80 messages per second per sender
(`broadcast_10k_whatsapp` measures the pacing). The emulator posts no status callbacks here.
CPU per message is given for this process (the endpoint) and the emulator's (the load).

`broadcast_10k_whatsapp`: 10,000 WhatsApp members whose 24-hour windows are open (in the
emulator, and `last_inbound_at` in the database where the schema has it), one outbox broadcast,
the emulator enforcing `BENCH_WHATSAPP_RATE` per second (429 / 20429 over it) and the bot's
WHATSAPP_RATE_PER_S set to the same limit: attained rate as a fraction of the limit, 429s drawn,
messages lost and duplicated. Same keys as `broadcast_10k`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from bench.inbound import _fresh_database
from bot.emulator.twilio_state import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SANDBOX_SENDER
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.whatsapp import CHANNEL, EMPTY_TWIML
from handlers import admin
from handlers.outbox import barrio_recipients, enqueue
from models import (
    ChannelIdentity,
    Conversation,
    InboundUpdate,
    Meeting,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    Role,
    db,
)

MESSAGES = int(os.environ.get("BENCH_WHATSAPP_MESSAGES", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
MEMBERS = 300
# Webhooks Twilio has in flight at once (it posts them concurrently, one request each).
WEBHOOK_CONCURRENCY = int(os.environ.get("BENCH_WHATSAPP_CONCURRENCY", "32"))
# What members send most, typed as WhatsApp members type it: no slash.
MIX = tuple(
    os.environ.get("BENCH_WHATSAPP_MIX", "reuniones|directorio pan|perfil|ayuda|hola").split("|")
)
CATEGORIES = (
    ("panaderia", "Panadería"),
    ("almacen", "Almacén"),
    ("comida", "Cocinería"),
    ("ferreteria", "Ferretería"),
    ("belleza", "Peluquería"),
)
# The limit the emulator enforces for `broadcast_10k_whatsapp`, and the bot's pace. Twilio's
# default for one WhatsApp sender is 80 messages/s; 100/s sends 10,000 in 100 s.
BROADCAST_RATE = float(os.environ.get("BENCH_WHATSAPP_RATE", "100"))
# The bot's pace in `whatsapp_webhook`: out of reach, like the emulator (which has no limit).
UNPACED = 1_000_000.0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def number(index: int) -> str:
    """The WhatsApp number of member `index` (E.164, as identities store it)."""
    return f"+5697{index:07d}"


# The emulator's process by its URL: its CPU time shows how much of a core the load took.
_EMULATOR_PIDS: dict[str, int] = {}


def _process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far (0 where /proc does not tell)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def twilio_process(rate: float | None = None) -> AsyncIterator[str]:
    """The Twilio emulator in its own process; yields its URL."""
    limits = [] if rate is None else ["--rate", str(rate)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.emulator.twilio",
        "--port",
        "0",
        *limits,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    base_url = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    _EMULATOR_PIDS[base_url] = process.pid
    try:
        yield base_url
    finally:
        del _EMULATOR_PIDS[base_url]
        process.terminate()
        await process.wait()


def _settings(base_url: str, database_url: str, rate: float) -> Settings:
    """A WhatsApp-only deployment on the emulator, its web app on a free port."""
    return load_settings(
        database_url=database_url,
        telegram_bot_token=None,
        public_base_url=None,
        twilio_account_sid=DEFAULT_ACCOUNT_SID,
        twilio_auth_token=SecretStr(DEFAULT_AUTH_TOKEN),
        twilio_whatsapp_from=SANDBOX_SENDER,
        twilio_api_base_url=base_url,
        whatsapp_rate_per_s=rate,
        host="127.0.0.1",
        port=0,
    )


def _window_columns(now: datetime) -> dict[str, Any]:
    """The identity's last message, where the schema records it (the 24-hour window)."""
    return {"last_inbound_at": now} if "last_inbound_at" in ChannelIdentity.__table__.c else {}


# --- whatsapp_webhook -------------------------------------------------------------------------


async def _seed_members(runtime: Runtime) -> None:
    """`MEMBERS` + 1 registered members on WhatsApp who have written before (their
    conversations exist: the steady state); the last one is kept for calibration."""
    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Bench", comuna="Rancagua", region="O'Higgins", open_to_all=True
        )
        for i in range(MEMBERS + 1):
            category, trade = CATEGORIES[i % len(CATEGORIES)]
            member = Member(
                name=f"Socia {i}",
                business_name=f"{trade} {i}",
                consent_at=now,
                business_category=category,
            )
            member.identities = [
                ChannelIdentity(channel=CHANNEL, external_id=number(i), **_window_columns(now))
            ]
            member.memberships = [
                Membership(barrio=barrio, status=MembershipStatus.ACTIVE, decided_at=now)
            ]
            session.add(member)
            session.add(Conversation(channel=CHANNEL, external_id=number(i), data={}))
        # Two meetings ahead: "reuniones" answers with both, each with its numbered answers.
        for days, title in ((3, "Reunión de socias"), (10, "Seguridad del barrio")):
            session.add(
                Meeting(
                    barrio=barrio,
                    title=title,
                    starts_at=now + timedelta(days=days),
                    place="Sede vecinal, Calle Estado 123",
                    agenda="Cuentas del mes y turnos de vigilancia.",
                )
            )


def _messages() -> list[dict[str, str]]:
    """Member `m`'s k-th message is `MIX[(m + k) % len(MIX)]`: each member goes through the
    whole mix, and at any moment the burst holds every text alike."""
    return [
        {"number": number(i % MEMBERS), "body": MIX[(i + i // MEMBERS) % len(MIX)]}
        for i in range(MESSAGES)
    ]


async def _sent_to(control: httpx.AsyncClient, to: str) -> int:
    return len((await control.get("/control/sent", params={"number": to})).json())


async def _calibrate(runtime: Runtime, control: httpx.AsyncClient) -> dict[str, int]:
    """How many WhatsApp messages the bot sends in answer to each text of the mix, from the
    member kept out of the burst. Two passes; the second (steady state) counts."""
    assert runtime.whatsapp is not None
    who = number(MEMBERS)
    replies: dict[str, int] = {}
    for _ in range(2):
        for typed in MIX:
            before = await _sent_to(control, who)
            answer = (
                await control.post("/control/messages", json={"number": who, "body": typed})
            ).json()
            if answer["status"] != 200:
                raise RuntimeError(f"calibration webhook answered {answer['status']}")
            await asyncio.wait_for(runtime.whatsapp.wait_handled(answer["message_sid"]), 30)
            replies[typed] = await _sent_to(control, who) - before
    return replies


# Seconds for the burst, and CPU milliseconds per message of this process (the endpoint
# measured) and of the emulator's (the load: signing and posting webhooks, taking replies).
Timing = tuple[float, float, float]


async def _burst(
    control: httpx.AsyncClient, items: list[dict[str, str]], replies: int | None
) -> tuple[Timing, float]:
    """Post every webhook through the emulator; when `replies` is given, wait until the
    emulator has accepted that many messages from the bot. Returns the `Timing` to the end
    and the seconds until the last webhook was answered."""
    emulator = _EMULATOR_PIDS.get(str(control.base_url).rstrip("/"))
    started = time.perf_counter()
    cpu, emulator_cpu = time.process_time(), _process_cpu_s(emulator)
    answered = await control.post(
        "/control/messages/bulk", json={"items": items, "concurrency": WEBHOOK_CONCURRENCY}
    )
    answered.raise_for_status()
    acked = time.perf_counter() - started
    statuses = answered.json()["statuses"]
    if set(statuses) != {"200"}:
        raise RuntimeError(f"webhooks answered {statuses}")
    if replies is not None:
        # One long wait, answered by the emulator when the last reply arrives: polling would
        # take CPU from the bot under test, which shares this process.
        deadline = started + 60 + len(items) / 10  # a bot slower than 10/s is broken, not slow
        while True:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{replies} replies not sent in {deadline - started:.0f} s")
            waited = await control.get(
                "/control/stats/wait", params={"sent_messages": replies, "timeout": 30}
            )
            if waited.status_code != 408:
                waited.raise_for_status()
                break
    elapsed = time.perf_counter() - started
    per_message = 1000 / len(items)
    return (
        elapsed,
        per_message * (time.process_time() - cpu),
        per_message * (_process_cpu_s(emulator) - emulator_cpu),
    ), acked


@contextlib.asynccontextmanager
async def _served(app: Starlette) -> AsyncIterator[int]:
    """uvicorn serving `app` in this loop as the bot's web app is served; yields its port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the baseline's web server stopped while starting")
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


def signature_only_app() -> Starlette:
    """The yardstick: Twilio's webhook received, its signature checked with twilio's
    `RequestValidator` over the request's URL, an empty TwiML answer. Nothing else."""
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)

    async def webhook(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(str(request.url), form, signature):
            return Response(status_code=403)
        return Response(EMPTY_TWIML, media_type="text/xml")

    return Starlette(routes=[Route("/whatsapp", webhook, methods=["POST"])])


async def _baseline(control: httpx.AsyncClient) -> Timing:
    async with _served(signature_only_app()) as port:
        await control.post("/control/webhook", json={"url": f"http://127.0.0.1:{port}/whatsapp"})
        timing, _ = await _burst(control, _messages(), None)
    return timing


async def _unprocessed(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).where(
                    InboundUpdate.channel == CHANNEL, InboundUpdate.processed_at.is_(None)
                )
            )
            or 0
        )


async def _whole_stack(
    control: httpx.AsyncClient, settings: Settings, replies: dict[str, int]
) -> tuple[Timing, float]:
    items = _messages()
    expected = sum(replies[item["body"]] for item in items)
    runtime = Runtime(settings, serve_web=False)
    await runtime.start()
    try:
        await control.post(
            "/control/webhook", json={"url": f"http://127.0.0.1:{runtime.web_port}/whatsapp"}
        )
        timing, acked = await _burst(control, items, expected)
        await asyncio.sleep(0.5)  # a turn answered twice, or a reply too many, shows up now
        stats = (await control.get("/control/stats")).json()
        left = await _unprocessed(runtime)
        if stats["sent_messages"] != expected or left:
            raise RuntimeError(
                f"{stats['sent_messages']} replies for {expected} expected; "
                f"{left} webhooks not marked processed"
            )
        return timing, acked
    finally:
        await runtime.stop()


async def whatsapp_webhook(database: str) -> dict[str, Any]:
    """Each configuration runs `ROUNDS` times, alternating; the best round of each counts, so
    a moment of noise from the machine's neighbours does not decide the ratio."""
    base: Timing | None = None
    ours: Timing | None = None
    best_acked = float("inf")
    with tempfile.TemporaryDirectory() as directory:
        database_url = await _fresh_database(database, directory)
        async with (
            twilio_process() as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=600) as control,
        ):
            settings = _settings(base_url, database_url, UNPACED)
            runtime = Runtime(settings, serve_web=False)
            await runtime.start()
            try:
                await _seed_members(runtime)
                await control.post(
                    "/control/webhook",
                    json={"url": f"http://127.0.0.1:{runtime.web_port}/whatsapp"},
                )
                replies = await _calibrate(runtime, control)
            finally:
                await runtime.stop()
            _say(f"whatsapp_webhook: messages sent per text {replies}")
            for round_number in range(1, ROUNDS + 1):
                _say(f"whatsapp_webhook on {database}, round {round_number}: signature only…")
                await control.post("/control/reset", json={})
                timing = await _baseline(control)
                base = timing if base is None else min(base, timing)
                _say(f"whatsapp_webhook on {database}, round {round_number}: whole stack…")
                await control.post("/control/reset", json={})
                timing, acked = await _whole_stack(control, settings, replies)
                ours = timing if ours is None else min(ours, timing)
                best_acked = min(best_acked, acked)
    assert base is not None and ours is not None
    return {
        "name": "whatsapp_webhook",
        "database": database,
        "messages": MESSAGES,
        "members": MEMBERS,
        "concurrency": WEBHOOK_CONCURRENCY,
        "measured_until": "every reply accepted by the emulator",
        "replies": sum(replies[item["body"]] for item in _messages()),
        "msgs_per_s": round(MESSAGES / ours[0], 1),
        "baseline_msgs_per_s": round(MESSAGES / base[0], 1),
        "ratio": round(base[0] / ours[0], 3),
        "acked_msgs_per_s": round(MESSAGES / best_acked, 1),
        "cpu_ms_per_msg": round(ours[1], 2),
        "baseline_cpu_ms_per_msg": round(base[1], 2),
        "emulator_cpu_ms_per_msg": round(ours[2], 2),
        "baseline_emulator_cpu_ms_per_msg": round(base[2], 2),
    }


# --- broadcast_10k_whatsapp -------------------------------------------------------------------

FIRST_MEMBER = 300_000


async def _seed_recipients(runtime: Runtime, size: int) -> int:
    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Bench", comuna="Rancagua", region="O'Higgins", open_to_all=True
        )
        ids = range(FIRST_MEMBER, FIRST_MEMBER + size)
        await session.execute(
            # render_nulls: without it the ORM's bulk insert leaves out a None column, and the
            # default quiet hours (22:00–08:00) would hold every message sent at night.
            insert(Member).execution_options(render_nulls=True),
            [
                {
                    "id": member_id,
                    "name": f"Socia {member_id}",
                    "business_name": f"Negocio {member_id}",
                    "business_category": "almacen",
                    "consent_at": now,
                    "show_in_directory": True,
                    "show_phone": False,
                    "show_address": False,
                    "search_text": f"socia {member_id}",
                    "quiet_start": None,
                    "quiet_end": None,
                    "created_at": now,
                }
                for member_id in ids
            ],
        )
        await session.execute(
            insert(ChannelIdentity),
            [
                {
                    "member_id": member_id,
                    "channel": CHANNEL,
                    "external_id": number(member_id),
                    "created_at": now,
                    **_window_columns(now),
                }
                for member_id in ids
            ],
        )
        await session.execute(
            insert(Membership),
            [
                {
                    "member_id": member_id,
                    "barrio_id": barrio.id,
                    "created_at": now,
                    "role": Role.COORDINATOR if member_id == FIRST_MEMBER else Role.MEMBER,
                    "status": MembershipStatus.ACTIVE,
                    "decided_at": now,
                }
                for member_id in ids
            ],
        )
        return barrio.id


async def _open_windows(control: httpx.AsyncClient, numbers: list[str]) -> None:
    """As if every recipient had written within the last 24 hours: freeform text is allowed."""
    slots = asyncio.Semaphore(32)

    async def one(to: str) -> None:
        async with slots:
            (
                await control.post("/control/window", json={"number": to, "open": True})
            ).raise_for_status()

    await asyncio.gather(*(one(to) for to in numbers))


async def broadcast_10k_whatsapp(
    database: str, size: int = 10_000, rate: float = BROADCAST_RATE
) -> dict[str, Any]:
    numbers = [number(FIRST_MEMBER + i) for i in range(size)]
    with tempfile.TemporaryDirectory() as directory:
        database_url = await _fresh_database(database, directory)
        async with (
            twilio_process(rate=rate) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=120) as control,
        ):
            runtime = Runtime(_settings(base_url, database_url, rate), serve_web=False)
            await db.upgrade(runtime.engine)
            barrio_id = await _seed_recipients(runtime, size)
            opening = time.perf_counter()
            await _open_windows(control, numbers)
            _say(f"  {size} windows opened in {time.perf_counter() - opening:.1f} s")
            await runtime.start()
            try:
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
                deadline = started + 60 + 2 * size / rate
                while time.perf_counter() < deadline:
                    waited = await control.get(
                        "/control/stats/wait", params={"sent_messages": size, "timeout": 30}
                    )
                    if waited.status_code != 408:
                        waited.raise_for_status()
                        break
                elapsed = time.perf_counter() - started
                await asyncio.sleep(1)  # anything sent twice would show up now
                sent = (await control.get("/control/sent")).json()
                stats = (await control.get("/control/stats")).json()
            finally:
                await runtime.stop()
    per_number = collections.Counter(message["number"] for message in sent)
    attained = sum(1 for to in numbers if per_number[to]) / elapsed
    return {
        "name": "broadcast_10k_whatsapp",
        "database": database,
        "recipients": size,
        "limit_per_s": rate,
        "attained_per_s": round(attained, 1),
        "fraction_of_limit": round(attained / rate, 3),
        "http_429": stats["http_429"],
        "lost": sum(1 for to in numbers if per_number[to] == 0),
        "duplicated": sum(1 for count in per_number.values() if count > 1),
    }
