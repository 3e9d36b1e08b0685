"""WhatsApp journeys end to end, through the real twilio client and the Twilio emulator: a
coordinator's whole day typed on WhatsApp, every keyword without its slash, bad inputs answered
as on Telegram and changing nothing, and the outbox's retry rules against Twilio's faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot import whatsapp
from bot.emulator.telegram import TelegramEmulator
from bot.emulator.twilio import TwilioEmulator
from bot.runtime import Runtime
from handlers import admin, texts
from handlers.core import Option
from models import Barrio, ChannelIdentity, Delivery, DeliveryStatus
from tests import test_whatsapp
from tests.support import (
    FINAL,
    WAIT_S,
    Phone,
    ShiftedClock,
    buttons,
    make_barrio,
    snapshot,
    wait_for_delivery,
)
from tests.test_reminders import outbox_idle
from tests.test_whatsapp import (
    ROSA,
    WhatsAppPhone,
    _register,
    option_number,
    text_of_list,
)
from tests.test_whatsapp_receipts import _report

# The WhatsApp end-to-end fixtures: the Twilio emulator, and the bot on both channels.
twilio = test_whatsapp.twilio
both = test_whatsapp.both
# Carmen's announcement from Telegram (she registers and coordinates the first time), typed
# here: test_whatsapp leaves its helpers unannotated.
announce: Callable[[Runtime, TelegramEmulator, Barrio, str], Awaitable[None]] = (
    test_whatsapp._announce
)

LUIS = "+56911110002"
BARRIO = "Barrio Estación"


def on_whatsapp(text: str) -> str:
    """A text of handlers/texts.py as WhatsApp shows it: commands without their slash, the
    wording for typed options."""
    return "\n".join(whatsapp.render(text, []))


def as_whatsapp(messages: list[dict[str, Any]]) -> list[str]:
    """What the bot sent on Telegram, as the same answer reads on WhatsApp: each message
    rendered with its buttons as a numbered list, numbered on across the messages of a turn."""
    bodies: list[str] = []
    first = 1
    for message in messages:
        options = [Option(b["text"], b["callback_data"]) for b in buttons(message)]
        bodies += whatsapp.render(message.get("text") or "", options, first)
        first += len(options)
    return bodies


async def _join(phone: WhatsAppPhone, code: str, name: str, business: str, rubro: str) -> str:
    """Joins from the poster's link by typing only; returns the last answer."""
    await phone.say(whatsapp.JOIN_TEXT.format(code=code))
    await phone.say(name)
    rubros = await phone.say(business)
    consent = await phone.say(option_number(rubros, rubro))
    return text_of_list(await phone.say(option_number(consent, "Acepto")))


async def _rosa_coordinates(both: Runtime, twilio: TwilioEmulator, *, open_to_all: bool) -> Barrio:
    """Barrio Estación with Rosa, on WhatsApp, as its coordinator."""
    barrio = await make_barrio(both, BARRIO, "Rancagua", open_to_all=True)
    await _register(WhatsAppPhone(twilio, both, ROSA), barrio.invite_code)
    async with both.sessions() as session, session.begin():
        if not open_to_all:
            await session.execute(
                update(Barrio).where(Barrio.id == barrio.id).values(requires_approval=True)
            )
        await admin.make_coordinator(session, barrio, "whatsapp", ROSA)
    return barrio


# --- 1. a coordinator's day on WhatsApp -------------------------------------------------------


