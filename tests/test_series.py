"""Recurring meetings end to end: the rule typed as people say it and confirmed with the next
dates, occurrences created a bounded time ahead with invitations and reminders, one date
cancelled on its own (EXDATE in the calendar file) or moved (its own VEVENT there), the series
ended, Chile's clock changes, and wrong input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import func, select

from handlers import series
from handlers.recurrence import parse_rule
from models import Barrio, Meeting, MeetingInvitation, MeetingStatus, Reminder, ReminderKind
from tests.support import buttons, make_barrio, snapshot, text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_ics import as_a_calendar_reads_it
from tests.test_mydata import _downloaded
from tests.test_reminders import outbox_idle, reminders_of, settle_reminders

SANTIAGO = ZoneInfo("America/Santiago")


async def _call_series(carmen, rule="todos los jueves a las 19:00"):
    await carmen.say("/reunion")
    await carmen.say("Reunión semanal de socios")
    await carmen.tap("Se repite")
    check = text_of(await carmen.say(rule))
    await carmen.tap("Sí, está bien")
    await carmen.say("Sede vecinal, Estado 123")
    preview = text_of(await carmen.say("Seguridad"))
    return check, preview


async def _meetings(runtime) -> list[Meeting]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(Meeting).order_by(Meeting.starts_at))).all())


async def _tap_on_card(phone, date_words: str, label: str):
    """Tap `label` on the newest attendance card of the meeting on `date_words`."""
    for message in reversed(phone.emulator.sent(phone.user_id)):
        if date_words in (message.get("text") or "") and buttons(message):
            button = next(b for b in buttons(message) if label in b["text"])
            return await phone.tap_data(message["message_id"], button["callback_data"])
    raise AssertionError(f"no card for {date_words}")


async def test_a_weekly_series_is_confirmed_created_ahead_and_reminded(runtime, phone, clock):
    _, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    check, preview = await _call_series(carmen)
    # The clock is Tuesday 24 November 2026, noon in Santiago.
    assert "Entendí: todos los jueves a las 19:00. Las próximas fechas:" in check
    assert "jueves 26 de noviembre a las 19:00" in check
    assert "jueves 3 de diciembre a las 19:00" in check
    assert "jueves 10 de diciembre a las 19:00" in check
    assert "🔁 Se repite todos los jueves a las 19:00" in preview
    sent = text_of(await carmen.tap("Enviar invitación"))
    assert "Invitación enviada a 3 socios" in sent and "Fechas ya agendadas: 8" in sent

    meetings = await _meetings(runtime)
    # Eight weeks ahead and no further: 26/11 to 14/1.
    assert [m.starts_at.astimezone(SANTIAGO).strftime("%d/%m %H:%M") for m in meetings] == [
        "26/11 19:00", "03/12 19:00", "10/12 19:00", "17/12 19:00",
        "24/12 19:00", "31/12 19:00", "07/01 19:00", "14/01 19:00",
    ]  # fmt: skip
    async with runtime.sessions() as session:
        invitations = await session.scalar(select(func.count()).select_from(MeetingInvitation))
        planned = await session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.kind == ReminderKind.MEETING)
        )
    assert invitations == 8 * 3 and planned == 8 * 2

    invite = await ana.wait_for("Te invitan a una reunión que se repite")
    assert "todos los jueves a las 19:00" in invite["text"]
    await ana.tap("Asistiré")
    await ana.say("/reuniones")
    files = await ana.tap("Agregar al calendario")
    calendar = Calendar.from_ical(await _downloaded(ana.emulator, files[-1]))
    event = next(iter(calendar.walk("VEVENT")))
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=TH"
    assert event["DTSTART"].dt == datetime(2026, 11, 26, 19, 0, tzinfo=SANTIAGO)

    # The first date's reminders: Ana answered, Beto and Rosa get the buttons.
    await settle_reminders(runtime, clock, meetings[0].starts_at - timedelta(hours=2, seconds=-5))
    for person in (beto, rosa):
        reminder = await person.wait_for("Recordatorio de reunión")
        assert "hoy jueves 26 de noviembre" in reminder["text"]
        assert "Asistiré" in buttons(reminder)[0]["text"]
    assert "hoy jueves 26" in (await ana.wait_for("Recordatorio de reunión"))["text"]

    # Two weeks on, the series is extended to eight weeks ahead again, once.
    clock.advance(timedelta(days=14))
    await runtime.reminders.plan()
    await runtime.reminders.plan()
    extended = await _meetings(runtime)
    assert len(extended) == 10
    assert extended[-1].starts_at.astimezone(SANTIAGO).strftime("%d/%m") == "28/01"
    assert len({m.occurrence for m in extended}) == 10


async def test_one_date_cancelled_alone_and_then_the_series_ended(runtime, phone, clock):
    _, carmen, (ana, beto, _) = await _barrio_with_people(runtime, phone)
    await _call_series(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan a una reunión que se repite")
    await ana.tap("Asistiré")

    await carmen.say("/asistencia")
    await _tap_on_card(carmen, "jueves 3 de diciembre", "Cancelar reunión")
    assert "Avisé a 3 invitados" in text_of(await carmen.tap("Sí, cancelar"))
    assert "Se canceló la reunión" in (await ana.wait_for("Se canceló"))["text"]
    statuses = [m.status for m in await _meetings(runtime)]
    assert statuses.count(MeetingStatus.CANCELLED) == 1 and len(statuses) == 8

    await ana.say("/reuniones")
    files = await ana.tap("Agregar al calendario")
    raw = await _downloaded(ana.emulator, files[-1])
    event = next(iter(Calendar.from_ical(raw).walk("VEVENT")))
    assert b"20261203T190000" in event["EXDATE"].to_ical()
    assert "RRULE" in event

    # A stale button of the cancelled date: a plain answer, and nothing changes.
    cancelled = next(m for m in await _meetings(runtime) if m.status == MeetingStatus.CANCELLED)
    message = ana.last()
    before = await snapshot(runtime)
    stale = await ana.tap_data(message["message_id"], f"rsv:y:{cancelled.id}", forge=True)
    assert "ya no recibe respuestas (se canceló)" in text_of(stale)
    assert await snapshot(runtime) == before

    await carmen.say("/asistencia")
    await carmen.tap("Terminar la serie")
    ended = text_of(await carmen.tap("Sí, terminarla"))
    assert "Fechas canceladas: 7. Invitados avisados: 3" in ended
    await outbox_idle(runtime, clock)
    for person in (ana, beto):
        assert sum("terminó" in t for t in person.texts()) == 1
    assert [m.status for m in await _meetings(runtime)] == [MeetingStatus.CANCELLED] * 8
    async with runtime.sessions() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.status == "pending", Reminder.kind == ReminderKind.MEETING)
        )
    assert pending == 0
    clock.advance(timedelta(days=60))
    await runtime.reminders.plan()
    assert len(await _meetings(runtime)) == 8, "an ended series grows no more"
    await settle_reminders(runtime, clock)
    await outbox_idle(runtime, clock)
    assert reminders_of(ana) == []


async def _calendar_file(person, date_words: str) -> Calendar:
    """The file "Agregar al calendario" gives on the `/reuniones` card of that date."""
    await person.say("/reuniones")
    files = await _tap_on_card(person, date_words, "Agregar al calendario")
    return Calendar.from_ical(await _downloaded(person.emulator, files[-1]))


async def test_one_date_moved_alone_shows_at_its_new_time_in_the_series_file(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await _call_series(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan a una reunión que se repite")
    (before,) = (await _calendar_file(ana, "jueves 26 de noviembre")).walk("VEVENT")
    assert before["SEQUENCE"] == 0

    await carmen.say("/asistencia")
    await _tap_on_card(carmen, "jueves 10 de diciembre", "Cambiar fecha")
    await carmen.say("11/12 18:30")
    assert "Avisé a 3 invitados" in text_of(await carmen.tap("Sí, está bien"))
    moved_notice = await ana.wait_for("Cambió la fecha")
    assert "viernes 11 de diciembre a las 18:30" in moved_notice["text"]

    # Another date's button gives the whole series, as it is now.
    calendar = await _calendar_file(ana, "jueves 26 de noviembre")
    master, override = calendar.walk("VEVENT")
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=TH" and "EXDATE" not in master
    assert master["SEQUENCE"] == 1, "a phone must take the new file as an update"
    assert override["UID"] == master["UID"] and "RRULE" not in override
    assert override["RECURRENCE-ID"].to_ical() == b"20261210T190000"
    assert override["RECURRENCE-ID"].params["TZID"] == "America/Santiago"
    assert override["DTSTART"].dt == datetime(2026, 12, 11, 18, 30, tzinfo=SANTIAGO)
    assert override["SEQUENCE"] == 1
    shown = as_a_calendar_reads_it(
        calendar.to_ical(), datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 18, tzinfo=UTC)
    )
    assert [moment.astimezone(SANTIAGO).strftime("%d/%m %H:%M") for moment in shown] == [
        "26/11 19:00", "03/12 19:00", "11/12 18:30", "17/12 19:00",
    ]  # fmt: skip

    # The moved date's own button still gives that date's change alone.
    (alone,) = (await _calendar_file(ana, "viernes 11 de diciembre")).walk("VEVENT")
    assert alone["RECURRENCE-ID"].to_ical() == b"20261210T190000" and "RRULE" not in alone

    # Another date cancelled too: the series file carries both, and its sequence goes on up.
    await carmen.say("/asistencia")
    await _tap_on_card(carmen, "jueves 17 de diciembre", "Cancelar reunión")
    await carmen.tap("Sí, cancelar")
    master, override = (await _calendar_file(ana, "jueves 3 de diciembre")).walk("VEVENT")
    assert b"20261217T190000" in master["EXDATE"].to_ical()
    assert master["SEQUENCE"] == 2
    assert override["RECURRENCE-ID"].to_ical() == b"20261210T190000"

    # Moved back to the rule's time: still an override, newer than the one phones hold.
    await carmen.say("/asistencia")
    await _tap_on_card(carmen, "viernes 11 de diciembre", "Cambiar fecha")
    await carmen.say("10/12 19:00")
    await carmen.tap("Sí, está bien")
    master, override = (await _calendar_file(ana, "jueves 3 de diciembre")).walk("VEVENT")
    assert override["RECURRENCE-ID"].to_ical() == b"20261210T190000"
    assert override["DTSTART"].dt == datetime(2026, 12, 10, 19, 0, tzinfo=SANTIAGO)
    assert override["SEQUENCE"] == 2 and master["SEQUENCE"] == 3

    # Ended, the series' file cancels it above every sequence it had.
    await carmen.say("/asistencia")
    await carmen.tap("Terminar la serie")
    await carmen.tap("Sí, terminarla")
    first = (await _meetings(runtime))[0]
    files = await ana.tap_data(ana.last()["message_id"], f"rsv:ics:{first.id}", forge=True)
    raw = await _downloaded(ana.emulator, files[-1])
    (ended,) = Calendar.from_ical(raw).walk("VEVENT")
    assert b"METHOD:CANCEL" in raw and ended["STATUS"] == "CANCELLED"
    assert ended["SEQUENCE"] > 3


async def test_the_31st_of_each_month_skips_short_months_and_says_so(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    check, _ = await _call_series(carmen, "el 31 de cada mes a las 19:00")
    assert "el día 31 de cada mes a las 19:00" in check
    assert "Ojo: los meses que no tienen día 31 no tienen reunión" in check
    assert "jueves 31 de diciembre" in check and "domingo 31 de enero de 2027" in check
    assert "miércoles 31 de marzo de 2027" in check  # February has no 31st


async def test_rules_the_reader_cannot_take_get_a_clear_answer_and_change_nothing(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    await carmen.say("/reunion")
    await carmen.say("Reunión semanal")
    await carmen.tap("Se repite")
    before = await snapshot(runtime)
    for typed, answer in (
        ("cada 10 días lunes 18:30", "no me calza con un día de la semana"),
        ("todos los jueves", "¿A qué hora?"),
        ("el 32 de cada mes a las 19:00", "Ese día no existe"),
        ("jueves 19:00", "Eso es un solo día"),
        ("🎉🎉", "No entendí cada cuánto es"),
        ("todos los días a las 9", "todos los días es mucho"),
        ("x" * 4000, "No entendí cada cuánto es"),
    ):
        assert answer in text_of(await carmen.say(typed)), typed
        assert await snapshot(runtime) == before, typed


async def test_chiles_clock_changes_neither_double_nor_lose_a_weekly_meeting(runtime):
    """4 April 2026: 23:00–23:59 on Saturday happens twice; 6 September 2026: Sunday
    00:00–00:59 does not exist."""
    barrio = await make_barrio(runtime, "Barrio Reloj", "Rengo")
    cases = (
        ("todos los sábados a las 23:30", datetime(2026, 3, 24, 15, 0, tzinfo=UTC)),
        ("todos los domingos a las 00:30", datetime(2026, 8, 25, 15, 0, tzinfo=UTC)),
    )
    made = {}
    for rule_text, now in cases:
        rule = parse_rule(rule_text, now, SANTIAGO)
        async with runtime.sessions() as session, session.begin():
            _, meetings = await series.create(
                session,
                barrio=await session.get(Barrio, barrio.id),
                author_id=None,
                title=rule_text,
                place="Sede",
                agenda="",
                rule=rule,
                now=now,
                default=SANTIAGO,
            )
            made[rule_text] = [m.starts_at for m in meetings]
    saturdays = [at.astimezone(SANTIAGO) for at in made["todos los sábados a las 23:30"]]
    april_4 = [at for at in saturdays if at.date().isoformat() == "2026-04-04"]
    assert len(april_4) == 1, "the repeated hour must not double the meeting"
    assert made["todos los sábados a las 23:30"][1] == datetime(2026, 4, 5, 2, 30, tzinfo=UTC)
    sundays = made["todos los domingos a las 00:30"]
    assert datetime(2026, 9, 6, 4, 0, tzinfo=UTC) in sundays  # 01:00, the first valid minute
    assert datetime(2026, 9, 13, 3, 30, tzinfo=UTC) in sundays  # 00:30 again the week after
    assert len(sundays) == 8


async def test_cancelling_the_first_date_keeps_the_queued_series_invitation(runtime, phone, clock):
    _, carmen, (ana, _, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/silencio")
    await rosa.tap("Sin silencio")
    clock.advance(timedelta(hours=10, minutes=30))  # 22:30: Ana's invitation waits
    await _call_series(carmen)
    await carmen.tap("Enviar invitación")
    await rosa.wait_for("Te invitan a una reunión que se repite")
    await carmen.say("/asistencia")
    await _tap_on_card(carmen, "jueves 26 de noviembre", "Cancelar reunión")
    # Only Rosa had heard of it: Ana and Beto are in their quiet hours.
    assert "Avisé a 1 persona." in text_of(await carmen.tap("Sí, cancelar"))
    clock.advance(timedelta(hours=10))  # 08:30
    runtime.dispatcher.wake()
    invite = await ana.wait_for("Te invitan a una reunión que se repite")
    assert "todos los jueves a las 19:00" in invite["text"]
    assert not any("Se canceló" in t for t in ana.texts())


async def test_a_rule_whose_first_date_is_past_the_horizon_still_gets_it(runtime):
    barrio = await make_barrio(runtime, "Barrio Febrero", "Rengo")
    now = datetime(2027, 2, 1, 15, 0, tzinfo=UTC)
    rule = parse_rule("el 31 de cada mes a las 19:00", now, SANTIAGO)
    async with runtime.sessions() as session, session.begin():
        _, meetings = await series.create(
            session,
            barrio=await session.get(Barrio, barrio.id),
            author_id=None,
            title="Reunión de fin de mes",
            place="Sede",
            agenda="",
            rule=rule,
            now=now,
            default=SANTIAGO,
        )
    assert [m.starts_at for m in meetings] == [datetime(2027, 3, 31, 22, 0, tzinfo=UTC)]


async def test_two_processes_extending_one_series_create_each_date_once(runtime):
    barrio = await make_barrio(runtime, "Barrio Doble", "Rengo")
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    rule = parse_rule("todos los jueves a las 19:00", now, SANTIAGO)
    async with runtime.sessions() as session, session.begin():
        made, _ = await series.create(
            session,
            barrio=await session.get(Barrio, barrio.id),
            author_id=None,
            title="Semanal",
            place="Sede",
            agenda="",
            rule=rule,
            now=now,
            default=SANTIAGO,
        )
    later = now + timedelta(days=14)
    # Both processes read the series before either extends it.
    async with runtime.sessions() as first, runtime.sessions() as second:
        async with second.begin():
            theirs = await second.get(type(made), made.id)
        async with first.begin():
            mine = await first.get(type(made), made.id)
            assert len(await series.extend(first, mine, later, SANTIAGO)) == 2
        async with second.begin():
            assert await series.extend(second, theirs, later, SANTIAGO) == []
    assert len(await _meetings(runtime)) == 10


async def test_a_rule_typed_where_the_date_was_asked_is_read_as_a_series(runtime, phone):
    """Walking the demo: "todos los jueves a las 19:00" typed at "¿Cuándo es?" got "No
    entendí la fecha", and the 🔁 button was gone from that answer."""
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    await carmen.say("/reunion")
    await carmen.say("Reunión semanal de socios")
    before = await snapshot(runtime)
    unclear = await carmen.say("cuando podamos")
    assert "No entendí la fecha" in text_of(unclear)
    assert [b["text"] for b in buttons(unclear[-1])] == [
        "🔁 Se repite (todas las semanas, cada mes…)"
    ]
    assert "¿Cada cuánto es?" in text_of(await carmen.say("se repite"))
    await carmen.say("cancelar")

    await carmen.say("/reunion")
    await carmen.say("Reunión semanal de socios")
    check = text_of(await carmen.say("todos los jueves a las 19:00"))
    assert "Entendí: todos los jueves a las 19:00. Las próximas fechas:" in check
    after = await snapshot(runtime)
    for table in ("meetings", "meeting_series", "deliveries", "reminders"):
        assert after[table] == before[table], table  # nothing is made before it is confirmed
    await carmen.tap("Sí, está bien")
    await carmen.say("Sede vecinal, Estado 123")
    assert "🔁 Se repite todos los jueves a las 19:00" in text_of(await carmen.say("Seguridad"))
