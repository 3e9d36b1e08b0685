"""WhatsApp end to end: the real twilio client and signed webhooks against the Twilio emulator,
the same dialogue core as Telegram, in the same barrio as Telegram members."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.emulator.twilio import TwilioEmulator, serve_twilio_emulator
from bot.emulator.twilio_state import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SANDBOX_SENDER
from bot.runtime import Runtime
from models import ChannelIdentity, InboundUpdate, Meeting, Member
from tests.support import WAIT_S, Phone, make_barrio, make_coordinator, register
from tests.test_reminders import outbox_idle

ROSA = "+56911110001"


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioEmulator]:
    emulator = TwilioEmulator()
    async with serve_twilio_emulator(emulator):
        yield emulator


def _with_whatsapp(settings, twilio: TwilioEmulator, **more):
    return settings.model_copy(
        update={
            "twilio_account_sid": DEFAULT_ACCOUNT_SID,
            "twilio_auth_token": SecretStr(DEFAULT_AUTH_TOKEN),
            "twilio_whatsapp_from": SANDBOX_SENDER,
            "twilio_api_base_url": twilio.base_url,
            "whatsapp_rate_per_s": 1000.0,
            **more,
        }
    )


@pytest.fixture
async def both(settings, twilio, clock) -> AsyncIterator[Runtime]:
    """The bot on Telegram and WhatsApp at once."""
    runtime = Runtime(_with_whatsapp(settings, twilio), clock=clock)
    await runtime.start()
    twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
    yield runtime
    await runtime.stop()


class WhatsAppPhone:
    """A person on WhatsApp: writes through the emulator's signed webhook, reads what the bot
    sent through the REST API."""

    def __init__(self, twilio: TwilioEmulator, runtime: Runtime, number: str) -> None:
        self.twilio, self.runtime, self.number = twilio, runtime, number
        self.read = 0

    async def say(self, body: str) -> list[str]:
        status = await self.twilio.send_text(self.number, body)
        assert status == 200, status
        sid = self.twilio.last_inbound_sid
        assert self.runtime.whatsapp is not None and sid is not None
        await asyncio.wait_for(self.runtime.whatsapp.wait_handled(sid), WAIT_S)
        return self.new()

    def new(self) -> list[str]:
        bodies = self.bodies()
        fresh, self.read = bodies[self.read :], len(bodies)
        return fresh

    def bodies(self) -> list[str]:
        return [m.get("body") or "" for m in self.twilio.sent(self.number)]

    async def wait_for(self, fragment: str) -> str:
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            for body in self.bodies()[self.read :]:
                if fragment.casefold() in body.casefold():
                    self.new()
                    return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{fragment!r} never reached {self.number}: {self.bodies()}")
            await asyncio.sleep(0.02)


def option_number(bodies: list[str], label: str) -> str:
    """The number the newest numbered list gives the option whose label is `label`."""
    lines = [line for body in bodies for line in body.splitlines() if line.startswith("*")]
    found = [line for line in lines if line.split(" ", 1)[1].endswith(label)]
    assert found, f"no option {label!r} in {lines}"
    return found[-1].split(".", 1)[0].strip("*")


async def _register(rosa: WhatsAppPhone, code: str) -> int:
    """Registers Rosa from the poster's link by typing only; returns how many messages she
    sent."""
    await rosa.say(f"Hola, quiero unirme a mi barrio con el código {code}")
    await rosa.say("Rosa Díaz")
    rubros = await rosa.say("Verdulería Rosa")
    consent = await rosa.say(option_number(rubros, "Almacén y abarrotes"))
    await rosa.say(option_number(consent, "Acepto"))
    return 5


def text_of_list(bodies: list[str]) -> str:
    return "\n".join(bodies)


async def test_a_whatsapp_member_registers_from_the_poster_and_gets_the_barrios_news(
    both, twilio, emulator
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    assert await _register(rosa, barrio.invite_code) == 5
    assert any("Ya eres parte de Barrio Estación" in body for body in rosa.bodies())
    async with both.sessions() as session:
        member = await session.scalar(select(Member))
        identity = await session.scalar(select(ChannelIdentity))
    assert member.name == "Rosa Díaz" and (identity.channel, identity.external_id) == (
        "whatsapp",
        ROSA,
    )

    # Keywords without a slash and numbered menus work as on Telegram.
    assert "No hay reuniones próximas" in text_of_list(await rosa.say("REUNIONES"))
    menu = text_of_list(await rosa.say("menú"))
    assert "*1.*" in menu and "Responde con el número" in menu

    # A Telegram coordinator's announcement reaches her on WhatsApp.
    carmen = Phone(emulator, both, 6000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(both, carmen, barrio)
    await carmen.say("/anuncio")
    await carmen.say("Mañana hay feria en la plaza.")
    await carmen.tap("Enviar")
    announced = await rosa.wait_for("Mañana hay feria en la plaza.")
    assert "Anuncio de Barrio Estación" in announced


async def test_forged_unsigned_and_replayed_webhooks(both, twilio):
    rosa = WhatsAppPhone(twilio, both, ROSA)
    assert await twilio.send_text(ROSA, "hola", signature="missing") == 403
    assert await twilio.send_text(ROSA, "hola", signature="wrong") == 403
    async with both.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundUpdate)) == 0
    await rosa.say("hola")
    replies = len(rosa.bodies())
    sid = twilio.last_inbound_sid
    assert await twilio.redeliver(sid) == 200
    await asyncio.sleep(0.3)
    assert len(rosa.bodies()) == replies, "a redelivered MessageSid was handled twice"


async def test_behind_a_proxy_the_public_url_is_what_is_signed(settings, twilio, clock):
    public = "https://barrio.example.cl"
    runtime = Runtime(
        _with_whatsapp(settings, twilio, public_base_url=public, telegram_mode="polling"),
        clock=clock,
    )
    await runtime.start()
    try:
        actual = f"http://127.0.0.1:{runtime.web_port}/whatsapp"
        twilio.set_webhook(actual, public_url=f"{public}/whatsapp")
        rosa = WhatsAppPhone(twilio, runtime, ROSA)
        assert "¡Hola! 👋 Soy Barrio Conecta" in text_of_list(await rosa.say("hola"))
        # Signed over the URL the request really went to, not the public one: refused.
        assert await twilio.send_text(ROSA, "hola", sign_url=actual) == 403
    finally:
        await runtime.stop()


async def test_stop_ends_broadcasts_at_once_and_start_brings_them_back(
    both, twilio, emulator, clock
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    calls = len(twilio.sent(ROSA))
    assert await rosa.say("STOP") == []
    async with both.sessions() as session:
        identity = await session.scalar(select(ChannelIdentity))
    assert identity.unreachable_at is not None
    carmen = Phone(emulator, both, 6000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(both, carmen, barrio)
    await carmen.say("/anuncio")
    await carmen.say("Mañana hay feria en la plaza.")
    await carmen.tap("Enviar")
    await outbox_idle(both, clock)
    assert len(twilio.sent(ROSA)) == calls, "a REST call went to a number that said STOP"
    assert "Barrio Conecta une" in text_of_list(await rosa.say("START"))
    async with both.sessions() as session:
        identity = await session.scalar(select(ChannelIdentity))
    assert identity.unreachable_at is None


async def test_a_whatsapp_only_deployment_runs_without_a_telegram_token(settings, twilio, clock):
    runtime = Runtime(_with_whatsapp(settings, twilio, telegram_bot_token=None), clock=clock)
    await runtime.start()
    try:
        assert runtime.application is None
        twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
        rosa = WhatsAppPhone(twilio, runtime, ROSA)
        assert "Barrio Conecta une" in text_of_list(await rosa.say("ayuda"))
    finally:
        await runtime.stop()


def test_the_poster_link_for_whatsapp(cli_env, capsys, monkeypatch):
    from tests.test_cli import barrio as barrio_cli

    monkeypatch.setenv("TWILIO_WHATSAPP_FROM", "whatsapp:+56922223333")
    barrio_cli(
        capsys, "barrios", "create", "--name", "Barrio Estación", "--comuna", "Rancagua",
        "--region", "O'Higgins",
    )  # fmt: skip
    qr = cli_env / "afiche.png"
    out = barrio_cli(capsys, "invite", "barrio-estacion-rancagua", "--qr", str(qr))
    telegram, whatsapp = [line for line in out.splitlines() if line.startswith("https://")]
    assert telegram.startswith("https://t.me/BarrioTestBot?start=")
    link = urlsplit(whatsapp)
    assert (link.netloc, link.path) == ("wa.me", "/56922223333")
    code = telegram.rsplit("=", 1)[1]
    [text] = parse_qs(link.query)["text"]
    assert code in text and "unirme" in text
    assert (cli_env / "afiche-whatsapp.png").read_bytes()[:4] == b"\x89PNG"


async def test_the_admin_promotes_a_whatsapp_member_by_number(both, twilio, settings):
    import os
    import subprocess
    import sys
    from pathlib import Path

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    script = str(Path(sys.executable).parent / "barrio")
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    added = subprocess.run(
        [script, "coordinators", "add", "--barrio", barrio.slug, "--phone", ROSA],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "Rosa Díaz ahora coordina Barrio Estación" in added.stdout
    assert "MIEMBROS — socios y solicitudes" in text_of_list(await rosa.say("ayuda"))


async def _announce(both, emulator, barrio, text):
    carmen = Phone(emulator, both, 6000, "Carmen")
    async with both.sessions() as session:
        registered = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_id == "6000")
        )
    if registered is None:
        await register(carmen, barrio, business="Librería Carmen")
        await make_coordinator(both, carmen, barrio)
    await carmen.say("/anuncio")
    await carmen.say(text)
    await carmen.tap("Enviar")


async def _whatsapp_delivery(both, fragment):
    from tests.support import FINAL, wait_for_delivery

    return await wait_for_delivery(
        both,
        lambda d: d.channel == "whatsapp" and fragment in d.text and d.status in FINAL,
    )


async def test_status_callbacks_only_move_forward_and_a_failure_on_the_way_is_counted(
    both, twilio, emulator, clock
):
    from models import Delivery, DeliveryStatus

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    await _announce(both, emulator, barrio, "Mañana hay feria en la plaza.")
    await rosa.wait_for("Mañana hay feria")
    sent = await _whatsapp_delivery(both, "Mañana hay feria")
    statuses = await twilio.send_status_callbacks(
        sent.platform_message_id, ["delivered", "sent", "read", "delivered", "read"]
    )
    assert statuses == [200] * 5
    async with both.sessions() as session:
        row = await session.get(Delivery, sent.id)
    assert (row.status, row.receipt) == (DeliveryStatus.SENT, "read")
    # A callback that is not Twilio's changes nothing.
    assert await twilio.send_status_callbacks(
        sent.platform_message_id, ["failed"], error_code=30008, signature="wrong"
    ) == [403]

    # A day later her 24-hour window is closed: Twilio accepts the freeform message, then
    # fails it (63016). The outbox row says so instead of "sent".
    twilio.age_window(ROSA, 25)
    await _announce(both, emulator, barrio, "Corte de agua el lunes.")
    outside = await _whatsapp_delivery(both, "Corte de agua")
    await twilio.settle(outside.platform_message_id)
    async with both.sessions() as session:
        row = await session.get(Delivery, outside.id)
    assert row.status == DeliveryStatus.FAILED and "24-hour window" in row.last_error


async def _sent_while_its_answer_hangs(both, twilio, emulator, barrio, text):
    """Announce `text` with Twilio's answer to the create held back: the message exists at
    Twilio (and can be called back about) while the outbox has not yet written its row."""
    twilio.hang_next(seconds=20, apply=True)
    await _announce(both, emulator, barrio, text)
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not (found := [m for m in twilio.sent(ROSA) if text in m.get("body", "")]):
        assert asyncio.get_running_loop().time() < deadline, "the message never reached Twilio"
        await asyncio.sleep(0.01)
    return found[0]["sid"]


async def test_a_status_callback_that_comes_before_the_send_is_recorded_still_counts(
    both, twilio, emulator, clock
):
    """Twilio calls back as soon as the message moves, which may be before the bot has read
    Twilio's answer to the send and written its row (at speed, half the receipts)."""
    from models import DeliveryStatus, EarlyReceipt
    from tests.support import wait_for_delivery

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)

    sid = await _sent_while_its_answer_hangs(both, twilio, emulator, barrio, "Feria el sábado.")
    assert await twilio.send_status_callbacks(sid, ["delivered", "read"]) == [200] * 2
    twilio.release_hung()
    read = await wait_for_delivery(
        both, lambda d: d.platform_message_id == sid and d.receipt == "read"
    )
    assert read.status == DeliveryStatus.SENT

    # Failed on the way before its row was written: it counts as failed, not as sent.
    sid = await _sent_while_its_answer_hangs(both, twilio, emulator, barrio, "Corte de luz.")
    assert await twilio.send_status_callbacks(sid, ["failed"], error_code=63016) == [200]
    twilio.release_hung()
    failed = await wait_for_delivery(
        both, lambda d: d.platform_message_id == sid and d.status == DeliveryStatus.FAILED
    )
    assert "24-hour window" in failed.last_error
    async with both.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(EarlyReceipt)) == 0


