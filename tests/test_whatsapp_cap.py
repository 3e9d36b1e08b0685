"""WhatsApp's daily cap (Twilio 63018) end to end: the real twilio client against the emulator's
per-sender cap of business-initiated conversations, on the bot's own clock. What the cap stops
waits for its next window with the rest of its broadcast, the coordinator is told once, and
the final report comes when the last of them has gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import whatsapp
from bot.emulator.twilio import TwilioEmulator, serve_twilio_emulator
from bot.runtime import Runtime
from handlers import texts
from handlers.outbox import Recipient, enqueue
from handlers.when import describe_when
from models import Announcement, Delivery, DeliveryStatus, Member, Priority, db
from tests.support import Phone as TelegramPhone
from tests.support import ShiftedClock, buttons, make_barrio, make_coordinator, register
from tests.test_reminders import outbox_idle
from tests.test_whatsapp import WhatsAppPhone, _register, _with_whatsapp

SANTIAGO = ZoneInfo("America/Santiago")
TEMPLATE = "HX" + "cd" * 16
CAP = 2
NUMBERS = [f"+5691111000{i}" for i in range(1, 5)]  # four members on WhatsApp: two over the cap
HELD_NOTICE = "al tope"


def _capped_emulator(clock: ShiftedClock, **options: object) -> TwilioEmulator:
    """Twilio with a cap of `CAP` conversations a day, on the bot's clock: moving the clock a
    day moves Meta's rolling window too."""
    emulator = TwilioEmulator(
        daily_conversation_cap=CAP,
        clock=lambda: clock().timestamp(),
        **options,  # type: ignore[arg-type]
    )
    emulator.add_template(TEMPLATE, "Aviso de tu barrio: {{1}}")
    return emulator


async def _running(settings, twilio: TwilioEmulator, clock: ShiftedClock) -> Runtime:
    runtime = Runtime(
        _with_whatsapp(settings, twilio, twilio_template_announcement=TEMPLATE), clock=clock
    )
    await runtime.start()
    twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
    return runtime


