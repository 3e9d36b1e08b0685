"""Meetings end to end: call, invite, answer, change the answer, attendance, .ics, move, cancel."""

from __future__ import annotations

from sqlalchemy import select

from models import Meeting, MeetingStatus
from tests.support import buttons, snapshot, text_of
from tests.test_broadcasts import _barrio_with_people


async def _call_meeting(carmen, when="jueves 19:00"):
    check = await _up_to_the_agenda(carmen, when)
    await carmen.say("Seguridad y feria navideña")
    return check


async def _up_to_the_agenda(carmen, when="jueves 19:00"):
    """A meeting called up to its agenda step; returns how its date was understood."""
    await carmen.say("/reunion")
    await carmen.say("Reunión mensual de socios")
    check = text_of(await carmen.say(when))
    await carmen.tap("Sí, está bien")
    await carmen.say("Sede vecinal, Estado 123")
    return check


async def test_meeting_invite_rsvp_and_attendance(runtime, phone, emulator):
    _, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    check = await _call_meeting(carmen)
    # The clock is Tuesday 24 November 2026, noon in Santiago.
    assert "Entendí: jueves 26 de noviembre a las 19:00" in check
    assert "a 3 socios" in carmen.last()["text"]
    assert "Invitación enviada a 3 socios" in text_of(await carmen.tap("Enviar invitación"))

    invite = await ana.wait_for("Te invitan a una reunión")
    assert (
        "Sede vecinal, Estado 123" in invite["text"]
        and "jueves 26 de noviembre a las 19:00" in invite["text"]
    )
    assert [b["text"] for b in buttons(invite)] == [
        "✅ Asistiré",
        "❌ No podré",
        "🤔 Tal vez",
        "📅 Agregar al calendario",
    ]
    assert "Anotado: Asistiré" in text_of(await ana.tap("Asistiré"))
    await beto.wait_for("Te invitan")
    await beto.tap("No podré")

    # Ana changes her mind from /reuniones.
    listing = await ana.say("/reuniones")
    assert "Tu respuesta: Asistiré" in listing[-1]["text"]
    assert "Anotado: Tal vez" in text_of(await ana.tap("Tal vez"))

    attendance = text_of(await carmen.say("/asistencia"))
    assert "Asistirán (0)" in attendance and "Tal vez (1): Ana" in attendance
    assert "No podrán (1): Beto" in attendance and "Sin responder (1): Rosa" in attendance

    await ana.say("/reuniones")
    files = await ana.tap("Agregar al calendario")
    document = files[-1]
    assert document["method"] == "sendDocument"
    assert document["document"]["file_name"] == "reunion-mensual-de-socios.ics"


async def test_moving_and_cancelling_tell_the_invited(runtime, phone):
    _, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")

    await carmen.say("/asistencia")
    asked = text_of(await carmen.tap("Cambiar fecha"))
    # Which meeting moves, and from when, is said at each step.
    assert "nueva fecha de «Reunión mensual de socios» (jueves 26 de noviembre" in asked
    assert (
        "Entendí: «Reunión mensual de socios» (jueves 26 de noviembre a las 19:00) pasa a "
        "viernes 27 de noviembre a las 18:30"
    ) in text_of(await carmen.say("27/11 18:30"))
    assert "Avisé a 3 invitados" in text_of(await carmen.tap("Sí, está bien"))
    moved = await ana.wait_for("Cambió la fecha")
    assert "viernes 27 de noviembre a las 18:30" in moved["text"]
    # Her "Asistiré" stands, and she is told so.
    assert "tu respuesta sigue en pie" in moved["text"]
    assert "Asistirán (1): Ana" in text_of(await carmen.say("/asistencia"))

    await carmen.say("/asistencia")
    await carmen.tap("Cancelar reunión")
    assert "Avisé a 3 invitados" in text_of(await carmen.tap("Sí, cancelar"))
    await rosa.wait_for("Se canceló la reunión")
    answer = text_of(
        await ana.tap_data(moved["message_id"], buttons(moved)[0]["callback_data"], forge=True)
    )
    assert "ya no recibe respuestas (se canceló)" in answer
    async with runtime.sessions() as session:
        meeting = await session.scalar(select(Meeting))
    assert meeting is not None and meeting.status == MeetingStatus.CANCELLED
    assert meeting.sequence == 2  # the move and the cancellation each updated calendars


