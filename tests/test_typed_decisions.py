"""A word typed outside a dialogue may pick where to go (the menu, a rubro) or a meeting answer,
never a decision on somebody: found in review, "quitar" at "¿Quitar a Beto?" removed him, and
"sin" at the reasons rejected a request."""

from __future__ import annotations

from models import MembershipStatus
from tests.support import make_barrio, make_coordinator, membership_of, register, text_of
from tests.test_meetings import _call_meeting


async def test_words_typed_at_a_removal_or_a_rejection_decide_nothing(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Estación")
    carmen, beto, ana = phone(9801, "Carmen"), phone(9802, "Beto"), phone(9803, "Ana")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Nueva solicitud")
    await carmen.tap("Aprobar")

    await carmen.say("/miembros")
    await carmen.tap("Quitar a un socio")
    await carmen.tap("Beto")
    for typed in ("quitar", "Sí, quit", "si quitar"):
        assert "ya no es parte" not in text_of(await carmen.say(typed))
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
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    carmen, ana = phone(9811, "Carmen"), phone(9812, "Ana")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    await register(ana, barrio, business="Almacén Ana")
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.say("/reuniones")
    assert "Anotado: Asistiré" in text_of(await ana.say("asistire"))
