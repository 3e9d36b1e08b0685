"""A date typed wrong is told what is wrong with it: a day that does not exist, a day gone by,
or a day without its hour, which is kept while "¿A qué hora?" waits for the answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models import Conversation, Meeting
from tests.support import snapshot, text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_funding import _publish

# The clock is Tuesday 24 November 2026, noon in Santiago (UTC-3).


async def _at_the_date_step(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/reunion")
    await carmen.say("Reunión de socios")
    return carmen, ana


async def _without_conversations(runtime):
    rows = await snapshot(runtime)
    del rows["conversations"]
    return rows


async def _step_of(runtime, carmen):
    async with runtime.sessions() as session:
        conversations = (await session.scalars(select(Conversation))).all()
    (mine,) = [c for c in conversations if c.external_id == str(carmen.user_id)]
    return mine.step, mine.data


async def _finish_meeting(carmen):
    await carmen.tap("Sí, está bien")
    await carmen.say("Sede vecinal, Estado 123")
    await carmen.tap("Sin temario")
    return text_of(await carmen.tap("Enviar invitación"))


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("30/02 10:00", "El 30 de febrero no existe."),
        ("31/11", "El 31 de noviembre no existe. Noviembre tiene 30 días."),
        ("ayer a las 10", "Esa fecha ya pasó: ayer lunes 23 de noviembre a las 10:00."),
        ("hoy 10:00", "Esa fecha ya pasó: hoy martes 24 de noviembre a las 10:00."),
    ],
)
async def test_a_wrong_day_is_told_what_is_wrong_and_changes_nothing(runtime, phone, typed, said):
    carmen, _ = await _at_the_date_step(runtime, phone)
    before = await snapshot(runtime)
    reply = text_of(await carmen.say(typed))
    assert said in reply and "No entendí" not in reply
    assert await snapshot(runtime) == before
    assert "Entendí: jueves 26 de noviembre a las 19:00" in text_of(
        await carmen.say("jueves 19:00")
    )


@pytest.mark.parametrize("hour", ["19:00", "7 de la tarde", "a las 19", "7"])
async def test_a_day_without_hour_asks_it_and_keeps_the_day(runtime, phone, hour):
    carmen, ana = await _at_the_date_step(runtime, phone)
    before = await _without_conversations(runtime)
    asked = text_of(await carmen.say("el jueves en la tarde"))
    assert "Jueves 26 de noviembre, anotado. ¿A qué hora? (por ejemplo 19:00)" in asked
    assert await _without_conversations(runtime) == before
    assert (await _step_of(runtime, carmen))[0] == "when_hour"
    assert "Entendí: jueves 26 de noviembre a las 19:00" in text_of(await carmen.say(hour))
    assert "Invitación enviada a 3 socios" in await _finish_meeting(carmen)
    invite = await ana.wait_for("Te invitan a una reunión")
    assert "jueves 26 de noviembre a las 19:00" in invite["text"]
    async with runtime.sessions() as session:
        meeting = await session.scalar(select(Meeting))
    assert meeting is not None
    assert meeting.starts_at == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "asked", "understood"),
    [
        ("el 10 de diciembre", "Jueves 10 de diciembre, anotado.", "jueves 10 de diciembre"),
        ("mañana", "Mañana miércoles 25 de noviembre, anotado.", "mañana miércoles 25"),
        ("el sábado en la mañana", "(por ejemplo 10:00)", "sábado 28 de noviembre a las 09:00"),
    ],
)
async def test_other_days_without_hour(runtime, phone, day, asked, understood):
    carmen, _ = await _at_the_date_step(runtime, phone)
    reply = text_of(await carmen.say(day))
    assert asked in reply and "¿A qué hora?" in reply
    assert understood in text_of(await carmen.say("9"))


async def test_an_hour_not_understood_keeps_the_day(runtime, phone):
    carmen, _ = await _at_the_date_step(runtime, phone)
    await carmen.say("el jueves en la tarde")
    before = await snapshot(runtime)
    for wrong in ("a las 25", "pronto", "🙂", "x" * 4000):
        assert "No entendí la hora" in text_of(await carmen.say(wrong)), wrong
    assert "ya pasó" in text_of(await carmen.say("ayer 19:00"))
    assert await snapshot(runtime) == before
    assert "Entendí: jueves 26 de noviembre a las 18:30" in text_of(await carmen.say("18:30"))


async def test_a_whole_date_answers_the_hour_question_too(runtime, phone):
    carmen, _ = await _at_the_date_step(runtime, phone)
    await carmen.say("el jueves")
    assert "Viernes 27 de noviembre, anotado." in text_of(await carmen.say("el viernes"))
    assert "Entendí: sábado 28 de noviembre a las 11:00" in text_of(
        await carmen.say("sábado 11:00")
    )


async def test_the_hour_passing_on_the_same_day_is_said(runtime, phone):
    carmen, _ = await _at_the_date_step(runtime, phone)
    assert "Hoy martes 24 de noviembre, anotado." in text_of(await carmen.say("hoy"))
    assert "Esa fecha ya pasó: hoy martes 24 de noviembre a las 10:00." in text_of(
        await carmen.say("10:00")
    )
    assert "Entendí: hoy martes 24 de noviembre a las 20:00" in text_of(await carmen.say("20:00"))


@pytest.mark.parametrize(
    ("way_out", "step"), [("/cancelar", None), ("cancelar", None), ("/convocatoria", "name")]
)
async def test_a_stale_hour_question_is_left_like_any_step(runtime, phone, way_out, step):
    carmen, _ = await _at_the_date_step(runtime, phone)
    assert "¿A qué hora?" in text_of(await carmen.say("el jueves en la tarde"))
    await carmen.say(way_out)
    assert (await _step_of(runtime, carmen))[0] == step
    assert "Entendí" not in text_of(await carmen.say("19:00"))
    async with runtime.sessions() as session:
        assert await session.scalar(select(Meeting)) is None


async def test_moving_a_meeting_to_a_day_without_hour(runtime, phone):
    carmen, ana = await _at_the_date_step(runtime, phone)
    await carmen.say("jueves 19:00")
    await _finish_meeting(carmen)
    await ana.wait_for("Te invitan")
    await carmen.say("/asistencia")
    await carmen.tap("Cambiar fecha")
    assert "El 31 de noviembre no existe" in text_of(await carmen.say("31/11 18:30"))
    assert "Viernes 27 de noviembre, anotado. ¿A qué hora?" in text_of(
        await carmen.say("el viernes")
    )
    assert (await _step_of(runtime, carmen))[0] == "move_hour"
    assert "pasa a viernes 27 de noviembre a las 18:30" in text_of(await carmen.say("18:30"))
    assert "Avisé a 3 invitados" in text_of(await carmen.tap("Sí, está bien"))
    async with runtime.sessions() as session:
        meeting = await session.scalar(select(Meeting))
    assert meeting is not None
    assert meeting.starts_at == datetime(2026, 11, 27, 21, 30, tzinfo=UTC)


async def test_a_call_deadline_is_told_what_is_wrong_and_a_day_alone_is_enough(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    await carmen.say("/convocatoria")
    await carmen.say("Fondo de prueba")
    await carmen.say("Una descripción corta")
    await carmen.tap("Sin enlace")
    await carmen.tap("Barrio Estación")
    assert "El 31 de noviembre no existe. Noviembre tiene 30 días." in text_of(
        await carmen.say("31/11")
    )
    await carmen.say("hoy")
    before = await snapshot(runtime)
    for typed, said in [
        ("30/02", "El 30 de febrero no existe."),
        ("31/11", "Noviembre tiene 30 días."),
        ("ayer", "Esa fecha ya pasó: ayer lunes 23 de noviembre."),
        ("29/02", "El 29 de febrero no existe en 2027"),
    ]:
        assert said in text_of(await carmen.say(typed)), typed
    assert await snapshot(runtime) == before
    preview = text_of(await carmen.say("el 10 de diciembre"))
    assert "al jueves 10 de diciembre" in preview and "¿A qué hora?" not in preview


async def test_a_call_closing_day_changed_to_a_day_that_does_not_exist(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    await _publish(carmen)
    await carmen.tap("Publicar")
    await carmen.say("/convocatorias")
    await carmen.tap("Cambiar")
    before = await snapshot(runtime)
    assert "Noviembre tiene 30 días." in text_of(await carmen.say("31/11"))
    assert "ya pasó: ayer lunes 23 de noviembre" in text_of(await carmen.say("ayer"))
    assert await snapshot(runtime) == before