async def test_a_whatsapp_coordinator_approves_calls_a_meeting_publishes_a_call_and_lists(
    both: Runtime, twilio: TwilioEmulator
) -> None:
    barrio = await _rosa_coordinates(both, twilio, open_to_all=False)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    rosa.new()
    luis = WhatsAppPhone(twilio, both, LUIS)
    waiting = await _join(
        luis, barrio.invite_code, "Luis Soto", "Panadería Luis", "Panadería y pastelería"
    )
    assert "quedó enviada" in waiting and "Te aviso apenas la coordinación responda" in waiting

    # The join request reaches her on WhatsApp; she approves it by typing its number.
    request = await rosa.wait_for(f"Nueva solicitud para {BARRIO}")
    assert "👤 Luis Soto" in request and "Panadería Luis" in request
    approved = text_of_list(await rosa.say(option_number([request], "Aprobar")))
    assert f"Aprobaste a Luis Soto. Ya es parte de {BARRIO}." in approved
    await luis.wait_for(f"Ya eres parte de {BARRIO}")

    # REUNIÓN typed with its accent, the whole meeting flow by typing.
    assert texts.MEETING_ASK_TITLE in text_of_list(await rosa.say("reunión"))
    await rosa.say("Reunión mensual de socios")
    check = await rosa.say("jueves 19:00")
    assert "Entendí: jueves 26 de noviembre a las 19:00" in text_of_list(check)
    await rosa.say(option_number(check, "Sí, está bien"))
    await rosa.say("Sede vecinal, Estado 123")
    preview = await rosa.say("Seguridad y feria navideña")
    sent = text_of_list(await rosa.say(option_number(preview, "Enviar invitación")))
    assert "Invitación enviada a 1 persona." in sent and "ASISTENCIA ves quién viene" in sent
    invitation = await luis.wait_for("Te invitan a una reunión")
    assert "Reunión mensual de socios" in invitation
    assert "jueves 26 de noviembre a las 19:00" in invitation
    assert "Sede vecinal, Estado 123" in invitation
    assert "Anotado: Asistiré" in text_of_list(
        await luis.say(option_number([invitation], "Asistiré"))
    )

    # ASISTENCIA: the card says who comes.
    card = text_of_list(await rosa.say("ASISTENCIA"))
    assert "📅 Reunión mensual de socios" in card
    assert "✅ Asistirán (1): Luis Soto" in card and "⏳ Sin responder (0)" in card

    # CONVOCATORIA: published, it reaches Luis.
    assert texts.CALL_ASK_NAME in text_of_list(await rosa.say("CONVOCATORIA"))
    await rosa.say("Fondo Barrios Comerciales 2027")
    await rosa.say("Financia mejoras de fachadas y seguridad para negocios del barrio.")
    audience = await rosa.say("https://www.sercotec.cl/barrios")
    await rosa.say(option_number(audience, BARRIO))
    await rosa.say("hoy")
    shown = await rosa.say("15/12")
    assert "del martes 24 de noviembre al martes 15 de diciembre" in text_of_list(shown)
    published = text_of_list(await rosa.say(option_number(shown, "Publicar")))
    assert (
        "Publicada. Avisé a 1 persona;" in published
        and "CONVOCATORIAS hasta el cierre" in published
    )
    call = await luis.wait_for("Nueva convocatoria")
    assert "💰 Fondo Barrios Comerciales 2027" in call and "https://www.sercotec.cl/barrios" in call

    # MIEMBROS lists him.
    members = text_of_list(await rosa.say("MIEMBROS"))
    assert texts.MEMBERS_HEADER.format(barrio=BARRIO, count=2) in members
    assert "• Luis Soto — Panadería Luis (🥖 Panadería y pastelería)" in members
    for answer in (approved, card, published, members):
        assert texts.NOT_UNDERSTOOD not in answer


# --- 2. every keyword, without its slash ------------------------------------------------------

# The keywords of the issue, as people type them; each with what its command answers.
MEMBER_KEYWORDS = [
    "MENU",
    "MENÚ",
    "AYUDA",
    "REGISTRO",
    "PERFIL",
    "BARRIO",
    "DIRECTORIO pan",
    "REUNIONES",
    "ALERTA",
    "CONVOCATORIAS",
    "SILENCIO",
    "BAJA",
    "CANCELAR",
]
COORDINATOR_KEYWORDS = ["ANUNCIO", "REUNION", "REUNIÓN", "ASISTENCIA", "CONVOCATORIA", "MIEMBROS"]
# Those that open a dialogue, which CANCELAR then closes.
OPENS_A_DIALOGUE = {"ALERTA", "BAJA", "ANUNCIO", "REUNION", "REUNIÓN", "CONVOCATORIA"}


