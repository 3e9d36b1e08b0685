"""A word typed outside a dialogue may pick where to go (the menu, a rubro) or a meeting answer,
never a decision on somebody: found in review, "quitar" at "¿Quitar a Beto?" removed him, and
"sin" at the reasons rejected a request."""

from __future__ import annotations

import re
from datetime import timedelta

from models import MembershipStatus
from tests.support import (
    make_barrio,
    make_coordinator,
    membership_of,
    register,
    snapshot,
    text_of,
)
from tests.test_meetings import _call_meeting


async def _coordinated_barrio(runtime, phone, carmen_id: int, **barrio):
    """Barrio Estación, and Carmen coordinating it."""
    made = await make_barrio(runtime, "Barrio Estación", **barrio)
    carmen = phone(carmen_id, "Carmen")
    await register(carmen, made, business="Librería Carmen")
    await make_coordinator(runtime, carmen, made)
    return made, carmen


async def test_words_typed_at_a_removal_or_a_rejection_decide_nothing(runtime, phone):
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9801)
    beto, ana = phone(9802, "Beto"), phone(9803, "Ana")
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Nueva solicitud")
    await carmen.tap("Aprobar")

    # Parts of the label, or a yes, decide nothing, each typed right at the question; the
    # whole of it ("sí, quitar"), its tap or its number are the decision.
    for typed in ("quitar", "Sí, quit", "si", "ok"):
        await carmen.say("/miembros")
        await carmen.tap("Quitar a un socio")
        await carmen.tap("Beto")
        assert "ya no es parte" not in text_of(await carmen.say(typed)), typed
    assert (await membership_of(runtime, "Beto", barrio.id)).status == MembershipStatus.ACTIVE

    await register(ana, barrio, business="Almacén Ana")
    await carmen.wait_for("Ana")
    await carmen.tap("Rechazar")
    for typed in ("sin", "sin motiv", "falta", "faltan datos"):
        assert "Rechazaste" not in text_of(await carmen.say(typed))
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.PENDING
    # The number of an option is a deliberate choice, as a tap is.
    await carmen.say("/miembros")
    await carmen.tap("❌ Rechazar")
    assert "Rechazaste la solicitud de Ana" in text_of(await carmen.say("2"))
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.REJECTED


async def test_outside_a_dialogue_a_word_still_answers_a_meeting(runtime, phone):
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9811, open_to_all=True)
    ana = phone(9812, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.say("/reuniones")
    assert "Anotado: Asistiré" in text_of(await ana.say("asistire"))


async def test_a_label_on_several_messages_is_asked_by_its_number_never_guessed(runtime, phone):
    """Found walking the demo: "cambiar fecha" typed under five meetings moved the first one,
    and told its guests; "asistire" answered the first of five."""
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9821, open_to_all=True)
    ana = phone(9822, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    for when in ("jueves 19:00", "viernes 19:00"):
        await _call_meeting(carmen, when=when)
        await carmen.tap("Enviar invitación")

    await carmen.say("/asistencia")
    before = await snapshot(runtime)
    asked = text_of(await carmen.say("cambiar fecha"))
    assert "«🕑 Cambiar fecha» está en varios mensajes de arriba" in asked
    numbers = re.findall(r"\d+", asked.rpartition(":")[2])
    assert len(numbers) == 2
    assert await snapshot(runtime) == before
    # Its number is a choice, and the question names the meeting it picked.
    assert "nueva fecha de «Reunión mensual de socios» (viernes 27" in text_of(
        await carmen.say(numbers[1])
    )
    await carmen.say("cancelar")

    await ana.say("/reuniones")
    asked = text_of(await ana.say("asistire"))
    assert "«✅ Asistiré» está en varios mensajes de arriba" in asked
    assert (await snapshot(runtime))["rsvps"] == []


async def test_si_and_no_answer_what_was_just_asked_never_a_decision_nor_an_old_question(
    runtime, phone, clock
):
    """ "sí" sends what the person just wrote; it never removes, erases, consents or
    approves (found in review: "ok" typed to a notice removed a member whose removal had
    been asked and left unanswered)."""
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9831)
    ana, beto = phone(9832, "Ana"), phone(9833, "Beto")

    # Consent: "no" declines; "ok" is no consent (two options accept, and it is theirs to say).
    await beto.say(f"/start {barrio.invite_code}")
    await beto.say("Beto")
    await beto.say("Bazar Beto")
    await beto.tap("Almacén")
    assert "no guardé ninguno de tus datos" in text_of(await beto.say("no"))
    await ana.say(f"/start {barrio.invite_code}")
    await ana.say("Ana")
    await ana.say("Almacén Ana")
    await ana.tap("Almacén")
    before = await snapshot(runtime)
    await ana.say("ok")
    assert (await snapshot(runtime))["members"] == before["members"]  # nobody registered
    await ana.tap("Acepto")
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.PENDING

    # The join request's "✅ Aprobar" is a decision on Ana: an "ok" only acknowledges it.
    await carmen.wait_for("Nueva solicitud")
    await carmen.say("ok")
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.PENDING
    await carmen.tap("Aprobar")

    # An alert: "si" at "¿La envío?" sends it.
    await ana.say("/alerta")
    await ana.tap("Robo")
    await ana.say("Forzaron la reja del local 12, calle Estado")
    await ana.tap("Seguir sin ubicación")
    assert "Alerta enviada" in text_of(await ana.say("si"))
    # One left unanswered is not what a "sí" typed later answers.
    await ana.say("/alerta")
    await ana.tap("Incendio")
    await ana.say("Sale humo del local 3, calle Estado")
    await ana.tap("Seguir sin ubicación")
    clock.advance(timedelta(minutes=11))
    before = await snapshot(runtime)
    assert "Alerta enviada" not in text_of(await ana.say("ok"))
    assert (await snapshot(runtime))["security_alerts"] == before["security_alerts"]
    await ana.say("cancelar")

    # Leaving, erasing, removing: only the whole label, its tap or its number.
    await ana.say("/baja")
    await ana.tap("Salir de Barrio Estación")
    assert "Saliste" not in text_of(await ana.say("sí"))
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.ACTIVE
    await ana.say("cancelar")
    await carmen.say("/miembros")
    await carmen.tap("Quitar a un socio")
    await carmen.tap("Ana")
    for typed in ("si", "ok", "dale"):
        assert "ya no es parte" not in text_of(await carmen.say(typed))
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.ACTIVE