async def test_an_announcement_that_cannot_go_without_a_template_is_counted_in_the_report(
    both, twilio, emulator, clock
):
    """No approved template for announcements, and Rosa has not written for a day: her copy is
    not sent (no REST call), and Carmen's report says one could not go."""
    from datetime import timedelta

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    ana = Phone(emulator, both, 6001, "Ana")
    await register(ana, barrio)
    clock.advance(timedelta(hours=25))
    twilio.age_window(ROSA, 25)
    calls = len(twilio.sent(ROSA))
    await _announce(both, emulator, barrio, "Mañana hay feria en la plaza.")
    carmen = Phone(emulator, both, 6000, "Carmen")
    report = await carmen.wait_for("Tu anuncio ya salió")
    assert "Entregados: 1" in report["text"] and "No se pudo: 1" in report["text"], report
    assert len(twilio.sent(ROSA)) == calls
    refused = await _whatsapp_delivery(both, "Mañana hay feria")
    assert "24-hour window" in refused.last_error


TEMPLATE = "HX" + "ab" * 16


async def test_outside_the_24_hour_window_the_template_goes_or_the_row_says_why(
    settings, twilio, emulator, clock
):
    from datetime import timedelta

    from models import DeliveryStatus

    twilio.add_template(TEMPLATE, "Aviso de tu barrio: {{1}}")
    runtime = Runtime(
        _with_whatsapp(settings, twilio, twilio_template_announcement=TEMPLATE), clock=clock
    )
    await runtime.start()
    try:
        twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
        barrio = await make_barrio(runtime, "Barrio Estación", "Rancagua", open_to_all=True)
        rosa = WhatsAppPhone(twilio, runtime, ROSA)
        await _register(rosa, barrio.invite_code)
        clock.advance(timedelta(hours=25))  # she has not written for a day
        twilio.age_window(ROSA, 25)
        calls = len(twilio.sent(ROSA))
        await _announce(runtime, emulator, barrio, "Mañana hay feria en la plaza.")
        templated = await _whatsapp_delivery(runtime, "Mañana hay feria")
        assert templated.status == DeliveryStatus.SENT
        [message] = twilio.sent(ROSA)[calls:]
        assert message["content_sid"] == TEMPLATE and not message.get("body", "").startswith("📣")
        assert "Mañana hay feria en la plaza." in message["content_variables"]["1"]

        # No template for meeting invitations: refused with the reason, no REST call made.
        from tests.test_meetings import _call_meeting

        carmen = Phone(emulator, runtime, 6000, "Carmen")
        carmen.read = len(emulator.sent(6000))
        await _call_meeting(carmen, when="viernes 19:00")
        await carmen.tap("Enviar invitación")
        refused = await _whatsapp_delivery(runtime, "Te invitan a una reunión")
        assert refused.status == DeliveryStatus.FAILED
        assert "no WhatsApp template for meeting messages" in refused.last_error
        assert len(twilio.sent(ROSA)) == calls + 1
    finally:
        await runtime.stop()


