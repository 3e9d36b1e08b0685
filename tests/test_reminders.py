"""Meeting and funding-call reminders end to end, with the test clock: who gets one, with which
buttons and words, at which moment; moving and cancelling; quiet hours; restarts."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from handlers.reminders import MEETING_TEMPLATE
from models import Barrio, Delivery, DeliveryStatus, Reminder, ReminderKind, ReminderStatus
from tests.support import WAIT_S, Phone, buttons, snapshot, text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_meetings import _call_meeting

# The clock starts on Tuesday 24 November 2026 at noon in Santiago (UTC-3).
THURSDAY_19 = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # jueves 26 a las 19:00
DAY_BEFORE = THURSDAY_19 - timedelta(hours=24)
TWO_HOURS_BEFORE = THURSDAY_19 - timedelta(hours=2)


async def settle_reminders(runtime: Runtime, clock, to: datetime | None = None) -> None:
    """Move the clock to `to`, let the reminder loop fire what is due, then the outbox send."""
    if to is not None:
        clock.advance(to - clock())
    runtime.reminders.wake()
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        async with runtime.sessions() as session:
            due = await session.scalar(
                select(func.count())
                .select_from(Reminder)
                .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= clock())
            )
        if not due:
            break
        assert asyncio.get_running_loop().time() < deadline, "due reminders never fired"
        await asyncio.sleep(0.01)
    runtime.dispatcher.wake()


async def outbox_idle(runtime: Runtime, clock) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        async with runtime.sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
                    Delivery.not_before <= clock(),
                )
            )
        if not waiting:
            return
        assert asyncio.get_running_loop().time() < deadline, "the outbox never went idle"
        await asyncio.sleep(0.01)


def reminders_of(phone: Phone) -> list[dict]:
    return [
        m for m in phone.emulator.sent(phone.user_id) if "Recordatorio" in (m.get("text") or "")
    ]


async def _reminders(runtime, kind: ReminderKind = ReminderKind.MEETING) -> list[Reminder]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(Reminder).where(Reminder.kind == kind).order_by(Reminder.due_at)
        )
        return list(rows.all())


async def _meeting_with_answers(runtime, phone):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    await beto.wait_for("Te invitan")
    await beto.tap("No podré")
    await rosa.wait_for("Te invitan")  # and does not answer
    return barrio, carmen, ana, beto, rosa


async def test_reminders_reach_who_comes_and_who_has_not_answered(runtime, phone, clock):
    _, carmen, ana, beto, rosa = await _meeting_with_answers(runtime, phone)
    planned = await _reminders(runtime)
    assert [(r.kind, r.due_at, r.status) for r in planned] == [
        (ReminderKind.MEETING, DAY_BEFORE, ReminderStatus.PENDING),
        (ReminderKind.MEETING, TWO_HOURS_BEFORE, ReminderStatus.PENDING),
    ]

    await settle_reminders(runtime, clock, DAY_BEFORE + timedelta(seconds=5))
    day_before = await ana.wait_for("Recordatorio de reunión")
    assert "mañana jueves 26 de noviembre a las 19:00" in day_before["text"]
    assert "Sede vecinal, Estado 123" in day_before["text"]
    assert [b["text"] for b in buttons(day_before)] == ["📅 Agregar al calendario"]
    nudge = await rosa.wait_for("Recordatorio de reunión")
    assert "Aún no respondes" in nudge["text"]
    assert [b["text"] for b in buttons(nudge)] == [
        "✅ Asistiré",
        "❌ No podré",
        "🤔 Tal vez",
        "📅 Agregar al calendario",
    ]
    assert "Anotado: Tal vez" in text_of(await rosa.tap("Tal vez"))

    await settle_reminders(runtime, clock, TWO_HOURS_BEFORE + timedelta(seconds=5))
    same_day = await ana.wait_for("Recordatorio de reunión")
    assert "hoy jueves 26 de noviembre a las 19:00" in same_day["text"]
    again = await rosa.wait_for("Recordatorio de reunión")
    assert [b["text"] for b in buttons(again)] == ["📅 Agregar al calendario"]
    await outbox_idle(runtime, clock)
    assert reminders_of(beto) == [] and reminders_of(carmen) == []
    assert len(reminders_of(ana)) == 2 and len(reminders_of(rosa)) == 2
    fired = await _reminders(runtime)
    assert [(r.status, r.recipients) for r in fired] == [(ReminderStatus.FIRED, 2)] * 2

    # The calendar button of a reminder still sends the .ics.
    files = await ana.tap("Agregar al calendario")
    assert files[-1]["method"] == "sendDocument"


async def test_moving_a_meeting_moves_its_reminders_and_cancelling_removes_them(
    runtime, phone, clock
):
    _, carmen, ana, _, _ = await _meeting_with_answers(runtime, phone)
    await carmen.say("/asistencia")
    await carmen.tap("Cambiar fecha")
    await carmen.say("27/11 18:30")
    await carmen.tap("Sí, está bien")
    new_start = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
    pending = [r for r in await _reminders(runtime) if r.status == ReminderStatus.PENDING]
    assert [r.due_at for r in pending] == [
        new_start - timedelta(hours=24),
        new_start - timedelta(hours=2),
    ]
    # Nothing fires at the old times.
    await settle_reminders(runtime, clock, DAY_BEFORE + timedelta(seconds=5))
    await outbox_idle(runtime, clock)
    assert reminders_of(ana) == []

    await carmen.say("/asistencia")
    await carmen.tap("Cancelar reunión")
    await carmen.tap("Sí, cancelar")
    assert not [r for r in await _reminders(runtime) if r.status == ReminderStatus.PENDING]
    await settle_reminders(runtime, clock, new_start - timedelta(hours=1))
    await outbox_idle(runtime, clock)
    assert reminders_of(ana) == []


async def test_a_reminder_held_by_quiet_hours_says_today_when_it_arrives(runtime, phone, clock):
    barrio, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/recordatorios")
    await carmen.tap("Otras horas")
    saved = text_of(await carmen.say("20"))
    assert "se recuerdan 20 h antes" in saved
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    # Due Wednesday 23:00 in Santiago: inside Ana's quiet hours (22:00–08:00).
    due = THURSDAY_19 - timedelta(hours=20)
    await settle_reminders(runtime, clock, due + timedelta(seconds=5))
    async with runtime.sessions() as session:
        held = await session.scalar(select(Delivery).where(Delivery.template == MEETING_TEMPLATE))
    assert held is not None and held.status == DeliveryStatus.PENDING
    assert "mañana jueves" in held.text  # as it would read if sent now
    morning = datetime(2026, 11, 26, 11, 0, 5, tzinfo=UTC)  # 08:00 on the day
    await settle_reminders(runtime, clock, morning)
    arrived = await ana.wait_for("Recordatorio de reunión")
    assert "hoy jueves 26 de noviembre a las 19:00" in arrived["text"]
    assert "mañana" not in arrived["text"]


async def test_a_reminder_quiet_hours_would_deliver_after_the_start_is_dropped(
    runtime, phone, clock
):
    _, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/silencio")
    await rosa.tap("Sin silencio")
    await _call_meeting(carmen, when="jueves 07:30")  # a breakfast meeting
    await carmen.tap("Enviar invitación")
    for person in (ana, beto, rosa):
        await person.wait_for("Te invitan")
    await ana.tap("Asistiré")
    await beto.tap("No podré")
    starts = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    # 05:30, two hours before: Ana's quiet hours last until 08:00, after the start.
    await settle_reminders(runtime, clock, starts - timedelta(hours=2) + timedelta(seconds=5))
    await rosa.wait_for("Recordatorio de reunión")
    await outbox_idle(runtime, clock)
    two_hours = (await _reminders(runtime))[-1]
    assert two_hours.recipients == 1 and two_hours.note == "1 held past the start"
    assert runtime.reminders.stats.dropped == 1
    clock.advance(timedelta(hours=3))
    runtime.dispatcher.wake()
    await outbox_idle(runtime, clock)
    assert [m for m in reminders_of(ana) if "hoy" in m["text"]] == []


async def test_a_queued_reminder_past_its_meeting_is_expired_not_sent(runtime, phone, clock):
    """The dispatcher's own check: a row still waiting when its meeting starts is dropped."""
    _, carmen, ana, _, _ = await _meeting_with_answers(runtime, phone)
    await settle_reminders(runtime, clock, DAY_BEFORE - timedelta(minutes=1))
    # Ana's reminder is held (as by a backlog) until after the start.
    runtime.dispatcher.stop()
    await settle_reminders(runtime, clock, TWO_HOURS_BEFORE + timedelta(seconds=5))
    clock.advance(THURSDAY_19 - clock() + timedelta(minutes=1))
    from scheduler.outbox import OutboxDispatcher

    late = OutboxDispatcher(
        runtime.sessions,
        list(runtime.dispatcher.senders.values()),
        runtime.dispatcher.pacers,
        clock=clock,
        render=runtime.dispatcher.render,
    )
    await late.drain()
    await late.drain()
    async with runtime.sessions() as session:
        statuses = (
            await session.scalars(
                select(Delivery.status).where(Delivery.template == MEETING_TEMPLATE).distinct()
            )
        ).all()
    assert statuses == [DeliveryStatus.EXPIRED]
    assert late.stats.expired >= 2 and reminders_of(ana) == []