async def test_two_notices_with_the_same_label_are_asked_not_guessed(runtime, phone):
    """Found in review: with join requests from Beto and then Ana, "aprobar" approved Ana."""
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9861)
    beto, ana = phone(9862, "Beto"), phone(9863, "Ana")
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Beto")
    await register(ana, barrio, business="Almacén Ana")
    await carmen.wait_for("Ana")
    asked = text_of(await carmen.say("aprobar"))
    assert "«✅ Aprobar» está en varios avisos de arriba" in asked and "/miembros" in asked
    for name in ("Beto", "Ana"):
        membership = await membership_of(runtime, name, barrio.id)
        assert membership.status == MembershipStatus.PENDING, name


async def test_a_notice_after_a_menu_that_reads_words_is_still_answered_by_its_label(
    runtime, phone
):
    """Found in review: after /silencio, "rechazar" under a join request that came later got
    "No entendí el horario"."""
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9871)
    ana = phone(9872, "Ana")
    await carmen.say("/silencio")
    await register(ana, barrio, business="Almacén Ana")
    await carmen.wait_for("Nueva solicitud")
    answer = text_of(await carmen.say("rechazar"))
    assert "No entendí el horario" not in answer and "Sin motivo" in str(carmen.last())


async def test_labels_typed_with_their_emoji_and_punctuation_left_out_are_the_label(runtime, phone):
    """ "✏️ Teléfono" carries an invisible variation selector, "✅ Sí, está bien" a comma:
    neither is typed, and both missed before."""
    _, carmen = await _coordinated_barrio(runtime, phone, 9841, open_to_all=True)
    await carmen.say("/perfil")
    assert "teléfono" in text_of(await carmen.say("telefono")).casefold()
    await carmen.say("cancelar")
    await carmen.say("/reunion")
    await carmen.say("Reunión mensual de socios")
    await carmen.say("jueves 19:00")
    assert "¿Dónde es?" in text_of(await carmen.say("si esta bien"))


async def test_a_label_of_a_notice_typed_whole_is_its_tap(runtime, phone):
    """The join request reaches Carmen as a notice: "rechazar" typed got "No te entendí",
    where its number and "1" worked."""
    barrio, carmen = await _coordinated_barrio(runtime, phone, 9851)
    ana = phone(9852, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    await carmen.wait_for("Nueva solicitud")
    reasons = text_of(await carmen.say("rechazar"))
    assert "No te entendí" not in reasons and "Sin motivo" in str(carmen.last())
    # Still a decision taken whole: the reasons are offered, nothing is decided yet.
    assert (await membership_of(runtime, "Ana", barrio.id)).status == MembershipStatus.PENDING