async def test_a_member_who_writes_again_after_a_day_opens_her_window_again(
    both, twilio, emulator, clock
):
    from datetime import timedelta

    from models import DeliveryStatus

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    clock.advance(timedelta(hours=25))
    twilio.age_window(ROSA, 25)
    before = clock()
    await rosa.say("hola")  # her message opens a new 24-hour window, here and at Twilio
    async with both.sessions() as session:
        wrote = await session.scalar(
            select(ChannelIdentity.last_inbound_at).where(ChannelIdentity.external_id == ROSA)
        )
    assert wrote is not None and before <= wrote <= clock()
    # No template is configured, so only an open window lets the announcement go.
    await _announce(both, emulator, barrio, "Mañana hay feria en la plaza.")
    await rosa.wait_for("Mañana hay feria")
    sent = await _whatsapp_delivery(both, "Mañana hay feria")
    assert sent.status == DeliveryStatus.SENT


async def test_a_whatsapp_member_gives_her_number_as_her_phone_in_one_step(both, twilio):
    """Walking the demo: Rosa had to type the nine digits she writes from every day."""
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    profile = await rosa.say("perfil")
    asked = await rosa.say(option_number(profile, "Teléfono"))
    saved = await rosa.say(option_number(asked, f"📱 Usar mi WhatsApp ({ROSA})"))
    assert ROSA in text_of_list(saved)
    async with both.sessions() as session:
        member = await session.scalar(select(Member))
    assert member.phone == ROSA
    # Once it is her phone, it is not offered again.
    asked = await rosa.say(option_number(await rosa.say("perfil"), "Teléfono"))
    assert "Usar mi WhatsApp" not in text_of_list(asked)