async def test_attendance_names_who_has_not_answered_and_reminds_them(runtime, phone, clock):
    _, carmen, ana, beto, rosa = await _meeting_with_answers(runtime, phone)
    card = text_of(await carmen.say("/asistencia"))
    assert "⏳ Sin responder (1): Rosa" in card
    assert "les recordé la reunión a quienes no han respondido (1)" in text_of(
        await carmen.tap("Recordar a quienes no han respondido")
    )
    nudge = await rosa.wait_for("Recordatorio de reunión")
    assert "Aún no respondes" in nudge["text"]
    await carmen.say("/asistencia")
    assert "hace menos de una hora" in text_of(
        await carmen.tap("Recordar a quienes no han respondido")
    )
    await outbox_idle(runtime, clock)
    assert reminders_of(ana) == [] and reminders_of(beto) == []
    await rosa.tap("Asistiré")
    clock.advance(timedelta(hours=1, minutes=1))
    await carmen.say("/asistencia")
    assert "Todos los invitados ya respondieron" in text_of(
        await carmen.tap("Recordar a quienes no han respondido")
    )


async def test_a_reminder_missed_while_stopped_is_sent_once_at_start_if_still_useful(
    settings, emulator, clock, caplog
):
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        _, carmen, ana, beto, rosa = await _meeting_with_answers(
            runtime, lambda user_id, name: Phone(emulator, runtime, user_id, name)
        )
    finally:
        await runtime.stop()
    # Down across both due times: at 17:30 on the day, only the 2-hour reminder makes sense.
    clock.advance(TWO_HOURS_BEFORE + timedelta(minutes=30) - clock())
    caplog.set_level(logging.INFO, logger="scheduler.reminders")
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.reminders.ready.wait(), WAIT_S)
        await settle_reminders(runtime, clock)
        for person in (ana, rosa):
            person.runtime = runtime
            got = await person.wait_for("Recordatorio de reunión")
            assert "hoy jueves 26 de noviembre a las 19:00" in got["text"]
        await outbox_idle(runtime, clock)
        assert len(reminders_of(ana)) == 1 and len(reminders_of(rosa)) == 1
        assert reminders_of(beto) == []
        day_before, two_hours = await _reminders(runtime)
        assert day_before.status == ReminderStatus.SKIPPED
        assert day_before.note == "a later reminder is due too"
        assert two_hours.status == ReminderStatus.FIRED
        assert runtime.reminders.stats.skipped == 1 and runtime.reminders.stats.late == 1
        assert any("skipped" in r.getMessage() for r in caplog.records)
    finally:
        await runtime.stop()