async def test_dates_people_type_wrong(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/reunion")
    await carmen.say("Reunión de emergencia")
    before = await snapshot(runtime)
    assert "No entendí la fecha" in text_of(await carmen.say("cuando se pueda"))
    assert "El 31 de febrero no existe" in text_of(await carmen.say("31/02 19:00"))
    assert "ya pasó" in text_of(await carmen.say("hoy 10:00"))
    assert await snapshot(runtime) == before
    assert "Entendí: mañana miércoles 25 de noviembre a las 19:00" in text_of(
        await carmen.say("mañana a las 7 de la tarde")
    )


async def test_a_socio_cannot_call_a_meeting(runtime, phone):
    _, _, (ana, _, _) = await _barrio_with_people(runtime, phone)
    before = await snapshot(runtime)
    assert "solo para la coordinación" in text_of(await ana.say("/reunion"))
    assert "solo para la coordinación" in text_of(await ana.say("/asistencia"))
    assert await snapshot(runtime) == before


async def test_attendance_export_for_sercotec(
    runtime, phone, monkeypatch, tmp_path, settings, capsys
):
    import csv
    import io

    from handlers import admin

    barrio, carmen, (ana, beto, _) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    await beto.wait_for("Te invitan")
    await beto.tap("Tal vez")
    async with runtime.sessions() as session:
        rows = await admin.attendance_rows(session, barrio, runtime.settings.zone)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([admin.ATTENDANCE_COLUMNS, *rows])
    parsed = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [(r["socio"], r["respuesta"], r["fecha_local"]) for r in parsed] == [
        ("Ana", "asistire", "2026-11-26 19:00"),
        ("Beto", "tal_vez", "2026-11-26 19:00"),
    ]


async def test_invitations_still_waiting_follow_a_move_or_a_cancel(runtime, phone, clock):
    from datetime import timedelta

    _, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/silencio")
    await rosa.tap("Sin silencio")
    clock.advance(timedelta(hours=10, minutes=30))  # 22:30: Ana's and Beto's invitations wait
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await rosa.wait_for("Te invitan")
    await carmen.say("/asistencia")
    await carmen.tap("Cambiar fecha")
    await carmen.say("27/11 18:30")
    assert "Avisé a 1 persona." in text_of(await carmen.tap("Sí, está bien"))  # only Rosa
    clock.advance(timedelta(hours=10))  # 08:30
    runtime.dispatcher.wake()
    invite = await ana.wait_for("Te invitan")
    assert "viernes 27 de noviembre a las 18:30" in invite["text"]
    assert not any("Cambió la fecha" in t for t in ana.texts())


async def test_live_location_updates_are_not_answered(runtime, phone, emulator):
    from telegram import Update

    from bot.telegram import inbound_from_update

    update = Update.de_json(
        {
            "update_id": 1,
            "edited_message": {
                "message_id": 5,
                "date": 1,
                "edit_date": 2,
                "chat": {"id": 7, "type": "private"},
                "from": {"id": 7, "is_bot": False, "first_name": "Ana"},
                "location": {"latitude": -34.1, "longitude": -70.7, "live_period": 3600},
            },
        },
        None,
    )
    assert inbound_from_update(update, "BarrioTestBot") is None


async def test_no_typed_at_the_agenda_step_means_without_agenda(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    await _up_to_the_agenda(carmen)
    preview = text_of(await carmen.say("¡No!"))
    assert "Enviar invitación" in str(carmen.last()) and "📝" not in preview
