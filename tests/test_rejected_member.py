"""A rejected member is not stuck: she learns why, whom to talk to (a contact the coordinator
chose to share) and asks to join another barrio; the coordinator picks the reason in one tap."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import Delivery, DeliveryStatus, MembershipStatus
from tests.support import (
    Phone,
    buttons,
    make_barrio,
    make_coordinator,
    membership_of,
    register,
    snapshot,
    text_of,
    wait_for_delivery,
)
from tests.test_mydata import _downloaded
from tests.test_whatsapp import WhatsAppPhone, _register, both, option_number, twilio

__all__ = ["both", "twilio"]  # the WhatsApp fixtures, used by the last test

CONTACT = "Carmen, 9 1234 5678, de lunes a viernes"


async def _coordinated(runtime, phone, barrio, user_id: int, name: str):
    coordinator = phone(user_id, name)
    await register(coordinator, barrio, business=f"Negocio {name}")
    await make_coordinator(runtime, coordinator, barrio)
    return coordinator


async def _turned_down(coordinator, applicant, barrio, reason: str, business="Almacén Ana"):
    """`applicant` asks to join `barrio`; `coordinator` turns it down with `reason` (a button's
    label); returns the notice the applicant gets."""
    await register(applicant, barrio, business=business)
    await coordinator.wait_for(business)
    await coordinator.tap("Rechazar")
    await coordinator.tap(reason)
    return await applicant.wait_for("no aprobó tu solicitud")


async def test_talked_over_the_coordination_approves_a_request_it_had_turned_down(runtime, phone):
    centro = await make_barrio(runtime, "Barrio Centro", "Rancagua")
    carmen = await _coordinated(runtime, phone, centro, 7511, "Carmen")
    ana = phone(7512, "Ana")
    await _turned_down(carmen, ana, centro, "Faltan datos del negocio")

    listed = await carmen.say("/miembros")
    # Last of all: the numbers typed for what comes before are as they were.
    assert [b["text"] for b in buttons(listed[-1])][-1] == "❌ No aprobadas (1)"
    shown = await carmen.tap("No aprobadas (1)")
    assert "Si lo conversaron y cambia la decisión" in text_of(shown)
    assert "❌ Ana — Almacén Ana" in text_of(shown) and "Motivo: faltan datos" in text_of(shown)
    approved = text_of(await carmen.tap("Aprobar ahora"))
    assert "Aprobaste a Ana" in approved
    await ana.wait_for("Ya eres parte de Barrio Centro")
    membership = await membership_of(runtime, "Ana", centro.id)
    assert (membership.status, membership.rejection_reason) == (MembershipStatus.ACTIVE, None)
    # Tapped again: already decided, nothing changes; the list is empty now.
    again = await carmen.tap_data(
        shown[-1]["message_id"], buttons(shown[-1])[0]["callback_data"], forge=True
    )
    assert "ya estaba resuelta (aprobada)" in text_of(again)
    assert "❌ No aprobadas" not in str(await carmen.say("/miembros"))
    # With a request waiting, the button comes below it, in a message of its own.
    beto = phone(7513, "Beto")
    await register(beto, centro, business="Bazar Beto")
    await carmen.wait_for("Bazar Beto")
    await _turned_down(carmen, phone(7514, "Rosa"), centro, "Sin motivo", business="Bazar Rosa")
    waiting = await carmen.say("/miembros")
    assert "Bazar Beto" in waiting[-2]["text"]
    assert [b["text"] for b in buttons(waiting[-1])] == ["❌ No aprobadas (1)"]
    await carmen.tap("Rechazar")
    await carmen.tap("Sin motivo")
    # Only the barrio's coordination can list or approve them.
    listing = await ana.tap_data(ana.last()["message_id"], f"apr:rl:{centro.id}", forge=True)
    assert "solo para la coordinación" in text_of(listing)
    before = await snapshot(runtime)
    rejected = await membership_of(runtime, "Beto", centro.id)
    forged = await ana.tap_data(ana.last()["message_id"], f"apr:re:{rejected.id}", forge=True)
    assert "solo para la coordinación" in text_of(forged)
    assert await snapshot(runtime) == before


async def test_a_rejected_member_learns_why_whom_to_ask_and_asks_another_barrio(runtime, phone):
    centro = await make_barrio(runtime, "Barrio Centro", "Rancagua")
    norte = await make_barrio(runtime, "Barrio Norte", "Machalí")
    carmen = await _coordinated(runtime, phone, centro, 7501, "Carmen")
    diego = await _coordinated(runtime, phone, norte, 7502, "Diego")

    # Carmen chooses to share a contact with her barrio's members and applicants.
    card = await carmen.say("/barrio")
    assert "📞 Contacto para vecinos" in [b["text"] for b in buttons(card[-1])]
    assert "aún no dejas uno" in text_of(await carmen.tap("Contacto para vecinos"))
    assert CONTACT in text_of(await carmen.say(CONTACT))

    ana = phone(7503, "Ana")
    await register(ana, centro)
    await carmen.wait_for("Nueva solicitud")
    reasons = await carmen.tap("Rechazar")
    assert [b["text"] for b in buttons(reasons[-1])] == [
        "No tiene negocio en este barrio",
        "Faltan datos del negocio",
        "Ya tiene otro registro en el barrio",
        "✏️ Escribir otro motivo",
        "Sin motivo",
        "↩️ No rechazar",
    ]
    assert (await membership_of(runtime, "Ana", centro.id)).status == MembershipStatus.PENDING
    done = text_of(await carmen.tap("No tiene negocio en este barrio"))
    assert "Rechazaste la solicitud de Ana" in done
    assert "Motivo que le conté: No tiene negocio en este barrio" in done
    assert "Aún no dejas un contacto" not in done  # she has one

    notice = await ana.wait_for("no aprobó tu solicitud")
    assert "Motivo: tu negocio no está en este barrio." in notice["text"]
    assert f"📞 {CONTACT}" in notice["text"]
    assert [b["text"] for b in buttons(notice)] == ["🏘️ Pedir ingreso a otro barrio"]
    rejected = await membership_of(runtime, "Ana", centro.id)
    assert rejected.status == MembershipStatus.REJECTED
    assert rejected.rejection_reason == "no_business" and rejected.rejection_note is None

    # /barrio tells her the truth, and its button leads somewhere else than /barrio.
    standing = await ana.say("/barrio")
    said = text_of(standing)
    assert "Barrio Centro no aprobó tu solicitud" in said
    assert "tu negocio no está en este barrio" in said and CONTACT in said
    offered = buttons(standing[-1])
    assert offered[0]["text"] == "🏘️ Pedir ingreso a otro barrio"
    assert all(b["callback_data"] != "menu:barrio" for b in offered)
    for command in ("/registro", "/start"):
        again = text_of(await ana.say(command))
        assert "Ya tienes tu registro, Ana, pero aún no eres parte de un barrio" in again
        assert "no aprobó tu solicitud" in again and "Usa /perfil" not in again
    # Member-only commands say why they are closed, not "when approved".
    closed = text_of(await ana.say("/directorio pan"))
    assert "esté aprobado" not in closed
    assert "la coordinación de Barrio Centro no aprobó tu solicitud" in closed
    # Help lists what is open to her, not the commands that would refuse her.
    help_text = text_of(await ana.say("ayuda"))
    assert "/barrio — en qué va tu solicitud" in help_text and "/directorio" not in help_text
    assert help_text.rstrip().endswith("las alertas al barrio.")  # what opens later, last
    # An alert: the emergency numbers at once, then why the barrio is not told, and the way
    # back into one.
    alert = await ana.say("/alerta")
    assert "133" in text_of(alert[:1])
    assert "Avisar a todo el barrio por aquí es para socios de un barrio" in text_of(alert)
    assert "la coordinación de Barrio Centro no aprobó tu solicitud" in text_of(alert)
    assert buttons(alert[-1])[0]["text"] == "🏘️ Pedir ingreso a otro barrio"
    # The poster's link of the barrio that said no: the same truth, no new request.
    assert "Motivo: tu negocio" in text_of(await ana.say(f"/start {centro.invite_code}"))

    # The way out: the registration's barrio list, without the barrio that said no.
    picker = await ana.tap("Pedir ingreso a otro barrio")
    assert [b["text"] for b in buttons(picker[-1])] == ["Machalí · Barrio Norte"]
    # The barrio that said no, typed: it is there, and why it is not offered.
    typed = await ana.say("centro")
    assert "La coordinación de Barrio Centro no aprobó tu solicitud" in text_of(typed)
    assert "aún no participa" not in text_of(typed)
    assert [b["text"] for b in buttons(typed[-1])] == ["Machalí · Barrio Norte"]
    await ana.tap("Barrio Norte")
    assert "pedí tu ingreso a Barrio Norte" in text_of(await ana.tap("Sí, pedir ingreso"))
    await diego.wait_for("Nueva solicitud")
    assert (await membership_of(runtime, "Ana", norte.id)).status == MembershipStatus.PENDING
    # Waiting for Barrio Norte now: today's words for people waiting.
    assert "esté aprobado" in text_of(await ana.say("/directorio pan"))


async def test_the_coordinator_writes_a_reason_or_calls_the_rejection_off(runtime, phone, emulator):
    centro = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, centro, 7511, "Carmen")
    ana = phone(7512, "Ana")
    await register(ana, centro)
    await carmen.wait_for("Nueva solicitud")

    await carmen.tap("Rechazar")
    kept = await carmen.tap("No rechazar")
    assert "la solicitud sigue pendiente" in text_of(kept)
    assert [b["text"] for b in buttons(kept[-1])] == ["✅ Aprobar", "❌ Rechazar"]

    await carmen.tap("❌ Rechazar")
    assert "Escribe el motivo" in text_of(await carmen.tap("Escribir otro motivo"))
    before = await snapshot(runtime)
    assert "con letras" in text_of(await carmen.send(emulator.send_photo(carmen.user_id)))
    assert "Es muy largo" in text_of(await carmen.say("x" * 300))
    assert "con letras" in text_of(await carmen.say("🙈🙈🙈"))
    after = await snapshot(runtime)
    assert after["memberships"] == before["memberships"]
    assert after["deliveries"] == before["deliveries"]

    reason = "No encontré el local en calle Estado"
    confirm = text_of(await carmen.say(reason))
    assert f"¿Rechazo la solicitud de Ana a Barrio Centro con este motivo?\n«{reason}»" in confirm
    assert (await membership_of(runtime, "Ana", centro.id)).status == MembershipStatus.PENDING
    done = text_of(await carmen.tap("Sí, rechazar"))
    assert f"Motivo que le conté: «{reason}»" in done
    assert "Aún no dejas un contacto para vecinos" in done and "/barrio" in done
    notice = await ana.wait_for("no aprobó tu solicitud")
    assert f"Motivo, en palabras de la coordinación: «{reason}»" in notice["text"]
    assert "aún no ha dejado un contacto" in notice["text"]
    # What she typed next is not a reason: the dialogue is over.
    assert "Rechazaste" not in text_of(await carmen.say("Otra cosa"))

    membership = await membership_of(runtime, "Ana", centro.id)
    assert (membership.rejection_reason, membership.rejection_note) == ("other", reason)
    sent = await ana.say("/misdatos")
    data = json.loads(await _downloaded(emulator, sent[-1]))
    assert data["membresias"][0]["motivo_rechazo"] == reason
    # Carmen leaves a contact afterwards: Ana finds it where she was told to look.
    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    await carmen.say("+56 9 5555 1234")
    assert "📞 +56 9 5555 1234" in text_of(await ana.say("/barrio"))


async def test_two_coordinators_cannot_both_decide(runtime, phone):
    centro = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, centro, 7521, "Carmen")
    diego = await _coordinated(runtime, phone, centro, 7522, "Diego")
    ana = phone(7523, "Ana")
    await register(ana, centro)
    await carmen.wait_for("Nueva solicitud")
    await diego.wait_for("Nueva solicitud")

    await carmen.tap("Rechazar")  # and thinks about the reason…
    assert "Aprobaste a Ana" in text_of(await diego.tap("Aprobar"))
    late = text_of(await carmen.tap("Faltan datos del negocio"))
    assert "ya estaba resuelta (aprobada)" in late
    await ana.wait_for("Ya eres parte")
    membership = await membership_of(runtime, "Ana", centro.id)
    assert membership.status == MembershipStatus.ACTIVE and membership.rejection_reason is None
    async with runtime.sessions() as session:
        texts = (await session.scalars(select(Delivery.text))).all()
    assert not [t for t in texts if "no aprobó" in t]


async def test_forged_reason_buttons_change_nothing(runtime, phone):
    centro = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, centro, 7531, "Carmen")
    ana = phone(7532, "Ana")
    await register(ana, centro)
    await carmen.wait_for("Nueva solicitud")
    # The outbox records the notice as sent just after Telegram has it: before comparing.
    await wait_for_delivery(runtime, lambda d: d.status == DeliveryStatus.SENT)
    membership = await membership_of(runtime, "Ana", centro.id)
    message_id = carmen.last()["message_id"]
    before = await snapshot(runtime)
    for data in (
        f"apr:rj:{membership.id}:bogus",
        f"apr:rj:{membership.id}:other",  # a typed reason with nothing typed
        f"apr:rj:{membership.id}",
        f"apr:ok:{membership.id}:none",
    ):
        answer = text_of(await carmen.tap_data(message_id, data, forge=True))
        assert "no es válido" in answer
    assert await snapshot(runtime) == before
    # Nor can a member decide with a reason button.
    answer = text_of(
        await ana.tap_data(ana.last()["message_id"], f"apr:rj:{membership.id}:none", forge=True)
    )
    assert "solo para la coordinación" in answer
    assert (await membership_of(runtime, "Ana", centro.id)).status == MembershipStatus.PENDING


async def test_the_contact_is_the_coordinators_and_goes_when_they_stop(runtime, phone, emulator):
    barrio = await make_barrio(runtime, "Barrio Sur", open_to_all=True)
    carmen = await _coordinated(runtime, phone, barrio, 7541, "Carmen")
    beto = phone(7542, "Beto")
    await register(beto, barrio, business="Bazar Beto")

    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    before = await snapshot(runtime)
    assert "un texto corto con letras" in text_of(await carmen.say("📞📞📞"))
    assert "un texto corto con letras" in text_of(await carmen.say("12 34"))
    assert "muy largo" in text_of(await carmen.say("9" * 121))
    assert "con letras" in text_of(await carmen.send(emulator.send_sticker(carmen.user_id)))
    assert (await snapshot(runtime))["memberships"] == before["memberships"]
    assert "+56 9 8765 4321" in text_of(await carmen.say("+56 9 8765 4321"))

    card = await beto.say("/barrio")
    assert "📞 Contacto de la coordinación: +56 9 8765 4321" in text_of(card)
    assert not buttons(card[-1])  # setting one is for the coordination
    membership = await membership_of(runtime, "Carmen", barrio.id)
    answer = text_of(
        await beto.tap_data(card[-1]["message_id"], f"brr:contact:{barrio.id}", forge=True)
    )
    assert "solo para la coordinación" in answer

    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    assert "ya no muestro un contacto tuyo" in text_of(await carmen.tap("Quitar"))
    assert "Contacto de la coordinación" not in text_of(await beto.say("/barrio"))

    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    await carmen.say("Sede del barrio, Estado 123")
    assert "Sede del barrio" in text_of(await beto.say("/barrio"))
    await carmen.say("/baja")
    await carmen.tap("Salir de Barrio Sur")
    await carmen.tap("Sí, salir")
    membership = await membership_of(runtime, "Carmen", barrio.id)
    assert membership.status == MembershipStatus.LEFT and membership.contact is None
    assert "Sede del barrio" not in text_of(await beto.say("/barrio"))


async def test_someone_who_left_every_barrio_is_offered_a_way_back(runtime, phone):
    sur = await make_barrio(runtime, "Barrio Sur", open_to_all=True)
    ana = phone(7551, "Ana")
    await register(ana, sur)
    await ana.say("/baja")
    await ana.tap("Salir de Barrio Sur")
    await ana.tap("Sí, salir")

    standing = await ana.say("/barrio")
    assert "🚪 Saliste de Barrio Sur." in text_of(standing)
    assert buttons(standing[-1])[0]["text"] == "🏘️ Pedir ingreso a un barrio"
    closed = await ana.say("/reuniones")
    assert "ahora no eres parte de ninguno" in text_of(closed)
    alert = await ana.say("/alerta")
    assert "133" in text_of(alert[:1]) and "ahora no eres parte de ninguno" in text_of(alert)
    assert buttons(alert[-1])[0]["text"] == "🏘️ Pedir ingreso a un barrio"
    picker = await ana.tap("Pedir ingreso a un barrio")
    assert [b["text"] for b in buttons(picker[-1])] == ["Rancagua · Barrio Sur"]
    # The barrio she left is there, with the wait the invite link gives.
    assert "Saliste de Barrio Sur hace poco" in text_of(await ana.tap("Barrio Sur"))


async def test_on_whatsapp_the_rejected_member_answers_with_numbers(both, twilio, emulator):
    # The coordinators' phones talk to `both`: the `phone` fixture would start a second bot
    # polling the same emulator, and whichever of the two got an update handled it.
    def phone(user_id: int, name: str) -> Phone:
        return Phone(emulator, both, user_id, name)

    centro = await make_barrio(both, "Barrio Centro", "Rancagua")
    norte = await make_barrio(both, "Barrio Norte", "Machalí")
    carmen = await _coordinated(both, phone, centro, 7561, "Carmen")
    await _coordinated(both, phone, norte, 7562, "Diego")
    rosa = WhatsAppPhone(twilio, both, "+56911117561")
    await _register(rosa, centro.invite_code)
    await carmen.wait_for("Nueva solicitud")
    await carmen.tap("Rechazar")
    await carmen.tap("Ya tiene otro registro en el barrio")

    notice = await rosa.wait_for("no aprobó tu solicitud")
    assert "Motivo: ya hay otro registro tuyo en el barrio." in notice
    picker = await rosa.say(option_number([notice], "Pedir ingreso a otro barrio"))
    assert "Barrio Centro" not in "\n".join(picker)
    asked = await rosa.say(option_number(picker, "Machalí · Barrio Norte"))
    joined = await rosa.say(option_number(asked, "Sí, pedir ingreso"))
    assert "pedí tu ingreso a Barrio Norte" in "\n".join(joined)


async def test_with_no_other_barrio_the_way_out_says_so(runtime, phone):
    centro = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, centro, 7571, "Carmen")
    ana = phone(7572, "Ana")
    notice = await _turned_down(carmen, ana, centro, "Sin motivo")
    assert "Motivo" not in notice["text"]
    before = await snapshot(runtime)
    answer = text_of(await ana.tap("Pedir ingreso a otro barrio"))
    assert "No hay otro barrio en Barrio Conecta al que puedas pedir ingreso" in answer
    assert (await snapshot(runtime))["memberships"] == before["memberships"]


async def test_a_reason_typed_for_one_request_never_rejects_another(runtime, phone):
    """Found in review: after "Escribir otro motivo" for Ana, a tap on Bruno's Rechazar left
    Ana's step open, and the reason typed under Bruno's name rejected Ana."""
    centro = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, centro, 7531, "Carmen")
    ana, bruno = phone(7532, "Ana"), phone(7533, "Bruno")
    await register(ana, centro)
    await carmen.wait_for("Nueva solicitud")
    await register(bruno, centro, business="Bazar Bruno")
    await carmen.wait_for("Bruno")
    requests = [
        m
        for m in carmen.emulator.sent(carmen.user_id)
        if "Nueva solicitud" in (m.get("text") or "")
    ]
    ana_request, bruno_request = requests[-2], requests[-1]
    assert "Ana" in ana_request["text"] and "Bruno" in bruno_request["text"]

    await carmen.tap_data(ana_request["message_id"], _payload(ana_request, "Rechazar"))
    await carmen.tap("Escribir otro motivo")
    asked = text_of(
        await carmen.tap_data(bruno_request["message_id"], _payload(bruno_request, "Rechazar"))
    )
    assert "Bruno" in asked
    await carmen.tap("Escribir otro motivo")
    confirm = text_of(await carmen.say("No es del barrio"))
    assert "solicitud de Bruno" in confirm and "Ana" not in confirm
    await carmen.tap("Sí, rechazar")
    assert (await membership_of(runtime, "Ana", centro.id)).status == MembershipStatus.PENDING
    assert (await membership_of(runtime, "Bruno", centro.id)).status == MembershipStatus.REJECTED

    # A reason typed, then a search some turns later: still asks before rejecting anyone.
    await carmen.say("/miembros")
    await carmen.tap("❌ Rechazar")  # Ana's, the one request still waiting
    await carmen.tap("Escribir otro motivo")
    await carmen.say("/directorio")
    confirm = text_of(await carmen.say("panaderia"))
    assert "¿Rechazo la solicitud de Ana" in confirm
    assert "No rechacé nada" in text_of(await carmen.tap("No rechazar"))
    assert (await membership_of(runtime, "Ana", centro.id)).status == MembershipStatus.PENDING


def _payload(message, label: str) -> str:
    return next(b["callback_data"] for b in buttons(message) if label in b["text"])


async def test_a_contact_no_longer_shared_leaves_the_notices_that_quoted_it(runtime, phone):
    """Found in review: a contact quoted in a rejection notice stayed in that delivery (kept
    for weeks) after its coordinator changed it, left, and erased their data."""
    barrio = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, barrio, 7561, "Carmen")
    first, second = "Zoe al 9 8765 4321", "Zoe en la sede, Estado 123"
    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    await carmen.say(first)
    assert first in (await _turned_down(carmen, phone(7562, "Ana"), barrio, "Sin motivo"))["text"]

    async def quoted(contact: str) -> bool:
        async with runtime.sessions() as session:
            texts_kept = (await session.scalars(select(Delivery.text))).all()
        return any(contact in text for text in texts_kept)

    await carmen.say("/barrio")
    await carmen.tap("Contacto para vecinos")
    await carmen.say(second)
    assert not await quoted(first)
    await _turned_down(carmen, phone(7563, "Bruno"), barrio, "Sin motivo", business="Bazar Bruno")
    assert await quoted(second)

    await carmen.say("/baja")
    await carmen.tap("Salir de Barrio Centro")
    await carmen.tap("Sí, salir")
    assert not await quoted(second)


async def test_a_rejection_reason_does_not_outlive_the_rejection(runtime, phone):
    """Found in review: a rejected person later made coordinator kept "motivo_rechazo"."""
    barrio = await make_barrio(runtime, "Barrio Centro")
    carmen = await _coordinated(runtime, phone, barrio, 7571, "Carmen")
    ana = phone(7572, "Ana")
    await _turned_down(carmen, ana, barrio, "Faltan datos del negocio")
    assert (await membership_of(runtime, "Ana", barrio.id)).rejection_reason == "missing_data"
    await make_coordinator(runtime, ana, barrio)
    membership = await membership_of(runtime, "Ana", barrio.id)
    assert membership.status == MembershipStatus.ACTIVE
    assert (membership.rejection_reason, membership.rejection_note) == (None, None)