def _expected(typed: str, name: str, business: str, coordinates: bool) -> list[str]:
    """Distinctive phrases of the answer to the keyword typed, as WhatsApp shows them."""
    keyword, words = typed.upper(), typed.partition(" ")[2]
    help_text = [on_whatsapp(texts.HELP)]
    if coordinates:
        help_text.append(on_whatsapp(texts.HELP_COORDINATOR.strip()))
    member_answers = {
        "MENU": help_text,
        "MENÚ": help_text,
        "AYUDA": help_text,
        "REGISTRO": [on_whatsapp(texts.ALREADY_REGISTERED.format(name=name))],
        "PERFIL": [f"👤 Tus datos:\nNombre: {name}\nNegocio: {business}\n"],
        "BARRIO": [
            texts.BARRIO_CARD.format(
                name=BARRIO,
                comuna="Rancagua",
                region="O'Higgins",
                count=2,
                coordinators="Rosa Díaz",
                status=texts.MEMBERSHIP_WORDS["coordinator" if coordinates else "active"],
            )
        ],
        # Her own business is not among what she searches; his is.
        "DIRECTORIO PAN": (
            [texts.DIRECTORY_HEADER.format(query=words, count=1), "• Panadería Luis — Luis Soto"]
            if coordinates
            else [texts.DIRECTORY_NONE.format(query=words).split(" 👇")[0]]
        ),
        "REUNIONES": [texts.MEETINGS_NONE],
        "ALERTA": [on_whatsapp(texts.ALERT_ASK_KIND), texts.ALERT_KINDS["robo"]],
        "CONVOCATORIAS": [texts.CALLS_NONE],
        "SILENCIO": [texts.QUIET_NOW.split("\n")[0].format(current="de 22:00 a 08:00")],
        "BAJA": [texts.LEAVE_ASK, texts.LEAVE_BARRIO.format(barrio=BARRIO)],
        "CANCELAR": [texts.NOTHING_TO_CANCEL],
    }
    if keyword in member_answers:
        return member_answers[keyword]
    if not coordinates:
        return [texts.COORDINATORS_ONLY]
    return {
        "ANUNCIO": [on_whatsapp(texts.ANNOUNCE_ASK)],
        "REUNION": [texts.MEETING_ASK_TITLE],
        "REUNIÓN": [texts.MEETING_ASK_TITLE],
        "ASISTENCIA": [texts.ATTENDANCE_NONE.format(barrio=BARRIO)],
        "CONVOCATORIA": [texts.CALL_ASK_NAME],
        "MIEMBROS": [
            texts.MEMBERS_HEADER.format(barrio=BARRIO, count=2),
            "• Luis Soto — Panadería Luis",
            "• Rosa Díaz — Verdulería Rosa",
        ],
    }[keyword]


async def test_every_keyword_works_without_a_slash_in_any_case_for_members_and_coordinators(
    both: Runtime, twilio: TwilioEmulator
) -> None:
    barrio = await _rosa_coordinates(both, twilio, open_to_all=True)
    luis = WhatsAppPhone(twilio, both, LUIS)
    await _join(luis, barrio.invite_code, "Luis Soto", "Panadería Luis", "Panadería y pastelería")
    people = [
        (luis, "Luis Soto", "Panadería Luis", False),
        (WhatsAppPhone(twilio, both, ROSA), "Rosa Díaz", "Verdulería Rosa", True),
    ]
    for phone, name, business, coordinates in people:
        phone.new()
        for keyword in MEMBER_KEYWORDS + COORDINATOR_KEYWORDS:
            for typed in (keyword.upper(), keyword.lower()):
                expected = _expected(typed, name, business, coordinates)
                answer = text_of_list(await phone.say(typed))
                who = f"{name} typed {typed!r}"
                assert texts.NOT_UNDERSTOOD not in answer, f"{who}: {answer}"
                for phrase in expected:
                    assert phrase in answer, f"{who}: {phrase!r} not in {answer!r}"
                if not coordinates and keyword in COORDINATOR_KEYWORDS:
                    assert texts.COORDINATORS_ONLY in answer
                if keyword in ("MENU", "MENÚ", "AYUDA") and not coordinates:
                    assert "MIEMBROS" not in answer, f"{who}: {answer}"
                # Whatever it opened, CANCELAR closes, and nothing had opened for the others.
                closed = text_of_list(await phone.say("cancelar"))
                opened = keyword in OPENS_A_DIALOGUE and (
                    coordinates or keyword not in COORDINATOR_KEYWORDS
                )
                assert (texts.CANCELLED if opened else texts.NOTHING_TO_CANCEL) in closed, who


