"""`barrio demo`: the whole system offline, chatted with from a terminal.

Real parts end to end: the python-telegram-bot `Application` polls the local Bot API emulator,
the runtime's web app receives the local Twilio emulator's signed WhatsApp webhooks and the
twilio REST client sends back through it, the dialogue core runs on its own SQLite file
(`var/demo.sqlite3`, never the real database), and the outbox dispatcher delivers notices on
both channels. Only the person's phone is simulated: what you type as Ana or Carmen is injected
into the Telegram emulator as a message (a number taps that button); as Rosa it is posted to the
bot as WhatsApp's webhook (a number stays text: the bot maps it to its numbered list). Nothing
leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot import whatsapp
from bot.clock import ShiftedClock
from bot.emulator.telegram import TelegramEmulator, serve_emulator
from bot.emulator.twilio import TwilioEmulator, serve_twilio_emulator
from bot.emulator.twilio_state import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, SANDBOX_SENDER
from bot.runtime import Runtime
from bot.settings import DEFAULT_DATA_DIR, Settings, default_database_url
from handlers import admin
from handlers.common import and_list
from models import (
    Barrio,
    ChannelIdentity,
    Delivery,
    DeliveryStatus,
    Member,
    Membership,
    MembershipStatus,
    Role,
    db,
)

DEMO_TOKEN = "100200300:DEMO-TOKEN-barrio-conecta"
DEMO_BOT = "BarrioConectaDemoBot"
REGION = "O'Higgins"
# Comunas of O'Higgins in Sercotec's Barrios Comerciales programme.
DEMO_COMUNAS = (
    "Rancagua",
    "Graneros",
    "Rengo",
    "Las Cabras",
    "Placilla",
    "Paredones",
    "Navidad",
    "Santa Cruz",
    "Lolol",
    "La Estrella",
    "Malloa",
    "San Fernando",
)
NEIGHBOUR_IDS = 9000  # Telegram ids of the demo neighbours: 9001, 9002, …
DEMO_NEIGHBOURS = (
    ("Teresa Díaz", "Panadería La Espiga", "panaderia"),
    ("Luis Pérez", "Ferretería El Clavo", "ferreteria"),
    ("Marta Rojas", "Almacén Doña Marta", "almacen"),
    ("Jorge Muñoz", "Picada Don Jorge", "comida"),
    ("Paula Soto", "Peluquería Paulita", "belleza"),
)


ANSWER_WAIT_S = 10
# While the prompt waits, how often the terminal looks for messages that reached someone
# meanwhile: the Telegram emulator wakes it sooner; WhatsApp's has no wake-up to wait on.
LATE_LOOK_S = 0.2
# The demo's WhatsApp sender: far above a real one's pace, so replies never wait on it (the
# emulator enforces no rate of its own here).
DEMO_WHATSAPP_RATE_PER_S = 50.0


class DemoStalled(TimeoutError):
    """The demo's bot did not handle a message in time (not a database problem)."""


@dataclass(frozen=True)
class Persona:
    key: str
    name: str
    who: str  # what they are; where they stand is read from the database (`standing`)
    user_id: int = 0  # on Telegram
    number: str = ""  # on WhatsApp

    @property
    def on_whatsapp(self) -> bool:
        return bool(self.number)

    @property
    def address(self) -> tuple[str, str]:
        """The channel and address their identity row holds."""
        if self.on_whatsapp:
            return whatsapp.CHANNEL, self.number
        return "telegram", str(self.user_id)


ANA = Persona("ana", "Ana", "emprendedora", user_id=5002)
CARMEN = Persona("carmen", "Carmen", "emprendedora", user_id=5001)
ROSA = Persona("rosa", "Rosa", "almacenera en WhatsApp", number="+56961234567")
PERSONAS = {p.key: p for p in (ANA, CARMEN, ROSA)}


def demo_settings(settings: Settings, telegram_url: str, twilio_url: str) -> Settings:
    # No templates from the environment: the demo's Twilio has none approved.
    templates = {name: None for name in Settings.model_fields if name.startswith("twilio_template")}
    return settings.model_copy(
        update={
            "database_url": default_database_url(DEFAULT_DATA_DIR, "demo.sqlite3"),
            "telegram_bot_token": SecretStr(DEMO_TOKEN),
            "telegram_api_base_url": telegram_url,
            "telegram_mode": "polling",
            "public_base_url": None,
            "twilio_account_sid": DEFAULT_ACCOUNT_SID,
            "twilio_auth_token": SecretStr(DEFAULT_AUTH_TOKEN),
            "twilio_whatsapp_from": SANDBOX_SENDER,
            "twilio_api_base_url": twilio_url,
            "whatsapp_rate_per_s": DEMO_WHATSAPP_RATE_PER_S,
            # Carmen is also the demo's administrator: a request to any of the barrios that
            # have no coordinator yet reaches her, as it would reach a real deployment's team.
            "admin_telegram_ids": (str(CARMEN.user_id),),
            "admin_whatsapp_numbers": (),
            # The web app (Twilio's webhook) on a free port of this machine only.
            "host": "127.0.0.1",
            "port": 0,
            **templates,
        }
    )


