"""One person on Telegram and WhatsApp: a code shown on one channel, typed on the other, one
registration, every broadcast once, on the channel they chose; erasure erases both."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from handlers.outbox import Recipient, reach_each_once
from models import ChannelIdentity, Conversation, Delivery, LinkCode, Member
from tests import test_whatsapp
from tests.support import Phone, make_barrio, register
from tests.test_reminders import outbox_idle
from tests.test_whatsapp import WhatsAppPhone, _announce, _register, option_number, text_of_list

# The WhatsApp tests' fixtures: a Twilio emulator, and the bot on Telegram and WhatsApp.
twilio = test_whatsapp.twilio
both = test_whatsapp.both

ANA_WHATSAPP = "+56922220002"


def _code(texts: list[str]) -> str:
    found = re.search(r"VINCULAR (\d{6})", "\n".join(texts))
    assert found, texts
    return found[1]


async def _ana_on_both(both, emulator, twilio, barrio) -> tuple[Phone, WhatsAppPhone]:
    ana = Phone(emulator, both, 5002, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    shown = await ana.say("/vincular")
    code = _code([m["text"] for m in shown])
    assert "15 minutos" in shown[0]["text"] and "WhatsApp" in shown[0]["text"]
    wa = WhatsAppPhone(twilio, both, ANA_WHATSAPP)
    linked = text_of_list(await wa.say(f"vincular {code[:3]} {code[3:]}"))
    assert "quedó unido a tu registro" in linked and "Recibir avisos por WhatsApp" in linked
    # The channel she already had hears of it, in case it was not her.
    await ana.wait_for("quedó unido también a WhatsApp")
    return ana, wa


async def _copies(both, fragment: str) -> list[tuple[str, str]]:
    async with both.sessions() as session:
        rows = await session.execute(
            select(Delivery.channel, Delivery.recipient).where(Delivery.text.contains(fragment))
        )
    return sorted(tuple(row) for row in rows)


async def test_a_linked_member_gets_each_broadcast_once_where_she_chose(
    both, emulator, twilio, clock
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    ana, wa = await _ana_on_both(both, emulator, twilio, barrio)
    async with both.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1
        assert await session.scalar(select(func.count()).select_from(LinkCode)) == 0

    # WhatsApp is now the same registration: her profile, her barrio.
    assert "Almacén Ana" in text_of_list(await wa.say("PERFIL"))

    # Until she chooses, broadcasts go where she registered.
    await _announce(both, emulator, barrio, "Feria el sábado en la plaza.")
    await outbox_idle(both, clock)
    assert await _copies(both, "Feria el sábado") == [("telegram", "5002")]
    await ana.wait_for("Feria el sábado")

    chosen = await wa.say("vincular")
    saved = text_of_list(await wa.say(option_number(chosen, "Recibir avisos por WhatsApp")))
    assert "te llegarán por WhatsApp" in saved
    await _announce(both, emulator, barrio, "Corte de luz el martes.")
    await outbox_idle(both, clock)
    assert await _copies(both, "Corte de luz") == [("whatsapp", ANA_WHATSAPP)]
    await wa.wait_for("Corte de luz el martes.")
    assert not any("Corte de luz" in text for text in ana.texts())


async def test_erasing_a_linked_member_erases_both_numbers(both, emulator, twilio, caplog):
    from tests.test_erasure import _dump

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    ana, wa = await _ana_on_both(both, emulator, twilio, barrio)
    choices = await wa.say("BAJA")
    confirm = await wa.say(option_number(choices, "Borrar todos mis datos"))
    await wa.say(option_number(confirm, "Sí, borrar todo"))
    async with both.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChannelIdentity)) == 0
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 0
    dump = await _dump(both)
    for trace in (ANA_WHATSAPP, ANA_WHATSAPP.lstrip("+"), "Almacén Ana", '"5002"'):
        assert trace.casefold() not in dump, trace
    assert ANA_WHATSAPP not in caplog.text


async def test_unlinking_the_other_channel_stops_what_goes_there(both, emulator, twilio, clock):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    ana, wa = await _ana_on_both(both, emulator, twilio, barrio)
    await wa.say(option_number(await wa.say("vincular"), "Recibir avisos por WhatsApp"))
    status = await ana.say("/vincular")
    assert "Telegram y WhatsApp" in status[0]["text"]
    await ana.tap("Desvincular WhatsApp")
    await ana.tap("Sí, desvincular")
    assert "ya no está unido" in ana.texts()[-1]
    async with both.sessions() as session:
        channels = (await session.scalars(select(ChannelIdentity.channel))).all()
        left = await session.scalar(
            select(Conversation).where(Conversation.external_id == ANA_WHATSAPP)
        )
        member = await session.scalar(select(Member))
    assert channels == ["telegram"] and left is None and member.broadcast_channel is None
    await _announce(both, emulator, barrio, "Operativo de limpieza.")
    await outbox_idle(both, clock)
    assert await _copies(both, "Operativo de limpieza") == [("telegram", "5002")]
    # The number is a stranger again: writing gets the welcome, not Ana's menu.
    assert "Registrarme" in text_of_list(await wa.say("hola"))


async def test_a_code_that_is_wrong_old_or_for_a_number_with_its_own_registration_links_nothing(
    both, emulator, twilio, clock
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    ana = Phone(emulator, both, 5002, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    code = _code([m["text"] for m in await ana.say("/vincular")])
    stranger = WhatsAppPhone(twilio, both, ANA_WHATSAPP)

    # Typed at the name step of a registration, a code is a link attempt, not a name.
    assert "Escribe VINCULAR" in text_of_list(await stranger.say("registro"))
    wrong = "000000" if code != "000000" else "111111"
    assert "no sirve o ya venció" in text_of_list(await stranger.say(f"VINCULAR {wrong}"))
    # Asked for without a code, it is asked for; letters are not a code.
    assert "código de 6 números" in text_of_list(await stranger.say("vincular"))
    assert "6 números" in text_of_list(await stranger.say("el de ayer"))
    # Too many wrong codes, and even the right one waits.
    for _ in range(4):
        await stranger.say(f"VINCULAR {wrong}")
    assert "Probaste muchos códigos" in text_of_list(await stranger.say(f"VINCULAR {code}"))
    clock.advance(timedelta(minutes=16))
    # By then the code itself is too old.
    assert "no sirve o ya venció" in text_of_list(await stranger.say(f"VINCULAR {code}"))

    # A number registered on its own is not merged into someone else's profile.
    rosa = WhatsAppPhone(twilio, both, "+56911110001")
    await _register(rosa, barrio.invite_code)
    code = _code([m["text"] for m in await ana.say("/vincular")])
    assert "ya tiene su propio registro" in text_of_list(await rosa.say(f"VINCULAR {code}"))
    async with both.sessions() as session:
        rows = await session.execute(select(ChannelIdentity.external_id, Member.name).join(Member))
        owners = {address: name for address, name in rows}
    assert owners == {"5002": "Ana", "+56911110001": "Rosa Díaz"}


async def test_someone_on_telegram_who_opens_the_whatsapp_poster_links_instead_of_registering(
    both, emulator, twilio
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    ana = Phone(emulator, both, 5002, "Ana")
    await register(ana, barrio, business="Almacén Ana")
    wa = WhatsAppPhone(twilio, both, ANA_WHATSAPP)
    intro = text_of_list(
        await wa.say(f"Hola, quiero unirme a mi barrio con el código {barrio.invite_code}")
    )
    assert "¿Ya te registraste por Telegram o WhatsApp? Escribe VINCULAR" in intro
    # At the name step "vincular" is a way out, not a name; the code then comes alone.
    assert "código de 6 números" in text_of_list(await wa.say("Vincular"))
    code = _code([m["text"] for m in await ana.say("vincular")])
    assert "quedó unido" in text_of_list(await wa.say(code))
    async with both.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1
        conversation = await session.scalar(
            select(Conversation).where(Conversation.external_id == ANA_WHATSAPP)
        )
    assert conversation.flow is None


async def test_linking_in_a_deployment_of_one_channel_says_there_is_nothing_to_link(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(5002, "Ana")
    await register(ana, barrio)
    assert "solo por este canal" in (await ana.say("/vincular"))[0]["text"]
    help_text = (await ana.say("/ayuda"))[0]["text"]
    assert "/vincular" not in help_text


def test_each_person_is_reached_once_on_the_channel_chosen_and_reachable():
    def at(member, channel, unreachable=False):
        return Recipient(member, channel, f"{channel}-{member}", None, None, unreachable)

    chosen = reach_each_once(
        [
            (at(1, "telegram"), None),
            (at(1, "whatsapp"), None),  # no choice: the first (registered) one
            (at(2, "telegram"), "whatsapp"),
            (at(2, "whatsapp"), "whatsapp"),  # chose WhatsApp
            (at(3, "telegram", unreachable=True), "telegram"),
            (at(3, "whatsapp"), "telegram"),  # chose Telegram, but blocked the bot there
            (at(4, "whatsapp", unreachable=True), None),  # unreachable everywhere: counted
            (Recipient(None, "telegram", "77", None, None, False), None),
        ]
    )
    assert [(r.member_id, r.channel) for r in chosen] == [
        (1, "telegram"),
        (2, "whatsapp"),
        (3, "whatsapp"),
        (4, "whatsapp"),
        (None, "telegram"),
    ]
