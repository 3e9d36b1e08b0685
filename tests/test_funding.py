"""Calls for funding: published by a coordinator, shown to members with the days left."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from tests.support import make_barrio, register, snapshot, text_of
from tests.test_broadcasts import _barrio_with_people


async def _publish(carmen, audience="Barrio Estación", opens="hoy", closes="15/12"):
    await carmen.say("/convocatoria")
    await carmen.say("Fondo Barrios Comerciales 2027")
    await carmen.say("Financia mejoras de fachadas y seguridad para negocios del barrio.")
    await carmen.say("https://www.sercotec.cl/barrios")
    await carmen.tap(audience)
    await carmen.say(opens)
    return await carmen.say(closes)


async def test_call_reaches_the_barrio_and_shows_days_left(runtime, phone, clock):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    other = await make_barrio(runtime, "Barrio Lejano", "Lolol", open_to_all=True)
    lucia = phone(6201, "Lucía")
    await register(lucia, other)
    preview = text_of(await _publish(carmen))
    assert "💰 Fondo Barrios Comerciales 2027" in preview and "Llegará a 3 socios" in preview
    assert "del martes 24 de noviembre al martes 15 de diciembre" in preview
    assert "Avisé a 3 socios" in text_of(await carmen.tap("Publicar"))
    notice = await ana.wait_for("Nueva convocatoria")
    assert "https://www.sercotec.cl/barrios" in notice["text"]
    assert "Quedan 21 días" in text_of(await ana.say("/convocatorias"))
    assert "No hay convocatorias" in text_of(await lucia.say("/convocatorias"))
    clock.advance(timedelta(days=21))
    assert "último día" in text_of(await ana.say("/convocatorias"))
    clock.advance(timedelta(days=1))
    assert "No hay convocatorias" in text_of(await ana.say("/convocatorias"))


async def test_call_to_a_whole_region(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    other = await make_barrio(runtime, "Barrio Lejano", "Lolol", open_to_all=True)
    lucia = phone(6202, "Lucía")
    await register(lucia, other)
    preview = text_of(await _publish(carmen, audience="Toda la región"))
    assert "Llegará a 4 socios" in preview
    await carmen.tap("Publicar")
    await lucia.wait_for("Nueva convocatoria")
    assert "Quedan" in text_of(await lucia.say("/convocatorias"))


async def test_opening_days_as_typed(runtime, phone):
    _, carmen, _ = await _barrio_with_people(runtime, phone)
    # Today is Tuesday 24/11/2026: "1/11" is the call that opened this month.
    assert "del domingo 1 de noviembre al" in text_of(await _publish(carmen, opens="1/11"))
    await carmen.tap("Cancelar")
    leap = text_of(await _publish(carmen, opens="29/02/2028", closes="31/03/2028"))
    assert "29 de febrero" in leap and texts.ERROR_OURS not in leap
    await carmen.tap("Cancelar")
    typed_year = text_of(await _publish(carmen, opens="15/12/2027", closes="31/12/2027"))
    assert "del miércoles 15 de diciembre" in typed_year  # 2027's, not this year's Tuesday


async def test_bad_link_and_dates_change_nothing(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/convocatoria")
    await carmen.say("Fondo de prueba")
    await carmen.say("Una descripción corta")
    before = await snapshot(runtime)
    assert "enlace no me sirve" in text_of(await carmen.say("sercotec punto cl"))
    await carmen.tap("Sin enlace")
    await carmen.tap("Barrio Estación")
    assert "No entendí el día" in text_of(await carmen.say("pronto"))
    await carmen.say("1/12")
    assert "después de la apertura" in text_of(await carmen.say("30/11"))
    after = await snapshot(runtime)
    assert after["funding_calls"] == before["funding_calls"] == []
    assert after["deliveries"] == before["deliveries"]
    assert "solo para la coordinación" in text_of(await ana.say("/convocatoria"))


async def test_a_link_typed_without_https_gets_it(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/convocatoria")
    await carmen.say("Fondo Barrios Comerciales 2027")
    await carmen.say("Financia mejoras de fachadas y seguridad para negocios del barrio.")
    await carmen.say("www.sercotec.cl/barrios")
    await carmen.tap("Barrio Estación")
    await carmen.say("hoy")
    assert "https://www.sercotec.cl/barrios" in text_of(await carmen.say("15/12"))
    await carmen.tap("Publicar")
    notice = await ana.wait_for("Nueva convocatoria")
    assert "https://www.sercotec.cl/barrios" in notice["text"]


def test_web_addresses_as_people_type_them():
    from handlers.funding import web_address

    assert web_address(" www.sercotec.cl ") == "https://www.sercotec.cl"
    assert web_address("HTTP://sercotec.cl/x") == "HTTP://sercotec.cl/x"
    for wrong in ("sercotec punto cl", "sercotec", "http://[sercotec", "", "https://", "a." * 300):
        assert web_address(wrong) is None, wrong