async def _barrio_outside_the_window(runtime, twilio, emulator, clock):
    """Carmen coordinates on Telegram; Ana is on Telegram, four members on WhatsApp who last
    wrote a day ago: what reaches them now is a template, a conversation the cap counts."""
    barrio = await make_barrio(runtime, "Barrio Estación", "Rancagua", open_to_all=True)
    carmen = TelegramPhone(emulator, runtime, 6000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    ana = TelegramPhone(emulator, runtime, 6001, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    for number in NUMBERS:
        await _register(WhatsAppPhone(twilio, runtime, number), barrio.invite_code)
    await outbox_idle(runtime, clock)
    clock.advance(timedelta(hours=25))
    carmen.new()
    return carmen


async def _announce(carmen: TelegramPhone, text: str) -> None:
    await carmen.say("/anuncio")
    await carmen.say(text)
    await carmen.tap("Enviar")


async def _rows(runtime: Runtime, **where: object) -> list[Delivery]:
    async with runtime.sessions() as session:
        query = select(Delivery).filter_by(**where).order_by(Delivery.id)
        return list((await session.scalars(query)).all())


def _state(rows: list[Delivery]) -> list[tuple[object, ...]]:
    return [
        (d.id, d.status, d.receipt, d.not_before, d.last_error, d.platform_message_id) for d in rows
    ]


async def _announcement(runtime: Runtime) -> Announcement:
    async with runtime.sessions() as session:
        found = await session.scalar(select(Announcement))
    assert found is not None
    return found


async def _whatsapp_rows(runtime: Runtime) -> list[Delivery]:
    """The announcement's WhatsApp rows (ids go on from earlier tests on PostgreSQL)."""
    broadcast = f"announcement:{(await _announcement(runtime)).id}"
    return await _rows(runtime, channel="whatsapp", broadcast=broadcast)


async def _to_carmen(runtime: Runtime, fragment: str) -> list[Delivery]:
    return [d for d in await _rows(runtime, recipient="6000") if fragment in d.text]


@pytest.fixture
async def capped(clock) -> AsyncIterator[TwilioEmulator]:
    twilio = _capped_emulator(clock)
    async with serve_twilio_emulator(twilio):
        yield twilio


async def test_the_daily_cap_holds_the_rest_for_the_next_window_and_the_report_waits_for_it(
    settings, capped, emulator, clock
):
    twilio = capped
    runtime = await _running(settings, twilio, clock)
    try:
        carmen = await _barrio_outside_the_window(runtime, twilio, emulator, clock)
        await _announce(carmen, "Mañana hay feria en la plaza.")
        await outbox_idle(runtime, clock)
        # Twilio took all four templates; two of them are bound to fail with 63018.
        sent = [twilio.sent(n)[-1] for n in NUMBERS]
        assert all(m["content_sid"] == TEMPLATE for m in sent)
        assert sorted(str(m["fails_with"]) for m in sent) == ["63018", "63018", "None", "None"]
        await twilio.settle()

        rows = await _whatsapp_rows(runtime)
        delivered = [d for d in rows if d.status == DeliveryStatus.SENT]
        held = [d for d in rows if d.status == DeliveryStatus.PENDING]
        assert len(delivered) == CAP and all(d.receipt == "read" for d in delivered)
        assert len(held) == len(NUMBERS) - CAP
        resume = min(d.not_before for d in held)
        assert resume > clock() + timedelta(hours=23)
        assert all(d.last_error == whatsapp.HELD_BY_CAP for d in held)
        assert all(d.platform_message_id is None and d.sent_at is None for d in held)

        told = await carmen.wait_for(HELD_NOTICE)
        assert f"A {len(held)} socios en WhatsApp" in told["text"]
        assert describe_when(resume, SANTIAGO, clock()) in told["text"]
        assert "mañana jueves 26 de noviembre a la 13:" in told["text"]  # Santiago's time

        # Twilio's callbacks come again, late or twice: nothing moves, nobody is told again.
        failed_sids = [m["sid"] for m in sent if m["fails_with"] == 63018]
        for sid in failed_sids:
            statuses = await twilio.send_status_callbacks(
                sid, ["failed", "failed"], error_code=63018
            )
            assert statuses == [200, 200]
        again = await _whatsapp_rows(runtime)
        assert _state(again) == _state(rows)
        assert len(await _to_carmen(runtime, HELD_NOTICE)) == 1
        # The broadcast has not finished: no report yet, even when the dispatcher asks.
        assert runtime.dispatcher is not None
        await runtime.dispatcher.report_unreported()
        assert (await _announcement(runtime)).reported_at is None
        assert await _to_carmen(runtime, "ya salió") == []

        # The next window: the rest goes out, and the report counts every one.
        clock.advance(resume - clock() + timedelta(minutes=1))
        await outbox_idle(runtime, clock)
        await twilio.settle()
        rows = await _whatsapp_rows(runtime)
        assert [(d.status, d.receipt) for d in rows] == [(DeliveryStatus.SENT, "read")] * 4
        await runtime.dispatcher.report_unreported()
        report = await carmen.wait_for("Tu anuncio ya salió")
        assert "Entregados: 5 (4 por WhatsApp, 1 por Telegram)" in report["text"]
        assert "No se pudo: 0" in report["text"]
        assert [b["text"] for b in buttons(report)] == [texts.ANNOUNCE_RECEIPTS_BUTTON]
        assert len(await _to_carmen(runtime, HELD_NOTICE)) == 1
        assert len(await _to_carmen(runtime, "ya salió")) == 1
        shown = (await carmen.tap("Cuántos lo leyeron"))[-1]["text"]
        assert "📱 WhatsApp: 4 enviados, 4 llegaron al teléfono, 4 ya lo leyeron" in shown
        assert "✈️ Telegram: 1 enviados" in shown and "Por enviar" not in shown
    finally:
        await runtime.stop()


async def test_a_daily_cap_answered_at_once_holds_the_rest_and_tells_the_coordinator_once(
    settings, emulator, clock
):
    """The emulator's synchronous 63018 (the request refused: nothing sent): the outbox pauses
    WhatsApp and tries that row again; the rest waits the window, and Carmen is told."""
    twilio = _capped_emulator(clock, channel_errors="sync")
    async with serve_twilio_emulator(twilio):
        runtime = await _running(settings, twilio, clock)
        try:
            carmen = await _barrio_outside_the_window(runtime, twilio, emulator, clock)
            await _announce(carmen, "Corte de agua el lunes.")
            told = await carmen.wait_for(HELD_NOTICE)
            await outbox_idle(runtime, clock)
            rows = await _whatsapp_rows(runtime)
            assert sum(d.status == DeliveryStatus.SENT for d in rows) == CAP
            waiting = [d for d in rows if d.status == DeliveryStatus.PENDING]
            assert len(waiting) == len(NUMBERS) - CAP
            assert all(d.not_before > clock() for d in waiting)
            assert all(d.last_error.startswith("twilio 63018:") for d in waiting)
            assert f"A {len(waiting)} socios en WhatsApp" in told["text"]
            assert "mañana jueves 26 de noviembre" in told["text"]
            assert len(await _to_carmen(runtime, HELD_NOTICE)) == 1
            assert (await _announcement(runtime)).reported_at is None
            assert twilio.stats["error_codes"] == {"63018": len(NUMBERS) - CAP}
        finally:
            await runtime.stop()


# --- the record of one callback, on the database alone --------------------------------------
START = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 23:30 in Santiago: quiet hours


async def _sent_rows(sessions, clock, recipients, *, priority=Priority.BROADCAST) -> list[int]:
    async with sessions() as session, session.begin():
        await enqueue(
            session,
            recipients,
            "Aviso",
            now=clock(),
            zone=SANTIAGO,
            priority=priority,
            broadcast="reminder:meeting:1" if priority == Priority.BROADCAST else "alert:1",
            urgent=True,
        )
        rows = (await session.scalars(select(Delivery).order_by(Delivery.id))).all()
        for row in rows[:1]:
            row.status, row.sent_at, row.platform_message_id = (
                DeliveryStatus.SENT,
                clock(),
                f"SM{row.id:032x}",
            )
        return [row.id for row in rows]


async def test_a_held_row_keeps_out_of_the_members_night_and_an_alert_is_not_held(
    clean_database,
):
    engine = db.create_engine(clean_database)
    clock = ShiftedClock(START)
    sessions = db.session_factory(engine, clock)
    try:
        async with sessions() as session, session.begin():
            sleeper = Member(
                name="Rosa", business_name="Verdulería", business_category="otro",
                consent_at=clock(), quiet_start=22 * 60, quiet_end=8 * 60,
            )  # fmt: skip
            awake = Member(
                name="Luis", business_name="Kiosco", business_category="otro",
                consent_at=clock(),
            )  # fmt: skip
            session.add_all([sleeper, awake])
            await session.flush()
            # As /silencio does: at insert, None would take the column's default.
            awake.quiet_start = awake.quiet_end = None
        people = [
            Recipient(awake.id, "whatsapp", "+56911110001", None, None, False),
            Recipient(sleeper.id, "whatsapp", "+56911110002", 22 * 60, 8 * 60, False),
        ]
        first, second = await _sent_rows(sessions, clock, people)
        sid = f"SM{first:032x}"
        now = clock()
        assert await whatsapp.record_status(sessions, sid, "failed", "63018", now) is False
        async with sessions() as session:
            rows = {d.id: d for d in (await session.scalars(select(Delivery))).all()}
        # A day from 23:30 is 23:30 again: Luis has no quiet hours, Rosa waits for 08:00.
        assert rows[first].status == DeliveryStatus.PENDING
        assert rows[first].not_before == now + whatsapp.DAILY_CAP_WINDOW
        morning = datetime(2026, 11, 26, 8, 0, tzinfo=SANTIAGO).astimezone(UTC)
        assert rows[second].not_before == morning
        before = sorted((d.id, d.status, d.not_before, d.last_error) for d in rows.values())
        # The same callback again, and one for a message nobody knows: nothing changes.
        await whatsapp.record_status(sessions, sid, "failed", "63018", now + timedelta(hours=1))
        await whatsapp.record_status(sessions, "SMnobody", "failed", "63018", now)
        await whatsapp.record_status(sessions, "", "failed", "63018", now)
        async with sessions() as session:
            after = sorted(
                (d.id, d.status, d.not_before, d.last_error)
                for d in (await session.scalars(select(Delivery))).all()
            )
        assert after == before

        # A personal notice (a join request's answer) the cap stops waits for the cap's next
        # window only: quiet hours never hold one (found in review: the cap's hold did).
        async with sessions() as session, session.begin():
            for row in (await session.scalars(select(Delivery))).all():
                await session.delete(row)
            await enqueue(
                session, people[1:], "Tu solicitud fue aprobada", now=now, zone=SANTIAGO,
                priority=Priority.PERSONAL,
            )  # fmt: skip
            notice = await session.scalar(select(Delivery))
            assert notice is not None
            notice.status, notice.sent_at, notice.platform_message_id = (
                DeliveryStatus.SENT, now, f"SM{notice.id:032x}",
            )  # fmt: skip
        await whatsapp.record_status(sessions, f"SM{notice.id:032x}", "failed", "63018", now)
        async with sessions() as session:
            held = await session.get(Delivery, notice.id)
        assert held is not None and held.status == DeliveryStatus.PENDING
        assert held.not_before == now + whatsapp.DAILY_CAP_WINDOW  # 23:30, not 08:00

        # A security alert a day late means nothing: it fails, as any failure does.
        async with sessions() as session, session.begin():
            for row in (await session.scalars(select(Delivery))).all():
                await session.delete(row)
        [alert, _] = await _sent_rows(sessions, clock, people, priority=Priority.ALERT)
        await whatsapp.record_status(sessions, f"SM{alert:032x}", "failed", "63018", now)
        async with sessions() as session:
            failed = await session.get(Delivery, alert)
        assert failed is not None and failed.status == DeliveryStatus.FAILED
        assert failed.last_error.startswith("twilio 63018:")
    finally:
        await engine.dispose()