async def test_baja_on_whatsapp_erases_the_number_with_everything_else(both, twilio, caplog):
    from tests.test_erasure import _dump

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    await rosa.say("directorio")
    choices = await rosa.say("BAJA")
    confirm = await rosa.say(option_number(choices, "Borrar todos mis datos"))
    done = text_of_list(await rosa.say(option_number(confirm, "Sí, borrar todo")))
    assert "borr" in done.casefold()
    dump = await _dump(both)
    assert "barrio estación" in dump  # the dump (case-folded) does hold the database
    for trace in (ROSA, ROSA.lstrip("+"), "Rosa Díaz", "Verdulería Rosa"):
        assert trace.casefold() not in dump, trace
    assert ROSA not in caplog.text and "Rosa Díaz" not in caplog.text


async def test_a_conversation_on_whatsapp_logs_no_line_per_request_at_info(both, twilio, caplog):
    import logging

    from bot.logs import quiet_libraries

    quiet_libraries()  # as `barrio run` configures logging
    caplog.set_level(logging.INFO)
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    for typed in ("ayuda", "perfil", "directorio"):
        assert await rosa.say(typed)
    assert len(twilio.sent(ROSA)) >= 8  # each answer went through the twilio client
    assert not [r for r in caplog.records if r.name.startswith("twilio")]


