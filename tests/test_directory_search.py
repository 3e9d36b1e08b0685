"""Plain words: a word or two typed at a menu picks the option it fits, and at the directory's
menu it is a search; `/directorio` alone shows people (all of a small barrio, pages of a big
one)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from bot.runtime import Runtime
from handlers.core import fits_label
from models import Member, Membership, MembershipStatus
from tests.support import Phone, buttons, make_barrio, make_coordinator, register, text_of
from tests.test_whatsapp import ROSA, WhatsAppPhone, _register, option_number, text_of_list

# The WhatsApp tests' fixtures: the bot on both channels, the Twilio emulator.
from tests.test_whatsapp import both as both
from tests.test_whatsapp import twilio as twilio


async def _noop() -> None:
    return None


async def test_words_typed_at_the_directory_are_a_search_and_a_small_one_is_shown(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8101, "Ana")
    await register(ana, barrio)
    rosa = phone(8102, "Rosa")
    await register(rosa, barrio, business="Panadería La Espiga", category="Panadería")
    beto = phone(8103, "Beto")
    await register(beto, barrio, business="Ferretería Don Beto", category="Ferretería")
    oscar = phone(8104, "Oscar")
    await register(oscar, barrio, listed=False, business="Panadería Oculta", category="Panadería")

    [everyone] = await ana.say("/directorio")
    assert "Negocios del directorio (2)" in everyone["text"]
    assert "Panadería La Espiga — Rosa" in everyone["text"]
    assert "Ferretería Don Beto — Beto" in everyone["text"]
    assert "Oculta" not in everyone["text"]
    # Buttons for the rubros there are, to narrow down.
    assert [b["text"] for b in buttons(everyone)] == [
        "🥖 Panadería y pastelería",
        "🔨 Ferretería y construcción",
    ]

    for typed in ("ferreteria", "FERRE", "don beto"):
        found = text_of(await ana.say(typed))
        assert "No te entendí" not in found, typed
        assert "Ferretería Don Beto" in found and "La Espiga" not in found, typed
    by_person = text_of(await ana.say("rosa"))
    assert "Panadería La Espiga" in by_person and "Don Beto" not in by_person
    assert "Oculta" not in text_of(await ana.say("panaderia"))

    # Said as people ask: the words around what they look for are not searched for.
    for typed in ("quiero pan amasado", "¿Dónde hay una ferretería?", "busco pan"):
        found = text_of(await ana.say(f"/directorio {typed}"))
        assert "No encontré" not in found, typed
    assert "Panadería La Espiga" in text_of(await ana.say("/directorio quiero pan amasado"))
    assert "Don Beto" in text_of(await ana.say("/directorio ¿dónde hay una ferretería?"))

    [none] = await ana.say("xilófono")
    assert "No encontré negocios con «xilófono»" in none["text"]
    # The rubros someone has, to pick from instead: one with nobody would be a dead end.
    assert [b["text"] for b in buttons(none)] == [
        "🥖 Panadería y pastelería",
        "🔨 Ferretería y construcción",
    ]
    assert "Ferretería Don Beto" in text_of(await ana.tap("Ferretería"))
    # A rubro button from an older message, whose people have gone since: said so plainly.
    gone = text_of(await ana.tap_data(none["message_id"], "dir:cat:ropa", forge=True))
    assert gone == "Ahora no hay negocios de «👕 Ropa y calzado» en el directorio."
    # A command's name is still the command, at the directory's menu too.
    assert "No hay reuniones próximas" in text_of(await ana.say("reuniones"))
    # And thanks are thanks, not a search (walked as a newcomer: "No encontré «gracias»").
    await ana.say("/directorio")
    thanked = text_of(await ana.say("¡Gracias!"))
    assert "De nada" in thanked and "No encontré" not in thanked


async def test_a_lone_member_is_told_the_directory_is_empty(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8111, "Ana")
    await register(ana, barrio)
    assert "Todavía no hay negocios en el directorio" in text_of(await ana.say("/directorio"))


async def _add_listed(runtime, barrio, count: int) -> None:
    async with runtime.sessions() as session, session.begin():
        for i in range(count):
            session.add(
                Member(
                    name=f"Socia {i:02}",
                    business_name=f"Negocio {i:02}",
                    business_category="otro" if i % 2 else "almacen",
                    phone="+56911111111",
                    show_phone=i == 0,
                    show_in_directory=True,
                    consent_at=runtime.clock(),
                    memberships=[Membership(barrio_id=barrio.id, status=MembershipStatus.ACTIVE)],
                )
            )
        session.add(
            Member(
                name="Socia Oculta",
                business_name="Negocio Oculto",
                business_category="otro",
                show_in_directory=False,
                consent_at=runtime.clock(),
                memberships=[Membership(barrio_id=barrio.id, status=MembershipStatus.ACTIVE)],
            )
        )


async def test_a_big_directory_pages_through_everyone_across_a_restart(runtime, phone, settings):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8121, "Ana")
    await register(ana, barrio)
    await _add_listed(runtime, barrio, 23)

    [menu] = await ana.say("/directorio")
    assert "En el directorio hay 23 negocios" in menu["text"]
    assert "Negocio 00" not in menu["text"]
    labels = [b["text"] for b in buttons(menu)]
    # A button for each rubro someone has, and everyone.
    assert labels == ["🛒 Almacén y abarrotes", "🏪 Otro rubro", "👥 Ver todos (23)"]

    first = text_of(await ana.tap("Ver todos"))
    assert "del 1 al 10 de 23" in first
    assert first.count("• Negocio") == 10 and "Negocio 09" in first and "Negocio 10" not in first
    assert first.count("📞 +56911111111") == 1  # only the one who chose to show it
    [second] = await ana.tap("Ver más")
    assert "del 11 al 20 de 23" in second["text"] and "Negocio 10" in second["text"]
    await runtime.stop()

    restarted = Runtime(settings, clock=runtime.clock)
    await restarted.start()
    try:
        ana.runtime = restarted
        [third] = await ana.tap("Ver más")
        assert "del 21 al 23 de 23" in third["text"]
        assert "Negocio 22" in third["text"] and "Oculto" not in third["text"]
        assert buttons(third) == []  # the last page

        await ana.say("/directorio")
        [again] = await ana.tap("Ver todos")
        # Most leave: this first page's "Ver más" now leads nowhere, and says so.
        async with restarted.sessions() as session, session.begin():
            await session.execute(delete(Member).where(Member.business_name >= "Negocio 05"))
        stale = text_of(await ana.tap("Ver más"))
        assert "Esa página ya no existe" in stale
        assert "Negocios del directorio (5)" in stale and "Negocio 04" in stale
        for forged_page in (
            "x",
            "0",
            "00",
            "-1",
        ):  # page 0 was a negative OFFSET: PostgreSQL refused
            assert "Ese botón no es válido" in text_of(
                await ana.tap_data(again["message_id"], f"dir:all:{forged_page}", forge=True)
            )
        forged = text_of(await ana.tap_data(again["message_id"], "dir:all:2147483647", forge=True))
        assert "Esa página ya no existe" in forged
    finally:
        await restarted.stop()
        runtime.stop = _noop  # type: ignore[method-assign]


async def test_plain_words_pick_the_option_they_fit(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8131, "Ana")
    await ana.say(f"/start {barrio.invite_code}")
    await ana.say("Ana")
    await ana.say("Pan de Ana")
    assert "Elige una de las opciones" in text_of(await ana.say("pa"))  # too short to tell
    consent = text_of(await ana.say("panaderias"))
    assert "¿Aceptas?" in consent
    [which] = await ana.say("acep")  # fits all three consent options
    assert which["text"] == "¿Cuál de estas?"
    assert [b["text"] for b in buttons(which)] == [
        "✅ Acepto",
        "Acepto, sin directorio",
        "❌ No acepto",
    ]
    assert "Ya eres parte" in text_of(await ana.say("1"))

    await ana.say("/perfil")
    await ana.tap("Rubro")
    await ana.say("ferre")
    async with runtime.sessions() as session:
        category = await session.scalar(select(Member.business_category))
    assert category == "ferreteria"
    await ana.say("/ayuda")  # offers the main menu
    assert "👤 Tus datos" in text_of(await ana.say("perfi"))


async def test_a_step_that_reads_text_keeps_a_word_that_starts_an_option(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    carmen = phone(8141, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(runtime, carmen, barrio)
    await carmen.say("/reunion")
    await carmen.say("Reunión mensual")
    await carmen.say("jueves 19:00")
    await carmen.tap("Sí, está bien")
    await carmen.say("Sede vecinal")
    # The agenda step offers «Sin temario»; "Temas" is an agenda, not that button.
    assert "📝 Temas" in text_of(await carmen.say("Temas"))


async def test_whatsapp_reads_plain_words_at_the_directory(both, twilio, emulator):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    beto = Phone(emulator, both, 8151, "Beto")
    await register(beto, barrio, business="Ferretería Don Beto", category="Ferretería")
    everyone = text_of_list(await rosa.say("directorio"))
    assert "Ferretería Don Beto" in everyone
    found = await rosa.say("ferre")
    assert "Ferretería Don Beto" in text_of_list(found)
    none = await rosa.say("xilofono")
    assert "No encontré" in text_of_list(none)
    assert "Ferretería Don Beto" in text_of_list(
        await rosa.say(option_number(none, "Ferretería y construcción"))
    )
    assert "Ferretería Don Beto" in text_of_list(await rosa.say("DIRECTORIO don beto"))


@pytest.mark.parametrize(
    ("typed", "fits"),
    [
        ("panaderia", True),
        ("Panaderías", True),
        ("pan", True),
        ("PASTELERIA!", True),
        ("panadería y pastelería", True),
        ("🥖 pan", True),
        ("pa", False),  # too short to mean one
        ("y", False),
        ("", False),
        ("🥖", False),
        ("aderia", False),  # a word's start, not its middle
        ("pan integral", False),  # every word must fit
    ],
)
def test_fits_label(typed, fits):
    assert fits_label(typed, "🥖 Panadería y pastelería") is fits


def test_fits_label_plurals_and_emoji_labels():
    assert fits_label("almacenes", "🛒 Almacén y abarrotes")
    assert fits_label("restaurant", "🍽️ Restaurante y comida")
    assert fits_label("sin ubicacion", "Seguir sin ubicación")
    assert not fits_label("mis", "👤 Mi perfil")
    assert fits_label("sospechoso", "👀 Persona sospechosa")
    assert fits_label("sospechosos", "👀 Persona sospechosa")
