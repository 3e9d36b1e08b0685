"""Words that do not mislead and menus that show what a person can do: an alert of any kind,
status lines that fit everyone, a moved meeting's old and new date, a profile whose numbers
stay put, help that fits who asks, and the coordinator's menu as buttons."""

from __future__ import annotations

import re

from sqlalchemy import select

from handlers import admin, texts
from models import AlertKind, Member, Rsvp, RsvpAnswer
from tests import test_whatsapp
from tests.support import Phone, buttons, make_barrio, make_coordinator, register, text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_meetings import _call_meeting
from tests.test_whatsapp import ROSA, WhatsAppPhone, _register, option_number, text_of_list

# The WhatsApp tests' fixtures: a Twilio emulator, and the bot on Telegram and WhatsApp.
twilio = test_whatsapp.twilio
both = test_whatsapp.both


# --- alerts ------------------------------------------------------------------------------
def test_every_alert_kind_is_named_without_reading_as_someone_elses():
    for kind in AlertKind:
        assert texts.ALERT_KINDS[kind.value].split(" ", 1)[1] != "Otro"
        for closed in texts.ALERT_CLOSED.values():
            said = closed.format(alert=texts.ALERT_NAMED[kind.value], barrio="Barrio", when="23:00")
            assert "de otro" not in said and texts.ALERT_NAMED[kind.value] in said, said


async def test_an_alert_of_another_kind_reads_as_an_emergency_in_the_broadcast_and_its_end(
    runtime, phone
):
    _, carmen, (ana, beto, _) = await _barrio_with_people(runtime, phone)
    await ana.say("/alerta")
    await ana.tap("Otra emergencia")
    await ana.say("Corte de luz en toda la cuadra")
    await ana.tap("Seguir sin ubicación")
    await ana.tap("Enviar alerta")
    alert = await beto.wait_for("Corte de luz")
    assert alert["text"].startswith("❗ Otra emergencia en Barrio Estación")
    await carmen.wait_for("Corte de luz")
    assert "avisé a quienes la recibieron" in text_of(await carmen.tap("Resuelta"))
    closed = (await beto.wait_for("ya está controlada"))["text"]
    assert "la alerta (otra emergencia) en Barrio Estación" in closed
    assert "de otro" not in closed

    await ana.say("/alerta")
    await ana.tap("Persona sospechosa")
    await ana.say("Alguien prueba las cerraduras de los locales")
    await ana.tap("Seguir sin ubicación")
    await ana.tap("Enviar alerta")
    await carmen.wait_for("cerraduras")
    await carmen.tap("Falsa alarma")
    false_alarm = (await beto.wait_for("no era real"))["text"]
    assert "la alerta por una persona sospechosa en Barrio Estación" in false_alarm


# --- status words ------------------------------------------------------------------------
async def test_the_barrio_card_says_where_one_stands_in_words_that_fit_everyone(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Estación", open_to_all=True)
    closed = await make_barrio(runtime, "Barrio Norte")
    carmen, ana, beto = phone(8101, "Carmen"), phone(8102, "Ana"), phone(8103, "Beto")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    await make_coordinator(runtime, carmen, closed)
    await register(ana, barrio)
    await register(beto, closed, business="Bazar Beto")

    member_card = text_of(await ana.say("/barrio"))
    assert "✅ Participas en este barrio" in member_card
    assert "socio activo" not in member_card.casefold()
    assert "🧭 Coordinas este barrio" in text_of(await carmen.say("/barrio"))
    assert "⏳ Tu ingreso espera aprobación" in text_of(await beto.say("/barrio"))


# --- a moved meeting ---------------------------------------------------------------------
async def test_a_moved_meeting_tells_the_old_and_the_new_date_with_the_answers_at_hand(
    runtime, phone
):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen)  # Thursday 26 November, 19:00
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")

    await carmen.say("/asistencia")
    await carmen.tap("Cambiar fecha")
    await carmen.say("27/11 18:30")
    await carmen.tap("Sí, está bien")
    moved = await ana.wait_for("Cambió la fecha")
    assert "Antes: jueves 26 de noviembre a las 19:00" in moved["text"]
    assert "Ahora: viernes 27 de noviembre a las 18:30" in moved["text"]
    assert "/reuniones" not in moved["text"]
    assert [b["text"] for b in buttons(moved)] == [
        "✅ Asistiré",
        "❌ No podré",
        "🤔 Tal vez",
        "📅 Agregar al calendario",
    ]
    assert "Anotado: No podré" in text_of(await ana.tap("No podré"))


