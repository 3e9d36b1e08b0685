"""A join request always reaches someone who can answer it: the barrio's coordinators, else
the deployment's administrators (ADMIN_TELEGRAM_IDS, ADMIN_WHATSAPP_NUMBERS); a barrio nobody
could answer takes no requests, and the newcomer is told so. The first coordinator of a
barrio gets what was waiting; `barrios list` and `barrio run` say which barrios have none."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.emulator.telegram import TelegramEmulator
from bot.emulator.twilio import TwilioEmulator, serve_twilio_emulator
from bot.runtime import Runtime
from bot.settings import SettingsError, load_settings
from handlers import admin
from models import Delivery, DeliveryStatus, Member, Membership, MembershipStatus
from tests.support import (
    Phone,
    buttons,
    make_barrio,
    make_coordinator,
    register,
    text_of,
    wait_for_delivery,
)
from tests.test_demo import _offline_env
from tests.test_whatsapp import WhatsAppPhone, _with_whatsapp, option_number

# A Telegram administrator who is no member of any barrio, and one on WhatsApp.
ADMIN = 8800
ADMIN_NUMBER = "+56988880000"
TEAM = "la revisará el equipo de Barrio Conecta"
NO_COORDINATION = "que aún no tiene coordinación en el bot"


@pytest.fixture
async def with_admin(settings, clock, emulator: TelegramEmulator) -> AsyncIterator[Runtime]:
    """The bot with one Telegram administrator, who has pressed Start once."""
    emulator.start_chats([ADMIN])
    runtime = Runtime(
        settings.model_copy(update={"admin_telegram_ids": (str(ADMIN),)}), clock=clock
    )
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioEmulator]:
    emulator = TwilioEmulator()
    async with serve_twilio_emulator(emulator):
        yield emulator


async def _count(runtime: Runtime, model: type) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_request_to_a_barrio_without_coordination_reaches_the_administrator(
    with_admin, emulator
):
    barrio = await make_barrio(with_admin, "Barrio Estación", "Graneros")
    team = Phone(emulator, with_admin, ADMIN, "Equipo")
    ana = Phone(emulator, with_admin, 8801, "Ana")
    await register(ana, barrio)
    told = ana.last()["text"]
    assert "quedó enviada" in told and TEAM in told
    assert "cuando la coordinación" not in told

    request = await team.wait_for("Nueva solicitud para Barrio Estación (Graneros)")
    assert NO_COORDINATION in request["text"] and "Almacén Ana" in request["text"]
    assert [b["text"] for b in buttons(request)] == ["✅ Aprobar", "❌ Rechazar"]
    assert "Aprobaste a Ana" in text_of(await team.tap("Aprobar"))
    welcome = await ana.wait_for("Ya eres parte de Barrio Estación")
    # Nobody else in its directory yet: not sent to an empty /directorio.
    assert "Eres de los primeros" in welcome["text"] and "para conocer" not in welcome["text"]
    assert await _count(with_admin, Member) == 1  # the administrator needs no registration

    # A registered member following another such barrio's link is told the same truth.
    second = await make_barrio(with_admin, "Barrio Plaza", "Rengo")
    asked = text_of(await ana.say(f"/start {second.invite_code}"))
    assert "¿Pido tu ingreso a Barrio Plaza (Rengo)?" in asked  # more people will see her
    joined = text_of(await ana.tap("Sí, pedir ingreso"))
    assert "pedí tu ingreso a Barrio Plaza" in joined and TEAM in joined
    await team.wait_for("Nueva solicitud para Barrio Plaza (Rengo)")

    # The team says no: Ana hears it from the team, not from a coordination that does not
    # exist (found in review).
    await team.tap("Rechazar")
    await team.tap("Escribir otro motivo")
    await team.say("Ese barrio aún no parte")
    await team.tap("Sí, rechazar")
    notice = (await ana.wait_for("no aprobó tu solicitud"))["text"]
    assert "El equipo de Barrio Conecta no aprobó tu solicitud para Barrio Plaza" in notice
    assert "Motivo, en palabras del equipo: «Ese barrio aún no parte»" in notice
    assert "coordinación" not in notice
    again = text_of(await ana.say(f"/start {second.invite_code}"))
    assert "El equipo de Barrio Conecta no aprobó tu solicitud para Barrio Plaza" in again


async def test_with_a_coordinator_the_request_goes_to_them_and_not_the_administrator(
    with_admin, emulator
):
    barrio = await make_barrio(with_admin, "Barrio Norte")
    carmen = Phone(emulator, with_admin, 8802, "Carmen")
    await register(carmen, barrio)  # asks the administrator: nobody coordinates yet
    team = Phone(emulator, with_admin, ADMIN, "Equipo")
    await team.wait_for("Nueva solicitud para Barrio Norte")
    await make_coordinator(with_admin, carmen, barrio)
    carmen.new()

    beto = Phone(emulator, with_admin, 8803, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    told = beto.last()["text"]
    assert "Te aviso apenas la coordinación responda" in told and TEAM not in told
    request = await carmen.wait_for("Nueva solicitud para Barrio Norte")
    assert NO_COORDINATION not in request["text"] and "Bazar Beto" in request["text"]
    await wait_for_delivery(
        with_admin, lambda d: "Bazar Beto" in d.text and d.status == DeliveryStatus.SENT
    )
    async with with_admin.sessions() as session:
        to_team = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.recipient == str(ADMIN), Delivery.text.contains("Bazar Beto"))
        )
    assert to_team == 0


async def test_a_request_whose_coordinators_blocked_the_bot_reaches_the_administrator(
    with_admin, emulator
):
    barrio = await make_barrio(with_admin, "Barrio Norte", "Rengo")
    carmen = Phone(emulator, with_admin, 8810, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(with_admin, carmen, barrio)
    emulator.block(carmen.user_id, notify=False)
    beto = Phone(emulator, with_admin, 8811, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    # The request to Carmen bounces: she is marked unreachable.
    await wait_for_delivery(
        with_admin, lambda d: d.recipient == "8810" and d.status == DeliveryStatus.UNREACHABLE
    )
    team = Phone(emulator, with_admin, ADMIN, "Equipo")
    # Beto's went to her, as she had not been found unreachable yet.
    assert not [t for t in team.texts() if "Bazar Beto" in t]

    ana = Phone(emulator, with_admin, 8812, "Ana")
    await register(ana, barrio)
    told = ana.last()["text"]
    assert TEAM in told and "cuando la coordinación" not in told
    request = await team.wait_for("Su coordinación no recibe mensajes del bot")
    assert "Nueva solicitud para Barrio Norte (Rengo)" in request["text"]
    assert "👤 Ana" in request["text"]
    assert "Aprobaste a Ana" in text_of(await team.tap("Aprobar"))
    await ana.wait_for("Ya eres parte de Barrio Norte")


async def test_the_first_coordinator_gets_the_requests_that_were_waiting(with_admin, emulator):
    barrio = await make_barrio(with_admin, "Barrio Sur", "Machalí")
    team = Phone(emulator, with_admin, ADMIN, "Equipo")
    ana = Phone(emulator, with_admin, 8804, "Ana")
    await register(ana, barrio)
    at_team = await team.wait_for("Nueva solicitud para Barrio Sur")
    carmen = Phone(emulator, with_admin, 8805, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await team.wait_for("Librería Carmen")

    await make_coordinator(with_admin, carmen, barrio)
    forwarded = await carmen.wait_for("Nueva solicitud para Barrio Sur")
    header = "🧭 Ahora coordinas Barrio Sur. Solicitudes que esperaban respuesta: 1"
    assert carmen.texts()[-2:] == [header, forwarded["text"]]
    assert "Almacén Ana" in forwarded["text"] and NO_COORDINATION not in forwarded["text"]
    assert "Aprobaste a Ana" in text_of(await carmen.tap("Aprobar"))
    welcome = await ana.wait_for("Ya eres parte de Barrio Sur")
    assert "/directorio para conocer a tus vecinos" in welcome["text"]  # Carmen is there
    # The administrator's copy of the same request is answered as any late tap.
    approve = buttons(at_team)[0]["callback_data"]
    late = text_of(await team.tap_data(at_team["message_id"], approve, forge=True))
    assert "ya estaba resuelta (aprobada)" in late

    # A second coordinator is not sent what the first one already has.
    async with with_admin.sessions() as session, session.begin():
        rows_before = await session.scalar(select(func.count()).select_from(Delivery))
        promotion = await admin.make_coordinator(session, barrio, "telegram", str(ana.user_id))
    assert promotion.forwarded == 0
    assert await _count(with_admin, Delivery) == rows_before


async def test_without_anyone_to_answer_nothing_is_offered_or_stored_in_vain(runtime, phone):
    nobody = await make_barrio(runtime, "Barrio Olvidado", "Lolol")  # approval, no coordinator
    await make_barrio(runtime, "Barrio Abierto", "Rengo", open_to_all=True)
    coordinated = await make_barrio(runtime, "Barrio Norte", "Rancagua")
    carmen = phone(8810, "Carmen")
    await register(carmen, coordinated)
    await make_coordinator(runtime, carmen, coordinated)

    # The barrio list offers only barrios someone can answer (open ones always).
    luis = phone(8811, "Luis")
    await luis.say("/start")
    await luis.say("Luis")
    await luis.say("Ferretería Luis")
    choices = await luis.tap("Ferretería")
    assert [b["text"] for b in buttons(choices[-1])] == [
        "Rancagua · Barrio Norte",
        "Rengo · Barrio Abierto",
    ]
    assert "Olvidado" not in text_of(await luis.say("lolol"))
    # A forged tap on it is told the truth and shown the list again.
    forged = f"reg:bar:{nobody.id}"
    stale = text_of(await luis.tap_data(choices[-1]["message_id"], forged, forge=True))
    assert "Barrio Olvidado todavía no tiene coordinación en el bot" in stale
    assert "¿En qué barrio" in stale and "Olvidado ·" not in stale
    await luis.say("/cancelar")

    # Its poster's link says so before the questions; they register, with no request.
    pedro = phone(8812, "Pedro")
    welcome = text_of(await pedro.say(f"/start {nobody.invite_code}"))
    assert "todavía no tiene coordinación en el bot" in welcome
    assert "aún no puede recibir solicitudes" in welcome and "¿Cómo te llamas?" in welcome
    await pedro.say("Pedro")
    await pedro.say("Taller Pedro")
    await pedro.tap("Taller")
    done = text_of(await pedro.tap("Acepto"))
    assert "Quedó tu registro, pero aún no pude pedir tu ingreso a Barrio Olvidado" in done
    assert "Pídele a tu coordinador(a) que se inscriba aquí" in done
    async with runtime.sessions() as session:
        in_nobody = await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.barrio_id == nobody.id)
        )
    assert in_nobody == 0

    # A registered member following that link: told, nothing stored, nobody messaged.
    deliveries = await _count(runtime, Delivery)
    answer = text_of(await carmen.say(f"/start {nobody.invite_code}"))
    assert "Barrio Olvidado todavía no tiene coordinación en el bot" in answer
    assert await _count(runtime, Delivery) == deliveries
    assert await _count(runtime, Membership) == 1  # Carmen's own

    # Once it has a coordinator, the same link asks them.
    await make_coordinator(runtime, carmen, nobody)
    await pedro.say(f"/start {nobody.invite_code}")
    answer = text_of(await pedro.tap("Sí, pedir ingreso"))
    assert "pedí tu ingreso a Barrio Olvidado" in answer
    await carmen.wait_for("Nueva solicitud para Barrio Olvidado")


async def test_an_administrator_on_whatsapp_answers_with_the_number(
    settings, twilio, clock, emulator
):
    runtime = Runtime(
        _with_whatsapp(settings, twilio, admin_whatsapp_numbers=(ADMIN_NUMBER,)), clock=clock
    )
    await runtime.start()
    try:
        twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
        barrio = await make_barrio(runtime, "Barrio Feria", "Rengo")
        team = WhatsAppPhone(twilio, runtime, ADMIN_NUMBER)
        await team.say("hola")  # WhatsApp lets the bot write freely within 24 hours of this
        ana = Phone(emulator, runtime, 8820, "Ana")
        await register(ana, barrio)
        request = await team.wait_for("Nueva solicitud para Barrio Feria (Rengo)")
        assert NO_COORDINATION in request and "*1.* ✅ Aprobar" in request
        approved = "\n".join(await team.say(option_number([request], "Aprobar")))
        assert "Aprobaste a Ana" in approved
        await ana.wait_for("Ya eres parte de Barrio Feria")
    finally:
        await runtime.stop()


async def test_barrio_run_warns_once_when_requests_would_reach_nobody(settings, clock, caplog):
    quiet = Runtime(settings, clock=clock)
    async with quiet.sessions() as session, session.begin():
        lonely = await admin.create_barrio(
            session, name="Barrio Secreto", comuna="Lolol", region="O'Higgins", open_to_all=False
        )
        await admin.create_barrio(
            session, name="Barrio Abierto", comuna="Rengo", region="O'Higgins", open_to_all=True
        )
    with caplog.at_level(logging.WARNING, logger="bot.runtime"):
        await quiet.start()
        await quiet.stop()
    warned = [r.getMessage() for r in caplog.records if "no coordinator" in r.getMessage()]
    assert len(warned) == 1
    assert f"barrio ids {lonely.id}" in warned[0] and "ADMIN_TELEGRAM_IDS" in warned[0]
    assert "Secreto" not in warned[0] and "Lolol" not in warned[0]

    caplog.clear()
    answered = Runtime(
        settings.model_copy(update={"admin_telegram_ids": (str(ADMIN),)}), clock=clock
    )
    with caplog.at_level(logging.WARNING, logger="bot.runtime"):
        await answered.start()
        await answered.stop()
    assert not [r for r in caplog.records if "no coordinator" in r.getMessage()]

    # An administrator on WhatsApp, in a deployment without it, is said to get nothing.
    caplog.clear()
    misplaced = Runtime(
        settings.model_copy(update={"admin_whatsapp_numbers": ("+56911112222",)}), clock=clock
    )
    with caplog.at_level(logging.WARNING, logger="bot.runtime"):
        await misplaced.start()
        await misplaced.stop()
    [dropped] = [r.getMessage() for r in caplog.records if "does not run" in r.getMessage()]
    assert dropped.startswith("1 administrators") and "+569" not in dropped


def test_barrios_list_marks_barrios_without_coordination(cli_env, capsys):
    main(["barrios", "create", "--name", "Barrio Uno", "--comuna", "Rengo", "--region", "VI"])
    capsys.readouterr()
    main(["barrios", "list"])
    [row] = capsys.readouterr().out.strip().splitlines()
    assert "\tsin coordinación\t" in row and "\t0 socios\t" in row


async def test_coordinators_add_forwards_the_waiting_requests_and_says_so(
    with_admin, emulator, capsys, monkeypatch, tmp_path, settings
):
    barrio = await make_barrio(with_admin, "Barrio Centro", "Graneros")
    ana = Phone(emulator, with_admin, 8830, "Ana")
    await register(ana, barrio)
    carmen = Phone(emulator, with_admin, 8831, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    capsys.readouterr()
    await _in_a_thread(["coordinators", "add", "--barrio", barrio.slug, "--telegram-id", "8831"])
    said = capsys.readouterr().out
    assert (
        "Carmen ahora coordina Barrio Centro; le llega la solicitud que esperaba respuesta" in said
    )
    async with with_admin.sessions() as session:
        queued = (
            await session.scalars(
                select(Delivery.text).where(Delivery.recipient == "8831").order_by(Delivery.id)
            )
        ).all()
    assert queued[-2].startswith("🧭 Ahora coordinas Barrio Centro")
    assert "Almacén Ana" in queued[-1] and NO_COORDINATION not in queued[-1]

    await _in_a_thread(["barrios", "list"])
    [row] = capsys.readouterr().out.strip().splitlines()
    assert "\t1 coordinador(a)\t" in row and "\t1 persona\t" in row


async def _in_a_thread(argv: list[str]) -> None:
    """`barrio …` in this process (its own event loop, as from a terminal) beside the bot."""
    import asyncio

    await asyncio.to_thread(main, argv)


def test_admin_settings_are_validated_and_normalised():
    settings = load_settings(
        admin_telegram_ids=" 123, 456,,123", admin_whatsapp_numbers="whatsapp:+56 9 1234 5678"
    )
    assert settings.admin_telegram_ids == ("123", "456")
    assert settings.admins == (
        ("telegram", "123"),
        ("telegram", "456"),
        ("whatsapp", "+56912345678"),
    )
    for name, bad in (
        ("admin_telegram_ids", "123,ana"),
        ("admin_telegram_ids", "-5"),
        ("admin_whatsapp_numbers", "912345678"),
    ):
        with pytest.raises(SettingsError) as error:
            load_settings(**{name: bad})
        message = str(error.value)
        assert message.startswith(f"{name.upper()} debe llevar ") and "\n" not in message


def test_admin_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", "11,22")
    monkeypatch.setenv("ADMIN_WHATSAPP_NUMBERS", "+56911112222")
    assert load_settings().admins == (
        ("telegram", "11"),
        ("telegram", "22"),
        ("whatsapp", "+56911112222"),
    )


def test_a_demo_newcomer_choosing_any_barrio_reaches_the_demos_administrator(tmp_path):
    typed = [
        "/start",
        "Ana Pérez",
        "Almacén Ana",
        "1",  # rubro: Almacén
        "graneros",  # a barrio without a coordinator
        "1",
        "1",  # Acepto
        ":carmen",
        "1",  # Aprobar
        ":salir",
    ]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "barrio"), "demo"],
        input="\n".join(typed),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_offline_env(),
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert TEAM in out
    assert "(a Carmen):\nNueva solicitud para Barrio Comercial Graneros (Graneros)" in out
    assert "Aprobaste a Ana Pérez" in out
    assert "(a Ana):\n¡Buenas noticias!" in out


async def test_deliveries_to_an_administrator_who_is_a_member_keep_their_quiet_hours(
    settings, clock, emulator
):
    """A member who is also an administrator is reached as a member: once, in their hours."""
    carmen_id = 8840
    runtime = Runtime(
        settings.model_copy(update={"admin_telegram_ids": (str(carmen_id),)}), clock=clock
    )
    await runtime.start()
    try:
        open_barrio = await make_barrio(runtime, "Barrio Abierto", open_to_all=True)
        carmen = Phone(emulator, runtime, carmen_id, "Carmen")
        await register(carmen, open_barrio)
        lonely = await make_barrio(runtime, "Barrio Solo", "Lolol")
        ana = Phone(emulator, runtime, 8841, "Ana")
        await register(ana, lonely)
        request = await wait_for_delivery(runtime, lambda d: "Barrio Solo" in d.text)
        async with runtime.sessions() as session:
            carmen_row = await session.scalar(select(Member).where(Member.name == "Carmen"))
        assert carmen_row is not None and request.member_id == carmen_row.id
        await carmen.wait_for("Nueva solicitud para Barrio Solo")
        await wait_for_delivery(runtime, lambda d: d.status == DeliveryStatus.SENT)
        # Typed, the number answers the request as a tap would.
        assert "Aprobaste a Ana" in text_of(await carmen.say("1"))
        async with runtime.sessions() as session:
            status = await session.scalar(
                select(Membership.status).where(Membership.barrio_id == lonely.id)
            )
        assert status == MembershipStatus.ACTIVE
    finally:
        await runtime.stop()


async def _leave(person, barrio_name: str) -> None:
    await person.say("/baja")
    await person.tap(f"Salir de {barrio_name}")
    await person.tap("Sí, salir")


async def test_when_the_last_coordinator_leaves_the_waiting_requests_go_to_the_administrator(
    with_admin, emulator
):
    barrio = await make_barrio(with_admin, "Barrio Estación", "Graneros")
    team = Phone(emulator, with_admin, ADMIN, "Equipo")
    carmen = Phone(emulator, with_admin, 8850, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await team.wait_for("Librería Carmen")  # nobody coordinated it yet
    await make_coordinator(with_admin, carmen, barrio)
    ana = Phone(emulator, with_admin, 8851, "Ana")
    await register(ana, barrio)
    await carmen.wait_for("Nueva solicitud para Barrio Estación")
    # While Carmen coordinates it, the request is hers, not the administrator's.
    assert "No hay solicitudes esperando en barrios sin coordinación" in text_of(
        await team.say("/miembros")
    )

    await _leave(carmen, "Barrio Estación")
    header = await team.wait_for("se quedó sin coordinación")
    assert header["text"] == (
        "🧭 Barrio Estación se quedó sin coordinación en el bot. "
        "Solicitudes que esperan respuesta: 1"
    )
    request = await team.wait_for("Almacén Ana")
    assert NO_COORDINATION in request["text"]
    assert [b["text"] for b in buttons(request)] == ["✅ Aprobar", "❌ Rechazar"]

    # Their /miembros has it too, in the same words.
    listing = await team.say("/miembros")
    assert listing[0]["text"] == "⏳ Solicitudes por aprobar en Barrio Estación: 1"
    assert NO_COORDINATION in listing[1]["text"] and "Almacén Ana" in listing[1]["text"]
    assert "Aprobaste a Ana" in text_of(await team.tap("Aprobar"))
    await ana.wait_for("Ya eres parte de Barrio Estación")
    assert "No hay solicitudes esperando" in text_of(await team.say("/miembros"))


async def test_a_coordinator_who_erases_their_data_hands_only_orphaned_requests_over(
    with_admin, emulator
):
    solo = await make_barrio(with_admin, "Barrio Solo", "Rengo")
    shared = await make_barrio(with_admin, "Barrio Compartido", "Rengo")
    team = Phone(emulator, with_admin, ADMIN, "Equipo")
    carmen = Phone(emulator, with_admin, 8860, "Carmen")
    pablo = Phone(emulator, with_admin, 8861, "Pablo")
    await register(carmen, solo, business="Librería Carmen")
    await register(pablo, shared, business="Bazar Pablo")
    for barrio in (solo, shared):
        await make_coordinator(with_admin, carmen, barrio)
    await make_coordinator(with_admin, pablo, shared)
    ana, beto = Phone(emulator, with_admin, 8862, "Ana"), Phone(emulator, with_admin, 8863, "Beto")
    await register(ana, solo)
    await register(beto, shared, business="Bazar Beto")
    await pablo.wait_for("Bazar Beto")
    await wait_for_delivery(
        with_admin, lambda d: "Almacén Ana" in d.text and d.status == DeliveryStatus.SENT
    )
    team.new()
    async with with_admin.sessions() as session:
        before = await session.scalar(select(func.max(Delivery.id)))

    await carmen.say("/baja")
    await carmen.tap("Borrar todos mis datos")
    await carmen.tap("Sí, borrar todo")
    await team.wait_for("🧭 Barrio Solo se quedó sin coordinación en el bot")
    await team.wait_for("Almacén Ana")
    # Barrio Compartido still has Pablo: its request stays his alone.
    async with with_admin.sessions() as session:
        to_team = (
            await session.scalars(
                select(Delivery.text)
                .where(Delivery.recipient == str(ADMIN), Delivery.id > (before or 0))
                .order_by(Delivery.id)
            )
        ).all()
    assert len(to_team) == 2 and "Barrio Solo" in to_team[0] and "Almacén Ana" in to_team[1]
    assert "Carmen" not in "\n".join(to_team)


async def test_without_administrators_a_coordinator_leaving_queues_nothing(runtime, phone):
    barrio = await make_barrio(runtime, "Barrio Norte")
    carmen = phone(8870, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    beto = phone(8871, "Beto")
    await register(beto, barrio, business="Bazar Beto")
    await carmen.wait_for("Nueva solicitud")
    deliveries = await _count(runtime, Delivery)
    await _leave(carmen, "Barrio Norte")
    assert await _count(runtime, Delivery) == deliveries
    assert "solo para la coordinación" in text_of(await beto.say("/miembros"))
