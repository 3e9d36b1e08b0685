"""Registration end to end: poster link or barrio list, consent, approval, restarts."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime import Runtime
from models import Conversation, InboundUpdate, Member, Membership, MembershipStatus
from tests.support import buttons, make_barrio, make_coordinator, register, snapshot, text_of


async def test_invite_link_registration_takes_four_answers_and_waits_for_approval(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Estación", "Rancagua")
    carmen = phone(7001, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    carmen.new()

    ana = phone(7002, "Ana")
    welcome = text_of(await ana.say(f"/start {barrio.invite_code}"))
    assert "Barrio Estación" in welcome and "¿Cómo te llamas?" in welcome
    answers = 0
    for step in (ana.say("Ana María"), ana.say("Almacén La Esquina"), ana.tap("Almacén")):
        await step
        answers += 1
    consent = ana.last()
    assert "Aceptas" in consent["text"]
    # What is kept, who sees it, the alert's name, how to see or erase it; still one tap.
    for said in (
        "guardamos tu nombre, tu negocio y su rubro",
        "tu dirección y teléfono, solo si los agregas",
        "la coordinación del barrio",
        "Sercotec en sus informes",
        "en el directorio",
        "alerta de seguridad, llega a todo el barrio con tu nombre",
        "/misdatos",
        "/baja",
    ):
        assert said in consent["text"], said
    assert len(buttons(consent)) <= 3
    done = text_of(await ana.tap("Acepto"))
    answers += 1
    assert answers == 4
    assert "solicitud" in done and "Barrio Estación" in done

    request = await carmen.wait_for("Nueva solicitud")
    assert "Ana María" in request["text"] and "Almacén La Esquina" in request["text"]
    assert [b["text"] for b in buttons(request)] == ["✅ Aprobar", "❌ Rechazar"]

    confirmation = text_of(await carmen.tap("Aprobar"))
    assert "Aprobaste a Ana María" in confirmation
    await ana.wait_for("Ya eres parte de Barrio Estación")
    async with runtime.sessions() as session:
        membership = await session.scalar(
            select(Membership).join(Member).where(Member.name == "Ana María")
        )
        assert membership is not None and membership.status == MembershipStatus.ACTIVE


async def test_registration_without_link_chooses_barrio_from_list_in_five_answers(runtime, phone):
    await make_barrio(runtime, "Barrio Centro", "Rengo", open_to_all=True)
    await make_barrio(runtime, "Barrio Plaza", "Santa Cruz", open_to_all=True)
    luis = phone(7003, "Luis")
    await luis.say("/start")
    await luis.say("Luis")
    await luis.say("Ferretería El Clavo")
    choices = await luis.tap("Ferretería")
    assert [b["text"] for b in buttons(choices[-1])] == [
        "Rengo · Barrio Centro",
        "Santa Cruz · Barrio Plaza",
    ]
    filtered = await luis.say("santa cruz")
    assert [b["text"] for b in buttons(filtered[-1])] == ["Santa Cruz · Barrio Plaza"]
    await luis.tap("Barrio Plaza")
    done = text_of(await luis.tap("Acepto"))
    assert "Ya eres parte de Barrio Plaza" in done  # open barrio: no approval needed


async def test_typed_numbers_answer_buttons(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    rosa = phone(7004, "Rosa")
    await rosa.say(f"/start {barrio.invite_code}")
    await rosa.say("Rosa")
    await rosa.say("Panadería Rosita")
    await rosa.say("3")  # third rubro: Panadería
    done = text_of(await rosa.say("1"))  # first consent option: Acepto
    assert "Ya eres parte" in done
    async with runtime.sessions() as session:
        member = await session.scalar(select(Member))
        assert member is not None and member.business_category == "panaderia"


async def test_declining_consent_stores_nothing(runtime, phone):
    barrio = await make_barrio(runtime)
    before = await snapshot(runtime)
    pedro = phone(7005, "Pedro")
    await pedro.say(f"/start {barrio.invite_code}")
    await pedro.say("Pedro")
    await pedro.say("Taller Pedro")
    await pedro.tap("Taller")
    answer = text_of(await pedro.tap("No acepto"))
    assert "no guardé ninguno de tus datos" in answer
    after = await snapshot(runtime)
    assert after["members"] == before["members"] == []
    # Not even the Telegram id, nor the typed answers in the inbound log.
    assert after["conversations"] == []
    async with runtime.sessions() as session:
        payloads = (await session.scalars(select(InboundUpdate.payload))).all()
    assert payloads and all(p is None for p in payloads)


async def test_cancel_mid_registration_forgets_the_answers(runtime, phone):
    barrio = await make_barrio(runtime)
    eva = phone(7006, "Eva")
    await eva.say(f"/start {barrio.invite_code}")
    await eva.say("Eva")
    assert "lo dejamos" in text_of(await eva.say("/cancelar"))
    async with runtime.sessions() as session:
        assert await session.scalar(select(Conversation)) is None
        assert await session.scalar(select(Member)) is None


async def test_rejected_member_is_told(runtime, phone):
    barrio = await make_barrio(runtime)
    carmen = phone(7007, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    juan = phone(7008, "Juan")
    await register(juan, barrio)
    request = await carmen.wait_for("Nueva solicitud")
    assert "¿Por qué no apruebas a Juan" in text_of(await carmen.tap("Rechazar"))
    assert "Rechazaste" in text_of(await carmen.tap("Sin motivo"))
    await juan.wait_for("no aprobó tu solicitud")
    approve = buttons(request)[0]["callback_data"]
    # The keyboard is gone after the tap; a second, late tap (two phones, one coordinator):
    again = text_of(await carmen.tap_data(request["message_id"], approve, forge=True))
    assert "ya estaba resuelta (rechazada)" in again


async def test_member_follows_a_second_barrio_link(runtime, phone):
    first = await make_barrio(runtime, "Barrio Uno", open_to_all=True)
    second = await make_barrio(runtime, "Barrio Dos", "Graneros", open_to_all=True)
    ana = phone(7009, "Ana")
    await register(ana, first)
    asked = text_of(await ana.say(f"/start {second.invite_code}"))
    assert "¿Pido tu ingreso a Barrio Dos (Graneros)?" in asked and "directorio" in asked
    assert "Ya eres parte de Barrio Dos" in text_of(await ana.tap("Sí, pedir ingreso"))
    assert "Ya eres parte de Barrio Dos" in text_of(await ana.say(f"/start {second.invite_code}"))

    # Saying no asks nothing of anyone.
    third = await make_barrio(runtime, "Barrio Tres", "Rengo", open_to_all=True)
    await ana.say(f"/start {third.invite_code}")
    assert "no pedí nada" in text_of(await ana.tap("No, gracias"))
    assert "Barrio Tres" not in text_of(await ana.say("/barrio"))
    barrio_cards = text_of(await ana.say("/barrio"))
    assert "Barrio Uno" in barrio_cards and "Barrio Dos" in barrio_cards


async def test_registration_survives_a_restart(runtime, phone, settings, emulator):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(7010, "Ana")
    await ana.say(f"/start {barrio.invite_code}")
    await ana.say("Ana")
    await runtime.stop()

    second = Runtime(settings)
    await second.start()
    try:
        ana.runtime = second
        asked = text_of(await ana.say("Almacén Ana"))
        assert "rubro" in asked
        await ana.tap("Almacén")
        assert "Ya eres parte" in text_of(await ana.tap("Acepto"))
    finally:
        await second.stop()
        # the fixture stops the first runtime again; make that harmless
        runtime.stop = _noop  # type: ignore[method-assign]


async def _noop() -> None:
    return None