async def test_a_whatsapp_member_raises_an_alert_that_expires_rather_than_arrive_late(
    both, twilio, emulator
):
    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    ana = Phone(emulator, both, 6001, "Ana")
    await register(ana, barrio)
    kinds = await rosa.say("alerta")
    await rosa.say(option_number(kinds, "Incendio"))
    located = await rosa.say("Sale humo del local 3")
    confirm = await rosa.say(option_number(located, "Seguir sin ubicación"))
    assert "133" in text_of_list(await rosa.say(option_number(confirm, "Enviar alerta")))
    alert = await ana.wait_for("Sale humo del local 3")
    assert "Rosa Díaz" in alert["text"]
    # The other way: Ana's alert reaches Rosa on WhatsApp with a validity period.
    await ana.say("/alerta")
    await ana.tap("Robo")
    await ana.say("Forzaron la reja del local 12")
    await ana.tap("Seguir sin ubicación")
    await ana.tap("Enviar alerta")
    await rosa.wait_for("Forzaron la reja del local 12")
    [sent] = [m for m in twilio.sent(ROSA) if "Forzaron la reja" in (m.get("body") or "")]
    assert sent["validity_period"] == 3600


async def test_two_meetings_listed_at_once_number_on_and_the_number_answers_the_right_one(
    both, twilio, emulator
):
    from models import Rsvp
    from tests.test_meetings import _call_meeting

    barrio = await make_barrio(both, "Barrio Estación", "Rancagua", open_to_all=True)
    rosa = WhatsAppPhone(twilio, both, ROSA)
    await _register(rosa, barrio.invite_code)
    carmen = Phone(emulator, both, 6000, "Carmen")
    await register(carmen, barrio, business="Librería Carmen")
    await make_coordinator(both, carmen, barrio)
    for when in ("jueves 19:00", "viernes 19:00"):
        await _call_meeting(carmen, when=when)
        await carmen.tap("Enviar invitación")
    await rosa.wait_for("viernes 27 de noviembre")  # both invitations are in
    cards = (await rosa.say("reuniones"))[-2:]
    assert "jueves 26" in cards[0] and "*1.* ✅ Asistiré" in cards[0]
    assert "viernes 27" in cards[1] and "*5.* ✅ Asistiré" in cards[1]
    # Its label is under both cards: which one is asked, with WhatsApp's numbers.
    [which] = await rosa.say("asistire")
    assert "«✅ Asistiré» está en varios mensajes de arriba" in which
    assert "Escribe el número del que quieras: 1 o 5." in which and "Tócalo" not in which
    await rosa.say("5")  # Asistiré, under the second card: Friday's meeting
    async with both.sessions() as session:
        answered = await session.scalars(select(Rsvp.meeting_id))
        meetings = await session.execute(
            select(Meeting.id, Meeting.starts_at).order_by(Meeting.starts_at)
        )
        (_, _), (friday, _) = meetings.all()
        assert answered.all() == [friday]