async def test_a_reminder_whose_meeting_started_while_stopped_is_skipped_and_logged(
    settings, emulator, clock, caplog
):
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        _, _, ana, _, rosa = await _meeting_with_answers(
            runtime, lambda user_id, name: Phone(emulator, runtime, user_id, name)
        )
    finally:
        await runtime.stop()
    clock.advance(THURSDAY_19 + timedelta(minutes=10) - clock())
    caplog.set_level(logging.INFO, logger="scheduler.reminders")
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.reminders.ready.wait(), WAIT_S)
        await settle_reminders(runtime, clock)
        notes = [(r.status, r.note) for r in await _reminders(runtime)]
        assert notes == [(ReminderStatus.SKIPPED, "meeting started")] * 2
        assert runtime.reminders.stats.skipped == 2
        assert sum("meeting started" in r.getMessage() for r in caplog.records) == 2
        await outbox_idle(runtime, clock)
        assert reminders_of(ana) == [] and reminders_of(rosa) == []
    finally:
        await runtime.stop()


async def test_the_real_clock_across_a_restart_sends_the_two_hour_reminder_once(settings, emulator):
    """Real time, no clock moves: a meeting a little over 2 hours ahead, members with each
    answer, the bot stopped before the 2-hour reminder is due and started after it."""
    from tests.support import ShiftedClock

    # 11:59:40 in Santiago: a meeting at 14:00 has its 2-hour reminder due in 20 s.
    clock = ShiftedClock(datetime(2026, 11, 24, 14, 59, 40, tzinfo=UTC))
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        _, carmen, (ana, beto, rosa) = await _barrio_with_people(
            runtime, lambda user_id, name: Phone(emulator, runtime, user_id, name)
        )
        for person in (ana, beto, rosa):
            await person.say("/silencio")
            await person.tap("Sin silencio")
        await _call_meeting(carmen, when="hoy 14:00")
        await carmen.tap("Enviar invitación")
        for person, answer in ((ana, "Asistiré"), (beto, "No podré")):
            await person.wait_for("Te invitan")
            await person.tap(answer)
        await rosa.wait_for("Te invitan")
    finally:
        await runtime.stop()
    due = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert clock() < due, "the set-up took too long; the test proves nothing"
    await asyncio.sleep((due - clock()).total_seconds() + 0.5)
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        for person in (ana, rosa):
            person.runtime = runtime
            got = await person.wait_for("Recordatorio de reunión")
            assert "hoy martes 24 de noviembre a las 14:00" in got["text"]
        await outbox_idle(runtime, clock)
        await asyncio.sleep(0.5)
        assert len(reminders_of(ana)) == 1 and len(reminders_of(rosa)) == 1
        assert reminders_of(beto) == []
    finally:
        await runtime.stop()


