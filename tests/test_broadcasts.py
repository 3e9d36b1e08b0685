"""Announcements, security alerts and quiet hours, end to end through the outbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import Delivery, DeliveryStatus
from tests.support import (
    buttons,
    make_barrio,
    make_coordinator,
    register,
    snapshot,
    text_of,
    wait_for_delivery,
)


async def _barrio_with_people(
    runtime, phone, name="Barrio Estación", comuna="Rancagua", first=6000
):
    barrio = await make_barrio(runtime, name, comuna, open_to_all=True)
    carmen = phone(first, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    members = []
    for offset, who in enumerate(("Ana", "Beto", "Rosa"), start=1):
        person = phone(first + offset, who)
        await register(person, barrio, business=f"Negocio {who}")
        members.append(person)
    return barrio, carmen, members


async def test_announcement_reaches_each_member_once_and_reports(runtime, phone):
    barrio, carmen, members = await _barrio_with_people(runtime, phone)
    _, _, others = await _barrio_with_people(runtime, phone, "Barrio Lejano", "Lolol", first=6100)
    await carmen.say("/anuncio")
    preview = text_of(await carmen.say("Reunión de vecinos el jueves a las 19:00 en la sede."))
    assert "Llegará a 3 socios de Barrio Estación" in preview
    assert "📣 Anuncio de Barrio Estación" in preview
    assert "Enviando a 3 socios" in text_of(await carmen.tap("Enviar"))
    for person in members:
        got = await person.wait_for("📣 Anuncio de Barrio Estación")
        assert "jueves a las 19:00" in got["text"]
    report = await carmen.wait_for("Tu anuncio ya salió")
    assert "Entregados: 3" in report["text"] and "No se pudo: 0" in report["text"]
    for person in members:
        assert sum("📣 Anuncio" in t for t in person.texts()) == 1
    for person in others:
        assert not any("Barrio Estación" in t for t in person.texts())


async def test_announcement_with_photo(runtime, phone, emulator):
    barrio, carmen, members = await _barrio_with_people(runtime, phone)
    await carmen.say("/anuncio")
    await carmen.send(emulator.send_photo(carmen.user_id, caption="Feria navideña el sábado"))
    await carmen.tap("Enviar")
    got = await members[0].wait_for("Feria navideña")
    assert got["method"] == "sendPhoto"


async def test_a_socio_cannot_announce(runtime, phone):
    barrio, carmen, members = await _barrio_with_people(runtime, phone)
    before = await snapshot(runtime)
    assert "solo para la coordinación" in text_of(await members[0].say("/anuncio"))
    assert await snapshot(runtime) == before


async def test_alert_goes_to_everyone_now_and_coordinator_can_close_it(runtime, phone, clock):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    clock.advance(timedelta(hours=11))  # 23:00 in Santiago: quiet hours for everyone
    await ana.say("/alerta")
    await ana.tap("Robo")
    asked = text_of(await ana.say("Forzaron la reja del local 12, calle Estado"))
    assert "ubicación" in asked
    await ana.send(ana.emulator.send_location(ana.user_id, -34.1701, -70.7406))
    confirm = ana.last()["text"]
    assert (
        "Vas a alertar a 3 socios" in confirm
        and "maps.google.com/?q=-34.17010,-70.74060" in confirm
    )
    assert "133" in text_of(await ana.tap("Enviar alerta"))
    for person in (beto, rosa, carmen):
        alert = await person.wait_for("🚨 Robo en Barrio Estación")
        assert "Carabineros 133" in alert["text"] and "Forzaron la reja" in alert["text"]
    coordinator_copy = carmen.last()
    assert [b["text"] for b in buttons(coordinator_copy)] == ["✅ Resuelta", "🟡 Falsa alarma"]
    assert buttons(beto.last()) == []
    assert "avisé a quienes la recibieron (3)" in text_of(await carmen.tap("Resuelta"))
    for person in (ana, beto, rosa):
        await person.wait_for("ya está controlada")
    assert "ya estaba cerrada" in text_of(
        await carmen.tap_data(
            coordinator_copy["message_id"],
            buttons(coordinator_copy)[1]["callback_data"],
            forge=True,
        )
    )


async def test_alert_needs_confirmation(runtime, phone):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await ana.say("/alerta")
    await ana.tap("Incendio")
    await ana.say("Sale humo del local 3")
    await ana.tap("Seguir sin ubicación")
    before = await snapshot(runtime)
    await ana.tap("Cancelar")
    after = await snapshot(runtime)
    assert after["security_alerts"] == before["security_alerts"] == []
    assert after["deliveries"] == before["deliveries"]


async def test_a_description_that_reads_like_a_button_is_a_description(runtime, phone):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await ana.say("/alerta")
    await ana.tap("Robo")
    # The kinds were offered one step ago; here "Robo" is what happened.
    assert "ubicación" in text_of(await ana.say("Robo"))
    await ana.tap("Seguir sin ubicación")
    assert "Alerta enviada a 3 socios" in text_of(await ana.tap("Enviar alerta"))
    assert "Robo" in (await beto.wait_for("Robo"))["text"]


async def test_alerts_are_limited_per_hour(runtime, phone, clock):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    for _ in range(3):
        await ana.say("/alerta")
        await ana.tap("Otra emergencia")
        await ana.say("Corte de luz en toda la cuadra")
        await ana.tap("Seguir sin ubicación")
        await ana.tap("Enviar alerta")
    limited = text_of(await ana.say("/alerta"))
    assert "Ya enviaste 3 alertas" in limited and "133" in limited
    clock.advance(timedelta(minutes=61))
    assert "¿Qué está pasando?" in text_of(await ana.say("/alerta"))


async def test_quiet_hours_hold_announcements_until_morning(runtime, phone, clock):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/silencio")
    assert "sin horario de silencio" in text_of(await rosa.tap("Sin silencio"))
    clock.advance(timedelta(hours=11))  # 23:00 in Santiago
    await carmen.say("/anuncio")
    await carmen.say("Mañana se corta el agua de 9 a 12.")
    await carmen.tap("Enviar")
    await rosa.wait_for("se corta el agua")  # no quiet hours: now
    await wait_for_delivery(runtime, lambda d: d.status == DeliveryStatus.SENT and "agua" in d.text)
    async with runtime.sessions() as session:
        waiting = (
            await session.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.PENDING))
        ).all()
    assert len(waiting) == 2  # Ana and Beto sleep
    assert {d.not_before.astimezone(runtime.settings.zone).hour for d in waiting} == {8}
    assert not any("se corta el agua" in t for t in ana.texts())
    assert "va en 1 de 3 (✅ 1 entregados)" in text_of(await carmen.say("/anuncio"))
    await carmen.say("/cancelar")
    clock.advance(timedelta(hours=9, minutes=1))  # 08:01
    runtime.dispatcher.wake()
    await ana.wait_for("se corta el agua")
    await beto.wait_for("se corta el agua")


async def test_announcement_to_people_who_all_blocked_the_bot_still_reports(
    runtime, phone, emulator
):
    from handlers.outbox import barrio_recipients

    barrio, carmen, members = await _barrio_with_people(runtime, phone)
    async with runtime.sessions() as session, session.begin():
        from sqlalchemy import update

        from models import ChannelIdentity

        for person in members:
            await session.execute(
                update(ChannelIdentity)
                .where(ChannelIdentity.external_id == str(person.user_id))
                .values(unreachable_at=runtime.clock())
            )
        unreachable = await barrio_recipients(session, [barrio.id], exclude_member_id=None)
        assert sum(r.unreachable for r in unreachable) == 3
    await carmen.say("/anuncio")
    await carmen.say("¿Alguien me escucha?")
    await carmen.tap("Enviar")
    await runtime.dispatcher.report_unreported()
    report = await carmen.wait_for("Tu anuncio ya salió")
    assert "Sin contacto (bloquearon el bot): 3" in report["text"]
    # Writing to the bot again is proof of contact: the next announcement reaches her.
    await members[0].say("hola")
    async with runtime.sessions() as session:
        reachable = await barrio_recipients(session, [barrio.id], exclude_member_id=None)
    assert sorted(r.unreachable for r in reachable) == [False, False, True, True]


async def test_a_coordinator_who_raises_an_alert_can_close_it(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await carmen.say("/alerta")
    await carmen.tap("Accidente")
    await carmen.say("Choque en la esquina de Estado con Cuevas")
    await carmen.tap("Seguir sin ubicación")
    sent = (await carmen.tap("Enviar alerta"))[-1]
    assert [b["text"] for b in buttons(sent)] == ["✅ Resuelta", "🟡 Falsa alarma"]
    await ana.wait_for("Accidente en Barrio Estación")
    closed = text_of(await carmen.tap("Falsa alarma"))
    assert "avisé a quienes la recibieron (3)" in closed, closed
    await ana.wait_for("Falsa alarma")


async def test_anyone_asking_for_an_alert_gets_the_emergency_numbers_at_once(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Feria", "Rengo")  # asks for approval
    # Someone who can answer her request: a barrio nobody could answer takes none.
    rita = phone(6102, "Rita")
    await register(rita, barrio, business="Feria Rita")
    await make_coordinator(runtime, rita, barrio)
    lucia = phone(6100, "Lucía")
    await register(lucia, barrio, business="Bazar Lucía")  # still pending
    await wait_for_delivery(runtime, lambda d: d.status == DeliveryStatus.SENT)
    stranger = phone(6101, "Pedro")
    before = await snapshot(runtime)
    for who, why in ((lucia, "cuando aprueben tu ingreso"), (stranger, "socios inscritos")):
        [answer] = await who.say("/alerta")
        assert "Carabineros 133" in answer["text"] and "Bomberos 132" in answer["text"]
        assert "SAMU 131" in answer["text"] and "PDI 134" in answer["text"]
        assert why in answer["text"]
    after = await snapshot(runtime)
    assert after["security_alerts"] == before["security_alerts"] == []
    assert after["deliveries"] == before["deliveries"]


async def test_a_forged_button_with_an_id_out_of_range_is_stale_not_an_error(runtime, phone):
    barrio, carmen, _ = await _barrio_with_people(runtime, phone)
    sent = await carmen.say("/miembros")
    before = await snapshot(runtime)
    for data in ("anu:rcp:999999999999", "apr:ok:999999999999", "rsv:yes:999999999999"):
        answer = text_of(await carmen.tap_data(sent[-1]["message_id"], data, forge=True))
        assert "algo falló" not in answer, data
    after = await snapshot(runtime)
    # Only what was offered last may change (the menu shown after a stale button), so that
    # its numbers work typed; no flow, no row of anything else.
    assert [c[:5] for c in after.pop("conversations")] == [
        c[:5] for c in before.pop("conversations")
    ]
    assert after == before
