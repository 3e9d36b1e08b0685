"""Leaving a barrio is leaving: nothing more of it arrives, its lists forget the person, its
coordinators are told, and leaving and asking again cannot flood them with requests."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.cli import main as barrio_cli
from models import Barrio, Delivery, DeliveryStatus
from tests.support import buttons, make_barrio, make_coordinator, register, text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_funding import _publish
from tests.test_meetings import _call_meeting


async def _leave(person, barrio_name: str) -> str:
    await person.say("/baja")
    await person.tap(f"Salir de {barrio_name}")
    return text_of(await person.tap("Sí, salir"))


async def _deliveries_to(runtime, person, *, status: DeliveryStatus | None = None) -> list[str]:
    """The texts the outbox holds for one person: what reached them or still may."""
    query = select(Delivery.text).where(Delivery.recipient == str(person.user_id))
    if status is not None:
        query = query.where(Delivery.status == status)
    async with runtime.sessions() as session:
        return list((await session.scalars(query.order_by(Delivery.id))).all())


async def _seen(person, fragment: str) -> None:
    """`fragment` reached the person, before or after now (wait_for only reads what is new)."""
    if not any(fragment in text for text in person.texts()):
        await person.wait_for(fragment)


async def test_what_waits_for_the_night_to_end_never_reaches_who_left(runtime, phone, clock):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/silencio")
    await rosa.tap("Sin silencio")
    clock.advance(timedelta(hours=11))  # 23:00 in Santiago: Ana, Beto and Carmen sleep
    await carmen.say("/anuncio")
    await carmen.say("Mañana se corta el agua de 9 a 12.")
    await carmen.tap("Enviar")
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await _seen(rosa, "se corta el agua")
    await _seen(rosa, "Te invitan")
    assert len(await _deliveries_to(runtime, ana, status=DeliveryStatus.PENDING)) == 2

    assert "Saliste de Barrio Estación" in await _leave(ana, "Barrio Estación")
    assert await _deliveries_to(runtime, ana, status=DeliveryStatus.PENDING) == []

    clock.advance(timedelta(hours=9, minutes=1))  # 08:01: the night's messages go out
    runtime.dispatcher.wake()
    await _seen(beto, "se corta el agua")
    await _seen(beto, "Te invitan")
    report = await carmen.wait_for("Tu anuncio ya salió")
    # Rosa and Beto; the row withdrawn from Ana is neither sent nor failed.
    assert "Entregados: 2" in report["text"] and "No se pudo: 0" in report["text"]
    await _seen(carmen, "Ana dejó Barrio Estación.")
    # The report comes only once nothing of the announcement is left to send: Ana's copy
    # was not merely late.
    for text in ana.texts() + await _deliveries_to(runtime, ana):
        assert "se corta el agua" not in text and "Te invitan a una reunión" not in text


async def test_a_call_reminder_held_by_her_quiet_hours_never_reaches_who_left(
    runtime, phone, clock
):
    from models import ReminderKind
    from tests.test_reminders import _publish_call, _reminders, settle_reminders

    barrio, carmen, (ana, beto, _) = await _barrio_with_people(runtime, phone)
    await ana.say("/silencio")
    await ana.say("de 9 a 12")  # the reminder comes at 10:00: hers waits until noon
    await _publish_call(carmen, ana)
    week = (await _reminders(runtime, ReminderKind.FUNDING))[0]
    await settle_reminders(runtime, clock, week.due_at + timedelta(seconds=5))
    await beto.wait_for("se acerca el cierre")
    assert len(await _deliveries_to(runtime, ana, status=DeliveryStatus.PENDING)) == 1
    await _leave(ana, "Barrio Estación")
    assert await _deliveries_to(runtime, ana, status=DeliveryStatus.PENDING) == []


async def test_what_two_barrios_sent_stays_for_who_leaves_only_one(runtime, phone, clock):
    centro, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    lejano = await make_barrio(runtime, "Barrio Lejano", "Lolol", open_to_all=True)
    for person in (carmen, ana):
        await person.say(f"/start {lejano.invite_code}")
        await person.tap("Sí, pedir ingreso")
    await make_coordinator(runtime, carmen, lejano)
    clock.advance(timedelta(hours=11))  # 23:00: everything waits for the morning
    await carmen.say("/anuncio")
    await carmen.tap("Todos mis barrios")
    await carmen.say("Feria de las dos calles el domingo.")
    await carmen.tap("Enviar")
    await _publish(carmen, audience="Toda la región")
    await carmen.tap("Publicar")
    for person in (ana, beto):
        assert len(await _deliveries_to(runtime, person, status=DeliveryStatus.PENDING)) == 2

    await _leave(ana, "Barrio Estación")
    await _leave(beto, "Barrio Estación")
    # Ana is still in Barrio Lejano, which sent both too; Beto is in neither any more.
    assert len(await _deliveries_to(runtime, ana, status=DeliveryStatus.PENDING)) == 2
    assert await _deliveries_to(runtime, beto, status=DeliveryStatus.PENDING) == []
    clock.advance(timedelta(hours=9, minutes=1))
    runtime.dispatcher.wake()
    await _seen(ana, "Feria de las dos calles")
    await _seen(ana, "Nueva convocatoria")


async def test_who_left_is_not_in_attendance_nor_in_the_export(
    runtime, phone, capsys, monkeypatch, settings, tmp_path
):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    # From now on the barrio asks for approval: Lucía's request stays pending.
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(Barrio).where(Barrio.id == barrio.id).values(requires_approval=True)
        )
    lucia = phone(6009, "Lucía")
    await register(lucia, barrio, business="Bazar Lucía")
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    for person in (ana, beto):
        await person.wait_for("Te invitan")
        await person.tap("Asistiré")
    await rosa.wait_for("Te invitan")
    before = text_of(await carmen.say("/asistencia"))
    assert "Asistirán (2): Ana, Beto" in before and "Sin responder (1): Rosa" in before

    await _leave(ana, "Barrio Estación")
    await carmen.wait_for("Ana dejó Barrio Estación.")
    after = text_of(await carmen.say("/asistencia"))
    assert "Asistirán (1): Beto" in after and "Sin responder (1): Rosa" in after
    assert "Ana" not in after

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)

    async def export(*extra: str) -> dict[str, str]:
        capsys.readouterr()
        # asyncio.run inside: the command gets its own thread and loop, beside the live bot.
        await asyncio.to_thread(barrio_cli, ["export", "members", "--barrio", barrio.slug, *extra])
        rows = csv.DictReader(io.StringIO(capsys.readouterr().out))
        return {row["nombre"]: row["estado"] for row in rows}

    assert await export() == {
        "Beto": "activo",
        "Carmen": "activo",
        "Lucía": "pendiente",
        "Rosa": "activo",
    }
    everyone = await export("--all")
    assert everyone["Ana"] == "retirado" and len(everyone) == 5


async def test_coordinators_hear_who_left_and_the_leaver_does_not(runtime, phone):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await make_coordinator(runtime, rosa, barrio)
    left = await _leave(rosa, "Barrio Estación")
    # No longer a coordinator there: her menu says so at once.
    assert "Saliste de Barrio Estación" in left and "Socios y solicitudes" not in str(rosa.last())
    await carmen.wait_for("Rosa dejó Barrio Estación.")
    assert not any("dejó" in t for t in await _deliveries_to(runtime, rosa))
    assert not any("dejó" in t for t in await _deliveries_to(runtime, ana))


async def test_coordinators_hear_that_someone_erased_their_data_without_a_name(runtime, phone):
    barrio, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    await rosa.say("/baja")
    await rosa.tap("Borrar todos mis datos")
    await rosa.tap("Sí, borrar todo")
    told = await carmen.wait_for("borró sus datos")
    assert "Barrio Estación" in told["text"] and "Rosa" not in told["text"]
    # Her erasure is still whole: the notice names no one.
    from tests.test_erasure import _dump

    assert "rosa" not in await _dump(runtime)
    assert not any("borró sus datos" in t for t in await _deliveries_to(runtime, ana))


async def test_a_request_withdrawn_at_night_never_wakes_the_coordinator(runtime, phone, clock):
    barrio = await make_barrio(runtime, "Barrio Norte")
    carmen = phone(6201, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    clock.advance(timedelta(hours=11))  # 23:00: the request reaches Carmen, without sound
    beto = phone(6202, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    request = await carmen.wait_for("Nueva solicitud")
    assert request["disable_notification"] is True
    await _leave(beto, "Barrio Norte")
    # Someone who only asked did not "leave" anything: nothing more for Carmen.
    assert await _deliveries_to(runtime, carmen) == [request["text"]]


async def test_leaving_and_asking_again_cannot_flood_the_coordinators(runtime, phone, clock):
    barrio = await make_barrio(runtime, "Barrio Norte")
    carmen = phone(6301, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    beto = phone(6302, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    first_request = await carmen.wait_for("Nueva solicitud")

    for cycle in range(5):
        offered = await beto.say("/baja")
        leaving = [b for b in buttons(offered[-1]) if "Salir de" in b["text"]]
        assert len(leaving) == (1 if cycle == 0 else 0), cycle  # nothing left to leave
        if leaving:
            await beto.tap("Salir de Barrio Norte")
            await beto.tap("Sí, salir")
        else:
            await beto.tap("Nada, volver")
        answer = text_of(await beto.say(f"/start {barrio.invite_code}"))
        # The clock started Tuesday 24 November 2026 at noon in Santiago.
        assert "Saliste de Barrio Norte hace poco" in answer, answer
        assert "desde mañana miércoles 25 de noviembre a las 12:" in answer, answer

    assert await _deliveries_to(runtime, carmen) == [first_request["text"]]
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == 1
    # The request Carmen still sees was withdrawn: her tap says so and changes nothing.
    stale = await carmen.tap_data(
        first_request["message_id"], buttons(first_request)[0]["callback_data"]
    )
    assert "ya estaba resuelta (retirada)" in text_of(stale)

    clock.advance(timedelta(hours=25))
    await beto.say(f"/start {barrio.invite_code}")
    assert "pedí tu ingreso a Barrio Norte" in text_of(await beto.tap("Sí, pedir ingreso"))
    assert "ya está enviada" in text_of(await beto.say(f"/start {barrio.invite_code}"))
    await carmen.wait_for("Nueva solicitud")
    assert len(await _deliveries_to(runtime, carmen)) == 2
    await carmen.tap("Aprobar")
    await beto.wait_for("Ya eres parte de Barrio Norte")