async def test_call_deadline_reminders_reach_its_audience_with_days_left(runtime, phone, clock):
    barrio, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    _, _, (far, _, _) = await _barrio_with_people(runtime, phone, "Barrio Lejano", "Lolol", 6100)
    await carmen.say("/convocatoria")
    await carmen.say("Fondo Barrios 2027")
    await carmen.say("Financia mejoras de fachada para los locales del barrio.")
    await carmen.say("https://www.sercotec.cl/fondo")
    await carmen.tap("Barrio Estación")
    await carmen.say("hoy")
    await carmen.say("15/12")
    await carmen.tap("Publicar")
    await ana.wait_for("Nueva convocatoria")
    planned = await _reminders(runtime, ReminderKind.FUNDING)
    # 10:00 in Santiago (UTC-3 in December), 7 days and 1 day before the 15th.
    assert [r.due_at for r in planned] == [
        datetime(2026, 12, 8, 13, 0, tzinfo=UTC),
        datetime(2026, 12, 14, 13, 0, tzinfo=UTC),
    ]
    await settle_reminders(runtime, clock, planned[0].due_at + timedelta(seconds=5))
    week = await ana.wait_for("se acerca el cierre")
    assert "Quedan 7 días" in week["text"] and "https://www.sercotec.cl/fondo" in week["text"]
    await settle_reminders(runtime, clock, planned[1].due_at + timedelta(seconds=5))
    day = await ana.wait_for("se acerca el cierre")
    assert "cierra mañana" in day["text"]
    await outbox_idle(runtime, clock)
    assert not [m for m in far.texts() if "se acerca el cierre" in m]