# --- 3. bad inputs: Telegram's answer, and nothing changes ------------------------------------

INVISIBLE = "\u200b\u2063"  # what "empty" looks like on Telegram, which sends no empty message
TEN_THOUSAND = "palabra " * 1250
# (what, typed on WhatsApp, typed on Telegram, the answer)
AT_THE_NAME_STEP = [
    ("empty", "", [INVISIBLE], texts.TOO_SHORT.format(limit=2)),
    ("whitespace", " \n\t  ", [INVISIBLE], texts.TOO_SHORT.format(limit=2)),
    ("4,096 characters", "x" * 4096, ["x" * 4096], texts.TOO_LONG.format(limit=60)),
    # Telegram splits a paste of 10,000 into messages of 4,096; WhatsApp carries it whole.
    (
        "10,000 characters",
        TEN_THOUSAND,
        [TEN_THOUSAND[start : start + 4096] for start in range(0, len(TEN_THOUSAND), 4096)],
        texts.TOO_LONG.format(limit=60),
    ),
    ("only emoji", "🙂🎉🙂", ["🙂🎉🙂"], texts.LETTERS_NEEDED),
    ("only digits", "12345", ["12345"], texts.LETTERS_NEEDED),
]


async def _handled(both: Runtime, twilio: TwilioEmulator, status: int) -> None:
    """Wait for the turn of the message the emulator just posted (a photo, a location)."""
    assert status == 200 and both.whatsapp is not None
    await asyncio.wait_for(both.whatsapp.wait_handled(str(twilio.last_inbound_sid)), WAIT_S)


