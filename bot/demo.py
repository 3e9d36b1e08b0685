"""`barrio demo`: the whole system offline, chatted with from a terminal.

Real parts end to end: the python-telegram-bot `Application` polls the local Bot API emulator,
the dialogue core runs on its own SQLite file (`var/demo.sqlite3`, never the real database),
and the outbox dispatcher delivers notices. Only the person's phone is simulated: what you type
is injected into the emulator as a Telegram message, a number taps that button.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import ShiftedClock
from bot.emulator.telegram import TelegramEmulator, serve_emulator
from bot.runtime import Runtime
from bot.settings import DEFAULT_DATA_DIR, Settings, default_database_url
from handlers import admin
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
    ("Rosa Díaz", "Panadería La Espiga", "panaderia"),
    ("Luis Pérez", "Ferretería El Clavo", "ferreteria"),
    ("Marta Rojas", "Almacén Doña Marta", "almacen"),
    ("Jorge Muñoz", "Picada Don Jorge", "comida"),
    ("Paula Soto", "Peluquería Paulita", "belleza"),
)


ANSWER_WAIT_S = 10


class DemoStalled(TimeoutError):
    """The demo's bot did not handle a message in time (not a database problem)."""


@dataclass(frozen=True)
class Persona:
    key: str
    user_id: int
    name: str
    role: str


ANA = Persona("ana", 5002, "Ana", "emprendedora nueva, sin registro")
CARMEN = Persona("carmen", 5001, "Carmen", "coordinadora del barrio de Rancagua")
PERSONAS = {p.key: p for p in (ANA, CARMEN)}


def demo_settings(settings: Settings, base_url: str) -> Settings:
    return settings.model_copy(
        update={
            "database_url": default_database_url(DEFAULT_DATA_DIR, "demo.sqlite3"),
            "telegram_bot_token": SecretStr(DEMO_TOKEN),
            "telegram_api_base_url": base_url,
            "telegram_mode": "polling",
            "public_base_url": None,
        }
    )


async def seed(session: AsyncSession, now: datetime) -> Barrio:
    """The demo barrios, Carmen as coordinator of Rancagua and a few of her neighbours."""
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
    async with serve_emulator(emulator) as base_url:
        # Noon in Santiago, today: quiet hours (22:00–08:00) never hold the demo's notices.
        noon = datetime.now(settings.zone).replace(hour=12, minute=0, second=0, microsecond=0)
        runtime = Runtime(
            demo_settings(settings, base_url), serve_web=False, clock=ShiftedClock(noon)
        )
        await db.upgrade(runtime.engine)
        async with runtime.sessions() as session, session.begin():
            rancagua = await seed(session, runtime.clock())
            members = await session.scalar(select(func.count()).select_from(Member))
        # The neighbours have chatted with the bot before, so invitations can reach them.
        emulator.start_chats(NEIGHBOUR_IDS + i for i in range(1, 1 + len(DEMO_NEIGHBOURS)))
        await runtime.start()
        try:
            await Terminal(emulator, runtime, rancagua.invite_code, int(members or 0)).loop()
        finally:
            await runtime.stop()


class Terminal:
    def __init__(
        self, emulator: TelegramEmulator, runtime: Runtime, invite_code: str, members: int
    ) -> None:
        self.emulator = emulator
        self.runtime = runtime
        self.invite_code = invite_code
        self.members = members
        self.persona = ANA
        self.shown = {p.user_id: 0 for p in PERSONAS.values()}

    def intro(self) -> None:
        print(
            "\nBarrio Conecta — demo sin conexión (bot real contra un Telegram local)\n"
            f"Hay 12 barrios de O'Higgins y {self.members} socios de ejemplo.\n"
            f"Chateas como {ANA.name} ({ANA.role}). Escribe como en Telegram:\n"
            f"  /start {self.invite_code}   entrar con el enlace del afiche de Rancagua\n"
            "  /start                registrarte eligiendo el barrio de la lista\n"
            "  un número             tocar ese botón del último mensaje\n"
            f"  :carmen / :ana        cambiar de persona ({CARMEN.name} es {CARMEN.role})\n"
            "  /alerta /reuniones    como socia; como Carmen también /reunion, /anuncio,\n"
            "  /convocatoria         /asistencia y /miembros (la demo vive al mediodía)\n"
            "  :salir                terminar\n"
        )

    async def loop(self) -> None:
        # Carmen has chatted with the bot before (as any coordinator has), so Telegram lets
        # the bot write to her; that earlier chat is not shown.
        await self.send_as(CARMEN, "/start")
        self.shown = {p.user_id: len(self.emulator.sent(p.user_id)) for p in PERSONAS.values()}
        self.intro()
        loop = asyncio.get_running_loop()
        while True:
            try:
                line = await loop.run_in_executor(None, input, f"{self.persona.name}> ")
            except EOFError:
                print()
                return
            line = line.strip()
            if line in (":salir", ":exit", ":quit"):
                return
            if line.startswith(":") and line[1:] in PERSONAS:
                self.persona = PERSONAS[line[1:]]
                print(f"(ahora eres {self.persona.name}, {self.persona.role})")
                await self.show_new()
                continue
            if line:
                await self.send(line)

    async def send(self, line: str) -> None:
        await self.send_as(self.persona, line)
        await self.show_new()

    async def send_as(self, persona: Persona, line: str) -> None:
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
                f"the bot did not handle {persona.name}'s message within {ANSWER_WAIT_S} s"
            ) from None
        await self.settle_outbox()

    def button(self, user: int, line: str) -> tuple[int, str] | None:
        """A number taps the matching button of the newest message that has buttons."""
        if not (line.isascii() and line.isdigit()):
            return None
        for message in reversed(self.emulator.sent(user)):
            markup = message.get("reply_markup") or {}
            buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
            if buttons:
                index = int(line) - 1
                if 0 <= index < len(buttons):
                    return message["message_id"], buttons[index]["callback_data"]
                return None
        return None

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

    async def show_new(self) -> None:
        others = [p for p in PERSONAS.values() if p != self.persona]
        for persona in [self.persona, *others]:
            messages = self.emulator.sent(persona.user_id)
            for message in messages[self.shown[persona.user_id] :]:
                self.print_message(persona, message)
            self.shown[persona.user_id] = len(messages)

    def print_message(self, persona: Persona, message: dict[str, object]) -> None:
        to = "" if persona == self.persona else f" (a {persona.name})"
        print(f"\n🤖 Barrio Conecta{to}:")
        print(message.get("text") or message.get("caption") or "")
        markup = message.get("reply_markup") or {}
        assert isinstance(markup, dict)
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        for number, button in enumerate(buttons, 1):
            print(f"   [{number}] {button['text']}")
        sys.stdout.flush()