async def _publish_call(carmen, ana, closes="15/12"):
    await carmen.say("/convocatoria")
    await carmen.say("Fondo Barrios 2027")
    await carmen.say("Financia mejoras de fachada para los locales del barrio.")
    await carmen.say("Sin enlace")
    await carmen.tap("Barrio Estación")
    await carmen.say("hoy")
    await carmen.say(closes)
    await carmen.tap("Publicar")
    await ana.wait_for("Nueva convocatoria")


async def test_a_call_moved_or_withdrawn_moves_or_removes_its_reminders(runtime, phone, clock):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await _publish_call(carmen, ana)
    # Members see the call without the coordinator's buttons.
    assert buttons((await ana.say("/convocatorias"))[-1]) == []
    await carmen.say("/convocatorias")
    await carmen.tap("Cambiar cierre")
    assert "ahora cierra el domingo 20 de diciembre" in text_of(await carmen.say("20/12"))
    planned = await _reminders(runtime, ReminderKind.FUNDING)
    assert [(r.due_at, r.status) for r in planned] == [
        (datetime(2026, 12, 13, 13, 0, tzinfo=UTC), ReminderStatus.PENDING),
        (datetime(2026, 12, 19, 13, 0, tzinfo=UTC), ReminderStatus.PENDING),
    ]
    await settle_reminders(runtime, clock, planned[0].due_at + timedelta(seconds=5))
    assert "Quedan 7 días" in (await ana.wait_for("se acerca el cierre"))["text"]

    await carmen.say("/convocatorias")
    await carmen.tap("Retirar")
    assert "está retirada" in text_of(await carmen.tap("Sí, retirar"))
    assert [r.status for r in await _reminders(runtime, ReminderKind.FUNDING)] == [
        ReminderStatus.FIRED
    ]
    assert "No hay convocatorias" in text_of(await ana.say("/convocatorias"))
    await settle_reminders(runtime, clock, planned[1].due_at + timedelta(seconds=5))
    await outbox_idle(runtime, clock)
    assert len([t for t in ana.texts() if "se acerca el cierre" in t]) == 1
    # A stale button of the withdrawn call answers plainly.
    card = next(m for m in reversed(carmen.emulator.sent(carmen.user_id)) if "💰" in m["text"])
    stale = await carmen.tap_data(
        card["message_id"], f"cnv:reclose:{planned[0].funding_call_id}", forge=True
    )
    assert "ya no está abierta" in text_of(stale)


async def test_a_failing_planner_is_logged_and_reminders_still_fire(runtime, phone, clock, caplog):
    _, _, ana, _, _ = await _meeting_with_answers(runtime, phone)

    async def broken(session, now):
        raise RuntimeError("a planner bug")

    runtime.reminders.planners = [broken, *runtime.reminders.planners]
    await runtime.reminders.plan()
    assert runtime.reminders.stats.plan_failed == 1
    assert any("reminder planning failed" in r.getMessage() for r in caplog.records)
    await settle_reminders(runtime, clock, DAY_BEFORE + timedelta(seconds=5))
    assert "mañana jueves" in (await ana.wait_for("Recordatorio de reunión"))["text"]


# --- invitations and change notices held overnight ------------------------------------------
WEDNESDAY_2330 = datetime(2026, 11, 26, 2, 30, tzinfo=UTC)  # miércoles 25, 23:30 in Santiago
THURSDAY_0800 = datetime(2026, 11, 26, 11, 0, 5, tzinfo=UTC)