async def seed(session: AsyncSession, now: datetime) -> Barrio:
    """The demo barrios, Carmen as coordinator of Rancagua and a few of her neighbours (the
    other eleven have no coordinator: their requests go to Carmen as the demo's
    administrator, see `demo_settings`)."""
    existing = await session.scalar(select(Barrio).order_by(Barrio.id).limit(1))
    if existing is not None:
        return existing
    barrios = [
        await admin.create_barrio(
            session,
            name=f"Barrio Comercial {comuna}",
            comuna=comuna,
            region=REGION,
            open_to_all=False,
        )
        for comuna in DEMO_COMUNAS
    ]
    rancagua = barrios[0]
    people = [(CARMEN.name + " Fuentes", "Librería Carmencita", "otro"), *DEMO_NEIGHBOURS]
    for index, (name, business, category) in enumerate(people):
        member = Member(
            name=name,
            business_name=business,
            business_category=category,
            consent_at=now,
            phone=f"+5699000{index:04d}",
            show_phone=index % 2 == 0,
        )
        address = CARMEN.user_id if index == 0 else NEIGHBOUR_IDS + index
        member.identities = [ChannelIdentity(channel="telegram", external_id=str(address))]
        role = Role.COORDINATOR if index == 0 else Role.MEMBER
        member.memberships = [
            Membership(barrio=rancagua, role=role, status=MembershipStatus.ACTIVE, decided_at=now)
        ]
        session.add(member)
    return rancagua


def _forget_demo_database() -> None:
    database = DEFAULT_DATA_DIR / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


async def run_demo(settings: Settings, *, fresh: bool) -> None:
    if fresh:
        _forget_demo_database()
    emulator = TelegramEmulator(token=DEMO_TOKEN, bot_id=100200300, bot_username=DEMO_BOT)
    # Every message the bot sends on WhatsApp is delivered at once (its status callback too).
    twilio = TwilioEmulator(auto_status="delivered")
    twilio.add_number(ROSA.number, profile_name=ROSA.name)
    async with (
        serve_emulator(emulator) as telegram_url,
        serve_twilio_emulator(twilio) as twilio_url,
    ):
        # Noon in Santiago, today: quiet hours (22:00–08:00) never hold the demo's notices.
        noon = datetime.now(settings.zone).replace(hour=12, minute=0, second=0, microsecond=0)
        runtime = Runtime(
            demo_settings(settings, telegram_url, twilio_url),
            serve_web=False,
            clock=ShiftedClock(noon),
        )
        await db.upgrade(runtime.engine)
        async with runtime.sessions() as session, session.begin():
            rancagua = await seed(session, runtime.clock())
            # The sample people only: Ana and Rosa, once registered, are the person trying it.
            members = await session.scalar(
                select(func.count(Member.id.distinct()))
                .join(ChannelIdentity)
                .where(
                    ~ChannelIdentity.external_id.in_(
                        [p.address[1] for p in PERSONAS.values() if p != CARMEN]
                    )
                )
            )
        # The neighbours have chatted with the bot before, so invitations can reach them.
        emulator.start_chats(NEIGHBOUR_IDS + i for i in range(1, 1 + len(DEMO_NEIGHBOURS)))
        await runtime.start()
        try:
            # WhatsApp configured, the runtime serves Twilio's webhook on its (free) web port.
            twilio.set_webhook(f"http://127.0.0.1:{runtime.web_port}/whatsapp")
            terminal = Terminal(emulator, twilio, runtime, rancagua.invite_code, members or 0)
            await terminal.loop()
        finally:
            await runtime.stop()