async def test_on_whatsapp_a_moved_meeting_numbers_the_answers_and_a_number_answers(
    both, twilio, emulator
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    carmen = Phone(emulator, both, 6000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(both, carmen, barrio)
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    invitation = await rosa.wait_for("Te invitan")
    await rosa.say(option_number([invitation], "Asistiré"))

    await carmen.say("/asistencia")
    await carmen.tap("Cambiar fecha")
    await carmen.say("27/11 18:30")
    await carmen.tap("Sí, está bien")
    moved = await rosa.wait_for("Cambió la fecha")
    assert "Antes: jueves 26 de noviembre a las 19:00" in moved
    assert "Ahora: viernes 27 de noviembre a las 18:30" in moved
    assert "reuniones" not in moved  # no "usa reuniones" beside the list to answer
    assert "*2.* ❌ No podré" in moved and "Responde con el número" in moved
    assert "Anotado: No podré" in text_of_list(await rosa.say("2"))
    async with both.sessions() as session:
        assert (await session.scalars(select(Rsvp.answer))).all() == [RsvpAnswer.NO]


# --- the profile -------------------------------------------------------------------------
def _shape(message) -> list[str]:
    """The profile's options as what each one is for, whatever it sets now."""
    return [re.sub(r":[01]$", "", b["callback_data"]) for b in buttons(message)]


async def test_the_profiles_options_keep_their_numbers_and_quitar_needs_something(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    rosa = phone(8201, "Rosa")
    await register(rosa, barrio)
    first = (await rosa.say("/perfil"))[-1]
    shape = _shape(first)
    assert len(shape) == 8 and shape[4] == "prf:edit:phone"

    asked = (await rosa.tap("Teléfono"))[-1]
    assert "Escribe tu teléfono" in asked["text"] and buttons(asked) == []  # nothing to remove
    saved = (await rosa.say("9 8765 4321"))[-1]
    assert "Teléfono: +56987654321" in saved["text"] and _shape(saved) == shape

    # "5" is still the phone, which now has something to remove.
    asked = (await rosa.say("5"))[-1]
    assert "Escribe tu teléfono" in asked["text"]
    assert [b["text"] for b in buttons(asked)] == ["🗑️ Quitar"]
    cleared = (await rosa.tap("Quitar"))[-1]
    assert "Teléfono: —" in cleared["text"] and _shape(cleared) == shape

    hidden = (await rosa.tap("No aparecer en directorio"))[-1]
    assert "En el directorio: no apareces" in hidden["text"] and _shape(hidden) == shape
    listed = (await rosa.say("6"))[-1]
    assert "En el directorio: nombre, negocio y rubro" in listed["text"]

    # "Mostrar teléfono" with no phone yet asks for it, and then it shows.
    asked = text_of(await rosa.say("7"))
    assert "Aún no has puesto tu teléfono" in asked and "Escribe tu teléfono" in asked
    shown = (await rosa.say("9 8765 4321"))[-1]
    assert "En el directorio: nombre, negocio y rubro, teléfono" in shown["text"]
    assert _shape(shown) == shape and "Ocultar teléfono" in buttons(shown)[6]["text"]

    async with runtime.sessions() as session:
        member = await session.scalar(select(Member))
    assert member is not None and member.show_phone and member.phone == "+56987654321"


# --- help and menus ----------------------------------------------------------------------
async def test_help_offers_registering_only_to_whom_is_not_registered(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    stranger, ana = phone(8301, "Rosa"), phone(8302, "Ana")
    assert "/registro" in text_of(await stranger.say("/ayuda"))
    await register(ana, barrio)
    helped = text_of(await ana.say("/ayuda"))
    assert "Barrio Conecta une a los negocios" in helped and "/registro" not in helped
    assert "/perfil" in helped


async def test_a_coordinators_menu_has_what_coordinating_is_and_each_button_does_it(runtime, phone):
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    menu = (await carmen.say("/ayuda"))[-1]
    assert [b["text"] for b in buttons(menu)] == [
        "🏘️ Mi barrio",
        "🔎 Directorio",
        "👤 Mi perfil",
        "👥 Socios y solicitudes",
        "📣 Anuncio",
        "📅 Reunión",
        "🙋 Asistencia",
        "💰 Convocatoria",
        "❓ Ayuda",
    ]
    assert "Escribe el anuncio" in text_of(await carmen.tap("Anuncio"))
    await carmen.say("/cancelar")
    assert "¿Cómo se llama la reunión?" in text_of(await carmen.tap("Reunión"))
    await carmen.say("/cancelar")
    assert "No hay reuniones próximas" in text_of(await carmen.tap("Asistencia"))
    # Not a dead end: the way to call one is right there.
    assert "¿Cómo se llama la reunión?" in text_of(await carmen.tap("Convocar una reunión"))
    await carmen.say("/cancelar")
    await carmen.say("/ayuda")
    assert "¿Cómo se llama la convocatoria?" in text_of(await carmen.tap("Convocatoria"))
    await carmen.say("/cancelar")
    assert "¿Cómo se llama la reunión?" in text_of(await carmen.say("6"))  # typed, as a tap
    await carmen.say("/cancelar")

    member_menu = [b["text"] for b in buttons((await ana.say("/ayuda"))[-1])]
    assert member_menu == ["🏘️ Mi barrio", "🔎 Directorio", "👤 Mi perfil", "❓ Ayuda"]


async def test_on_whatsapp_the_coordinators_menu_is_one_numbered_list(both, twilio):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    async with both.sessions() as session, session.begin():
        await admin.make_coordinator(session, barrio, "whatsapp", ROSA)
    menu = await rosa.say("menú")
    listed = [line for line in menu[-1].splitlines() if line.startswith("*")]
    assert len(listed) == 9 and listed[4] == "*5.* 📣 Anuncio"
    assert "¿Cómo se llama la reunión?" in text_of_list(
        await rosa.say(option_number(menu, "Reunión"))
    )


async def test_a_member_waiting_for_approval_is_offered_only_what_opens_now(runtime, phone):
    """Walked as a newcomer: the menu's Directorio led to "esté aprobado ⏳" with no way on."""
    barrio = await make_barrio(runtime, "Barrio Estación", "Rancagua")
    carmen, ana = phone(9711, "Carmen"), phone(9712, "Ana")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    await register(ana, barrio)
    menu = [b["text"] for b in buttons((await ana.say("/ayuda"))[-1])]
    assert menu == ["🏘️ Mi barrio", "👤 Mi perfil", "❓ Ayuda"]
    waiting = (await ana.say("/directorio"))[-1]
    assert "esté aprobado" in waiting["text"] and buttons(waiting)