async def test_a_burst_of_webhooks_is_handled_a_few_people_at_a_time_each_one_by_one(
    settings, twilio, clock
):
    runtime = Runtime(_with_whatsapp(settings, twilio, whatsapp_concurrency=2), clock=clock)
    await runtime.start()
    twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
    try:
        handle, in_turn, most, seen = runtime.dialogue.handle, 0, 0, []
        busy: set[str] = set()

        async def counted(inbound, receipt=None):
            nonlocal in_turn, most
            assert inbound.sender_id not in busy, "two turns of one person at once"
            busy.add(inbound.sender_id)
            in_turn += 1
            most = max(most, in_turn)
            seen.append((inbound.sender_id, inbound.text))
            try:
                await asyncio.sleep(0.02)
                return await handle(inbound, receipt)
            finally:
                in_turn -= 1
                busy.discard(inbound.sender_id)

        runtime.dialogue.handle = counted
        numbers = [f"+5691111{i:04d}" for i in range(6)]
        items = [{"number": n, "body": body} for body in ("hola", "ayuda") for n in numbers]
        statuses = await twilio.send_many(items, concurrency=12)
        assert set(statuses) == {200}
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            if len(seen) == len(items):
                break
            await asyncio.sleep(0.02)
        assert len(seen) == len(items) and most == 2
        for number in numbers:
            assert sorted(text for who, text in seen if who == number) == ["ayuda", "hola"]
    finally:
        await runtime.stop()