async def test_an_invitation_held_by_quiet_hours_says_today_when_it_arrives(runtime, phone, clock):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    clock.advance(WEDNESDAY_2330 - clock())
    check = await _call_meeting(carmen)  # "jueves 19:00": tomorrow, as Carmen types it
    assert "mañana jueves 26 de noviembre a las 19:00" in check
    await carmen.tap("Enviar invitación")
    await outbox_idle(runtime, clock)
    assert not any("Te invitan" in t for t in ana.texts())  # Ana's quiet hours hold it

    clock.advance(THURSDAY_0800 - clock())
    runtime.dispatcher.wake()
    invite = await ana.wait_for("Te invitan a una reunión")
    assert "hoy jueves 26 de noviembre a las 19:00" in invite["text"]
    assert "mañana" not in invite["text"]
    assert "Anotado: Asistiré" in text_of(await ana.tap("Asistiré"))


async def test_a_date_change_held_overnight_is_worded_as_it_arrives(runtime, phone, clock):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen, "viernes 19:00")  # Friday 27 November
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    clock.advance(WEDNESDAY_2330 - clock())
    await carmen.say("/asistencia")
    await carmen.tap("Cambiar fecha")
    await carmen.say("jueves 19:00")
    await carmen.tap("Sí, está bien")
    await outbox_idle(runtime, clock)
    assert not any("Cambió la fecha" in t for t in ana.texts())

    clock.advance(THURSDAY_0800 - clock())
    runtime.dispatcher.wake()
    moved = await ana.wait_for("Cambió la fecha")
    assert "Antes: mañana viernes 27 de noviembre a las 19:00" in moved["text"]
    assert "Ahora: hoy jueves 26 de noviembre a las 19:00" in moved["text"]
    assert "Anotado: No podré" in text_of(await ana.tap("No podré"))


async def test_an_invitation_to_a_meeting_cancelled_while_held_never_arrives(runtime, phone, clock):
    _, carmen, (ana, _, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/silencio")
    await rosa.tap("Sin silencio")
    clock.advance(WEDNESDAY_2330 - clock())
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await rosa.wait_for("Te invitan")
    await carmen.say("/asistencia")
    await carmen.tap("Cancelar reunión")
    assert "Avisé a 1 persona." in text_of(await carmen.tap("Sí, cancelar"))
    clock.advance(THURSDAY_0800 - clock())
    runtime.dispatcher.wake()
    await outbox_idle(runtime, clock)
    assert not any("Te invitan" in t or "Se canceló" in t for t in ana.texts())
    assert "Se canceló la reunión" in (await rosa.wait_for("Se canceló"))["text"]


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [
        ("48 y 3", (48 * 60, 3 * 60)),
        ("2 horas", (120,)),
        ("un día antes y una hora antes", (24 * 60, 60)),
        ("dos días y 3 horas", (48 * 60, 180)),
        ("24 h", (24 * 60,)),
        ("2 horas antes de la reunión", (120,)),
        ("nueve horas", (9 * 60,)),
        ("un día antes a las 9", None),  # an hour of the day, not 9 hours before
        ("a las 18", None),
        ("1h30", None),  # not 30 hours and 1
        ("15 días", None),  # past two weeks
        ("0", None),
        ("48 y 3 y 1 y 2", None),  # four
        ("el día", None),
        ("pronto", None),
    ],
)
def test_parse_hours(typed, minutes):
    from handlers.reminder_settings import parse_hours

    assert parse_hours(typed) == minutes


async def test_hours_typed_after_recordatorios_are_saved_without_the_button(runtime, phone):
    """Walking the demo: "un dia antes y una hora antes" after /recordatorios got "No te
    entendí"."""
    barrio, carmen, _ = await _barrio_with_people(runtime, phone)
    await carmen.say("/recordatorios")
    before = await snapshot(runtime)
    assert "No entendí" in text_of(await carmen.say("cuando se pueda"))
    assert await snapshot(runtime) == before
    saved = text_of(await carmen.say("un dia antes y una hora antes"))
    assert "se recuerdan 24 h y 1 h antes" in saved
    async with runtime.sessions() as session:
        stored = await session.get(Barrio, barrio.id)
    assert stored.reminder_minutes == [24 * 60, 60]