async def test_bad_inputs_get_telegrams_answer_on_whatsapp_and_change_nothing(
    both: Runtime, twilio: TwilioEmulator, emulator: TelegramEmulator
) -> None:
    barrio = await make_barrio(both, BARRIO, "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    ana = Phone(emulator, both, 8001, "Ana")
    await rosa.say(whatsapp.JOIN_TEXT.format(code=barrio.invite_code))
    await ana.say(f"/start {barrio.invite_code}")

    for what, typed, on_telegram, answer in AT_THE_NAME_STEP:
        before = await snapshot(both)
        replies = await rosa.say(typed)
        for chunk in on_telegram:
            assert replies == as_whatsapp(await ana.say(chunk)), what
        assert replies == [answer], what
        assert await snapshot(both) == before, what

    # A photo, and a location, where her name was asked.
    for kind in ("photo", "location"):
        before = await snapshot(both)
        if kind == "photo":
            status = await twilio.send_media(ROSA, "image/jpeg")
            telegram_update = emulator.send_photo(ana.user_id, caption=None)
        else:
            status = await twilio.send_location(ROSA, -34.17, -70.74)
            telegram_update = emulator.send_location(ana.user_id, -34.17, -70.74)
        await _handled(both, twilio, status)
        replies = rosa.new()
        assert replies == as_whatsapp(await ana.send(telegram_update)), kind
        assert replies == [texts.TEXT_NEEDED], kind
        assert await snapshot(both) == before, kind

    # The rubro is asked with 11 options: 99 (or 0) is none of them.
    await rosa.say("Rosa Díaz")
    await rosa.say("Verdulería Rosa")
    await ana.say("Ana Pérez")
    await ana.say("Almacén Ana")
    for typed in ("99", "0"):
        before = await snapshot(both)
        replies = await rosa.say(typed)
        assert replies == as_whatsapp(await ana.say(typed)), typed
        assert replies[0] == on_whatsapp(texts.CHOOSE_FROM_OPTIONS), typed
        assert "*11.* 🏪 Otro rubro" in replies[-1] and "*99.*" not in replies[-1]
        assert await snapshot(both) == before, typed
    # The list still answers: she goes on with a number that is one.
    consent = await rosa.say(option_number(replies, "Almacén y abarrotes"))
    assert "¿Aceptas?" in text_of_list(consent)


# --- 4. the outbox's retry rules, against Twilio's faults -------------------------------------


async def _rosa_and_carmen(
    both: Runtime, twilio: TwilioEmulator, emulator: TelegramEmulator, clock: ShiftedClock
) -> tuple[Barrio, WhatsAppPhone]:
    """Rosa on WhatsApp, the only one there; Carmen coordinates on Telegram and has announced
    once (so later announcements are hers to send); the outbox idle, so that a fault injected
    now meets the next announcement's request and no other."""
    barrio = await make_barrio(both, BARRIO, "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    await announce(both, emulator, barrio, "Bienvenida al barrio.")
    await rosa.wait_for("Bienvenida al barrio.")
    await outbox_idle(both, clock)
    return barrio, rosa


def _received(twilio: TwilioEmulator, number: str, fragment: str) -> int:
    """How many messages with `fragment` Twilio accepted for `number`: what reaches her."""
    return sum(fragment in (m.get("body") or "") for m in twilio.sent(number))


async def _row(both: Runtime, number: str, fragment: str) -> Delivery | None:
    async with both.sessions() as session:
        return await session.scalar(
            select(Delivery).where(
                Delivery.channel == "whatsapp",
                Delivery.recipient == number,
                Delivery.text.contains(fragment),
            )
        )


async def _final(both: Runtime, number: str, fragment: str) -> Delivery:
    return await wait_for_delivery(
        both,
        lambda d: (
            d.channel == "whatsapp"
            and d.recipient == number
            and fragment in d.text
            and d.status in FINAL
        ),
    )


async def test_a_429_is_waited_out_and_the_message_sent_once(
    both: Runtime, twilio: TwilioEmulator, emulator: TelegramEmulator, clock: ShiftedClock
) -> None:
    barrio, _ = await _rosa_and_carmen(both, twilio, emulator, clock)
    twilio.fail_next(429, 1)  # Twilio's 20429: too many requests, nothing sent
    asked_at = clock()
    await announce(both, emulator, barrio, "Corte de agua el lunes.")
    row = await _final(both, ROSA, "Corte de agua")
    assert row.status == DeliveryStatus.SENT
    assert row.attempts == 1, "a 429 is Twilio's pacing, not a failed attempt"
    # It went again only once the second Twilio asked for was over.
    assert row.sent_at is not None and row.sent_at >= row.not_before
    assert row.not_before - asked_at >= timedelta(seconds=1)
    assert twilio.snapshot_stats()["error_codes"] == {"20429": 1}
    assert _received(twilio, ROSA, "Corte de agua el lunes.") == 1


async def test_two_server_errors_are_retried_and_the_message_sent_once(
    both: Runtime, twilio: TwilioEmulator, emulator: TelegramEmulator, clock: ShiftedClock
) -> None:
    barrio, _ = await _rosa_and_carmen(both, twilio, emulator, clock)
    twilio.fail_next(500, 1)
    twilio.fail_next(503, 1)
    await announce(both, emulator, barrio, "Corte de agua el lunes.")
    # Each failure puts the row off (backoff); the clock skips each wait instead of sleeping it.
    waits: list[tuple[int, float]] = []
    assert both.dispatcher is not None
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while (row := await _row(both, ROSA, "Corte de agua")) is None or row.status not in FINAL:
        if row is not None and row.status == DeliveryStatus.PENDING and row.not_before > clock():
            ahead = row.not_before - clock()
            waits.append((row.attempts, ahead.total_seconds()))
            clock.advance(ahead + timedelta(milliseconds=10))
            both.dispatcher.wake()
        assert asyncio.get_running_loop().time() < deadline, f"still {row and row.status}"
        await asyncio.sleep(0.01)
    assert row.status == DeliveryStatus.SENT and row.attempts == 3
    assert [attempts for attempts, _ in waits] == [1, 2]
    assert 1 < waits[0][1] < waits[1][1], f"no growing backoff: {waits}"
    assert twilio.snapshot_stats()["error_codes"] == {"20500": 1, "20503": 1}
    assert _received(twilio, ROSA, "Corte de agua el lunes.") == 1


async def test_no_answer_after_the_message_was_created_is_ambiguous_and_never_resent(
    both: Runtime,
    twilio: TwilioEmulator,
    emulator: TelegramEmulator,
    clock: ShiftedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    barrio, rosa = await _rosa_and_carmen(both, twilio, emulator, clock)
    carmen = Phone(emulator, both, 6000, "Carmen")
    carmen.new()
    monkeypatch.setattr(whatsapp, "TWILIO_TIMEOUT_S", 0.5)
    # Twilio creates the message, and its answer never comes back in time.
    twilio.hang_next(1, seconds=WAIT_S * 3, apply=True)
    await announce(both, emulator, barrio, "Corte de agua el lunes.")
    row = await _final(both, ROSA, "Corte de agua")
    assert row.status == DeliveryStatus.AMBIGUOUS and row.attempts == 1
    # Carmen is told it is unconfirmed, neither delivered nor failed.
    report = (await carmen.wait_for("❔ Sin confirmar: 1"))["text"]
    assert "📣 Tu anuncio ya salió." in report and "✅ Entregados: 0" in report
    assert "❌ No se pudo: 0" in report

    # Minutes later, past the sweep for stale rows, it has not gone again.
    clock.advance(timedelta(minutes=10))
    assert both.dispatcher is not None
    assert await both.dispatcher.recover() == 0
    both.dispatcher.wake()
    await outbox_idle(both, clock)
    twilio.release_hung()
    await announce(both, emulator, barrio, "Feria el sábado.")
    await rosa.wait_for("Feria el sábado.")  # the channel works; she is not unreachable
    await outbox_idle(both, clock)
    assert _received(twilio, ROSA, "Corte de agua el lunes.") == 1, "resent"
    after = await _row(both, ROSA, "Corte de agua")
    assert after is not None and (after.status, after.attempts) == (DeliveryStatus.AMBIGUOUS, 1)


async def test_an_opted_out_number_is_unreachable_and_no_later_broadcast_calls_it(
    both: Runtime, twilio: TwilioEmulator, emulator: TelegramEmulator, clock: ShiftedClock
) -> None:
    barrio, _ = await _rosa_and_carmen(both, twilio, emulator, clock)
    luis = WhatsAppPhone(twilio, both, LUIS)
    await _join(luis, barrio.invite_code, "Luis Soto", "Panadería Luis", "Panadería y pastelería")
    await outbox_idle(both, clock)
    carmen = Phone(emulator, both, 6000, "Carmen")
    carmen.new()
    # She opted out at Twilio (STOP to the sender, in another conversation, say): 21610.
    twilio.set_opted_out(ROSA, True)
    await announce(both, emulator, barrio, "Corte de agua el lunes.")
    row = await _final(both, ROSA, "Corte de agua")
    assert row.status == DeliveryStatus.UNREACHABLE and "21610" in (row.last_error or "")
    async with both.sessions() as session:
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_id == ROSA)
        )
    assert identity is not None and identity.unreachable_at is not None
    await luis.wait_for("Corte de agua el lunes.")
    sent = await _final(both, LUIS, "Corte de agua")
    assert sent.platform_message_id is not None
    await twilio.settle(sent.platform_message_id)  # WhatsApp's word on his: read
    await _report(both, "6000")
    report = (await carmen.wait_for("📵 Sin contacto (bloquearon el bot): 1"))["text"]
    assert "📣 Tu anuncio ya salió." in report and "✅ Entregados: 1" in report

    # The next broadcast reaches Luis, and makes no REST call to her number at all.
    calls = twilio.snapshot_stats()
    await announce(both, emulator, barrio, "Feria el sábado.")
    await luis.wait_for("Feria el sábado.")
    next_row = await _final(both, ROSA, "Feria el sábado")
    await outbox_idle(both, clock)
    now = twilio.snapshot_stats()
    assert now["requests"] - calls["requests"] == 1 == now["created"] - calls["created"]
    assert now["error_codes"] == calls["error_codes"] == {"21610": 1}
    assert next_row.status == DeliveryStatus.UNREACHABLE
    assert _received(twilio, ROSA, "Corte de agua") == _received(twilio, ROSA, "Feria") == 0
