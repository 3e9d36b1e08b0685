"""A person's phone for end-to-end tests: types and taps into the emulator, reads the bot back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bot.clock import ShiftedClock as ShiftedClock
from bot.emulator.telegram import TelegramEmulator
from bot.runtime import Runtime
from handlers import admin
from models import Barrio, Base, Delivery, Member, Membership
from scheduler import outbox as scheduler_outbox

TOKEN = "424242:TEST-token-barrio"
BOT_ID = 424242
BOT_USERNAME = "BarrioTestBot"
WAIT_S = 10


class Phone:
    def __init__(self, emulator: TelegramEmulator, runtime: Runtime, user_id: int, name: str):
        self.emulator = emulator
        self.runtime = runtime
        self.user_id = user_id
        self.name = name
        self.read = 0
        emulator.user(user_id, first_name=name)

    # --- acting ------------------------------------------------------------------------
    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self._handled(self.emulator.send_text(self.user_id, text))

    async def tap(self, label: str) -> list[dict[str, Any]]:
        """Tap the button whose text contains `label`, on the newest message offering it.
        Two such buttons on that message ("Acepto" in "❌ No acepto" too) must be told apart
        by the whole label."""
        wanted = label.casefold()
        for message in reversed(self.emulator.sent(self.user_id)):
            matching = [b for b in buttons(message) if wanted in b["text"].casefold()]
            if len(matching) > 1:
                exact = [b for b in matching if _without_symbols(b["text"]) == wanted]
                if len(exact) != 1:
                    labels = [b["text"] for b in matching]
                    raise AssertionError(f"{label!r} matches several buttons: {labels}")
                matching = exact
            if matching:
                update = self.emulator.tap(
                    self.user_id, message["message_id"], matching[0]["callback_data"]
                )
                return await self._handled(update)
        raise AssertionError(f"no button {label!r}; last messages: {self.texts()[-3:]}")

    async def tap_data(
        self, message_id: int, data: str, *, forge: bool = False
    ) -> list[dict[str, Any]]:
        update = self.emulator.tap(self.user_id, message_id, data, forge=forge)
        return await self._handled(update)

    async def send(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        """For updates made by other emulator helpers (photos, stickers, edits…)."""
        return await self._handled(update)

    async def _handled(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.runtime.transport is not None
        await asyncio.wait_for(self.runtime.transport.wait_handled(update["update_id"]), WAIT_S)
        return self.new()

    # --- reading -----------------------------------------------------------------------
    def new(self) -> list[dict[str, Any]]:
        messages = self.emulator.sent(self.user_id)
        fresh, self.read = messages[self.read :], len(messages)
        return fresh

    def texts(self) -> list[str]:
        return [m.get("text") or "" for m in self.emulator.sent(self.user_id)]

    def last(self) -> dict[str, Any]:
        return self.emulator.sent(self.user_id)[-1]

    async def wait_for(self, fragment: str) -> dict[str, Any]:
        """A notice sent through the outbox arrives asynchronously; wait for it."""
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            for message in self.emulator.sent(self.user_id)[self.read :]:
                if fragment.casefold() in (message.get("text") or "").casefold():
                    self.new()
                    return message
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{fragment!r} never reached {self.name}: {self.texts()[-3:]}")
            count = len(self.emulator.sent(self.user_id)) + 1
            try:
                await self.emulator.wait_for_sent(self.user_id, count=count, timeout=0.5)
            except TimeoutError:
                pass


def _without_symbols(text: str) -> str:
    """A button's words: "✅ Acepto" → "acepto"."""
    return " ".join(w for w in text.casefold().split() if any(c.isalnum() for c in w))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


async def make_barrio(
    runtime: Runtime,
    name: str = "Barrio Centro",
    comuna: str = "Rancagua",
    *,
    open_to_all: bool = False,
) -> Barrio:
    async with runtime.sessions() as session, session.begin():
        return await admin.create_barrio(
            session, name=name, comuna=comuna, region="O'Higgins", open_to_all=open_to_all
        )


async def snapshot(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a bad input left the database exactly as it was."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "inbound_updates":
                continue  # the log of what arrived grows with every message, by design
            result = await session.execute(select(table).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(r) for r in result.all()]
    return rows


async def register(
    phone: Phone,
    barrio: Barrio,
    *,
    listed: bool = True,
    business: str = "Almacén Ana",
    category: str = "Almacén",
) -> None:
    await phone.say(f"/start {barrio.invite_code}")
    await phone.say(phone.name)
    await phone.say(business)
    await phone.tap(category)
    await phone.tap("Acepto" if listed else "sin directorio")


async def membership_of(runtime: Runtime, name: str, barrio_id: int) -> Membership:
    """The membership of the member called `name` in that barrio, as the database has it."""
    async with runtime.sessions() as session:
        found = await session.scalar(
            select(Membership)
            .join(Member)
            .where(Member.name == name, Membership.barrio_id == barrio_id)
        )
    assert found is not None, f"{name} has no membership in barrio {barrio_id}"
    return found


async def make_coordinator(runtime: Runtime, phone: Phone, barrio: Barrio) -> None:
    async with runtime.sessions() as session, session.begin():
        await admin.make_coordinator(session, barrio, "telegram", str(phone.user_id))


FINAL = scheduler_outbox.FINAL


async def wait_for_delivery(runtime: Runtime, predicate: Callable[[Delivery], bool]) -> Delivery:
    """The first outbox row matching `predicate`, waiting for the dispatcher to get there."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        async with runtime.sessions() as session:
            rows = (await session.scalars(select(Delivery).order_by(Delivery.id))).all()
        found = next((d for d in rows if predicate(d)), None)
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no such delivery; outbox: {[(d.id, d.status) for d in rows]}")
        await asyncio.sleep(0.01)