class Terminal:
    def __init__(
        self,
        emulator: TelegramEmulator,
        twilio: TwilioEmulator,
        runtime: Runtime,
        invite_code: str,
        members: int,
    ) -> None:
        self.emulator = emulator
        self.twilio = twilio
        self.runtime = runtime
        self.invite_code = invite_code
        self.members = members
        self.persona = ANA
        self.shown = {p.key: 0 for p in PERSONAS.values()}
        # The buttons last printed for each persona on Telegram, by the number printed.
        self.numbered: dict[str, list[tuple[int, str]]] = {}
        # Set while the prompt waits for a line: only then are late messages printed, so that
        # they never cut into the answer to what was just typed.
        self.idle = asyncio.Event()

    async def intro(self) -> None:
        join = whatsapp.JOIN_TEXT.format(code=self.invite_code)
        ana, carmen, rosa = [await self.standing(p) for p in (ANA, CARMEN, ROSA)]
        print(
            "\nBarrio Conecta — demo sin conexión (bot real contra un Telegram y un WhatsApp"
            " locales)\n"
            f"Hay 12 barrios de O'Higgins y {self.members} socios de ejemplo.\n"
            f"Chateas como {ANA.name} ({ana}). Escribe como en Telegram:\n"
            f"  /start {self.invite_code}   entrar con el enlace del afiche de Rancagua\n"
            "  /start                registrarte eligiendo el barrio de la lista\n"
            "  un número             tocar ese botón del último mensaje\n"
            f"  :carmen / :ana        cambiar de persona ({CARMEN.name}: {carmen})\n"
            f"  :rosa                 chatear como {ROSA.name} ({rosa}): un número\n"
            "                        responde a la lista numerada; para unirse a Rancagua\n"
            "                        pega el texto del afiche de WhatsApp:\n"
            f"                        {join}\n"
            "  /alerta /reuniones    como socia (en WhatsApp sin /: ALERTA, REUNIONES); como\n"
            "  /convocatoria         Carmen también /reunion, /anuncio, /asistencia y\n"
            "                        /miembros (la demo vive al mediodía)\n"
            "  :salir                terminar\n"
        )

    async def loop(self) -> None:
        # Carmen has chatted with the bot before (as any coordinator has), so Telegram lets
        # the bot write to her; that earlier chat is not shown.
        await self.send_as(CARMEN, "/start")
        if await self.registered(ROSA):
            # Registered in an earlier run: she has written lately, so her 24-hour WhatsApp
            # window is open and broadcasts reach her as text; that message is not shown.
            await self.send_as(ROSA, "ayuda")
        self.shown = {p.key: len(self.messages(p)) for p in PERSONAS.values()}
        await self.intro()
        watcher = asyncio.create_task(self.show_late())
        try:
            await self.read_lines()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def read_lines(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.prompt()
            self.idle.set()
            try:
                # In a thread, so that the event loop (the bot, the emulators, `show_late`)
                # runs while the person thinks; piped input works the same way.
                typed = await loop.run_in_executor(None, sys.stdin.readline)
            finally:
                self.idle.clear()
            if not typed:  # end of input
                print()
                return
            line = typed.strip()
            if line in (":salir", ":exit", ":quit"):
                return
            if line.startswith(":") and line[1:] in PERSONAS:
                self.persona = PERSONAS[line[1:]]
                print(f"(ahora eres {self.persona.name}, {await self.standing(self.persona)})")
                await self.show_new()
                continue
            if line:
                await self.send(line)

    async def send(self, line: str) -> None:
        await self.send_as(self.persona, line)
        await self.show_new()

    def prompt(self) -> None:
        print(f"{self.persona.name}> ", end="", flush=True)

    def unseen(self) -> bool:
        return any(len(self.messages(p)) > self.shown[p.key] for p in PERSONAS.values())

    async def show_late(self) -> None:
        """What reaches anyone while the prompt waits (an announcement's final report, a
        notice from another persona) is printed as it arrives, the prompt again below it:
        otherwise it would show only after the next line, as if it answered that."""
        while True:
            await self.idle.wait()
            with contextlib.suppress(TimeoutError):
                await self.emulator.wait_for(
                    lambda: self.idle.is_set() and self.unseen(), LATE_LOOK_S, "a late message"
                )
            if self.idle.is_set() and self.unseen():
                await self.show_new()
                self.prompt()

    async def registered(self, persona: Persona) -> bool:
        return await self._member(persona) is not None

    async def _member(self, persona: Persona) -> Member | None:
        channel, address = persona.address
        async with self.runtime.sessions() as session:
            return await session.scalar(
                select(Member)
                .join(ChannelIdentity)
                .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == address)
                .options(selectinload(Member.memberships).selectinload(Membership.barrio))
            )

    async def standing(self, persona: Persona) -> str:
        """Who the persona is now: registering, approving or leaving in the demo changes it,
        and the data stays from one run to the next."""
        member = await self._member(persona)
        if member is None:
            return f"{persona.who}, sin registro"
        current = [m for m in member.memberships if m.status == MembershipStatus.ACTIVE]
        coordinated = [m.barrio.name for m in current if m.role == Role.COORDINATOR]
        if coordinated:
            return f"{persona.who}, coordina {and_list(coordinated)}"
        if current:
            return f"{persona.who}, socia de {and_list([m.barrio.name for m in current])}"
        waiting = [
            m.barrio.name for m in member.memberships if m.status == MembershipStatus.PENDING
        ]
        if waiting:
            return f"{persona.who}, espera que la aprueben en {and_list(waiting)}"
        return f"{persona.who}, registrada, sin barrio"

    async def send_as(self, persona: Persona, line: str) -> None:
        if persona.on_whatsapp:
            await self.send_whatsapp(persona, line)
            return
        user = persona.user_id
        self.emulator.user(user, first_name=persona.name)
        button = self.button(user, line)
        if button is not None:
            message_id, data = button
            update = self.emulator.tap(user, message_id, data)
        else:
            update = self.emulator.send_text(user, line)
        assert self.runtime.transport is not None
        try:
            await asyncio.wait_for(
                self.runtime.transport.wait_handled(update["update_id"]), ANSWER_WAIT_S
            )
        except TimeoutError:
            raise DemoStalled(
                f"el bot no alcanzó a atender el mensaje de {persona.name} en {ANSWER_WAIT_S} s"
            ) from None
        await self.settle_outbox()

    async def send_whatsapp(self, persona: Persona, line: str) -> None:
        """Through the emulator's signed webhook, as Twilio posts it; a number stays text."""
        status = await self.twilio.send_text(persona.number, line, profile_name=persona.name)
        sid = self.twilio.last_inbound_sid
        transport = self.runtime.whatsapp
        if status != 200 or sid is None or transport is None:
            raise DemoStalled(f"el webhook de WhatsApp del bot respondió {status} a {persona.name}")
        try:
            await asyncio.wait_for(transport.wait_handled(sid), ANSWER_WAIT_S)
        except TimeoutError:
            raise DemoStalled(
                f"el bot no alcanzó a atender el mensaje de {persona.name} en {ANSWER_WAIT_S} s"
            ) from None
        await self.settle_outbox()

    def button(self, user: int, line: str) -> tuple[int, str] | None:
        """A number taps the button printed with it: the buttons of the messages last shown
        together are numbered on from one message to the next (as /asistencia's meetings),
        so each of them can be tapped."""
        if not (line.isascii() and line.isdigit()):
            return None
        persona = next((p for p in PERSONAS.values() if p.user_id == user), None)
        numbered = self.numbered.get(persona.key, []) if persona is not None else []
        index = int(line) - 1
        return numbered[index] if 0 <= index < len(numbered) else None

    async def settle_outbox(self) -> None:
        """Wait (a few seconds at most) until the dispatcher has sent what is due, so notices
        to others show in the same step."""
        dispatcher = self.runtime.dispatcher
        if dispatcher is None:
            return
        dispatcher.wake()
        for _ in range(500):
            async with self.runtime.sessions() as session:
                busy = await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(
                        Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
                        Delivery.not_before <= self.runtime.clock(),
                    )
                )
            if not busy:
                return
            await asyncio.sleep(0.01)

    def messages(self, persona: Persona) -> list[dict[str, Any]]:
        """What the bot sent this persona: Telegram messages, or WhatsApp bodies."""
        if persona.on_whatsapp:
            return self.twilio.sent(persona.number)
        return self.emulator.sent(persona.user_id)

    async def show_new(self) -> None:
        others = [p for p in PERSONAS.values() if p != self.persona]
        for persona in [self.persona, *others]:
            messages = self.messages(persona)
            numbered: list[tuple[int, str]] = []
            for message in messages[self.shown[persona.key] :]:
                numbered += self.print_message(persona, message, first=len(numbered) + 1)
            self.shown[persona.key] = len(messages)
            if numbered:
                self.numbered[persona.key] = numbered

    def print_message(
        self, persona: Persona, message: dict[str, Any], *, first: int = 1
    ) -> list[tuple[int, str]]:
        """Print one message; returns its buttons as (message id, callback data), in the
        order of their numbers, which start at `first`."""
        if persona == self.persona:
            to = ""
        elif persona.on_whatsapp:
            to = f" (a {persona.name}, por WhatsApp)"
        else:
            to = f" (a {persona.name})"
        print(f"\n🤖 Barrio Conecta{to}:")
        if persona.on_whatsapp:
            # Numbered options are in the body itself ("*1.* …").
            print(message.get("body") or "")
            sys.stdout.flush()
            return []
        print(message.get("text") or message.get("caption") or "")
        markup = message.get("reply_markup") or {}
        assert isinstance(markup, dict)
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        for number, button in enumerate(buttons, first):
            print(f"   [{number}] {button['text']}")
        sys.stdout.flush()
        return [(message["message_id"], button["callback_data"]) for button in buttons]
