"""The demo's terminal prints a message that reaches someone while the prompt waits at once,
not after the next line typed (where it would read as the answer to that line)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from typing import TextIO

import pytest

from bot.demo import CARMEN, Terminal
from bot.emulator.twilio import TwilioEmulator
from tests.support import WAIT_S, make_barrio, make_coordinator, register


@pytest.fixture
def keyboard(monkeypatch) -> Iterator[TextIO]:
    """What the terminal reads as its standard input: a pipe the test types into."""
    read_end, write_end = os.pipe()
    with open(read_end, encoding="utf-8") as typed, open(write_end, "w", encoding="utf-8") as keys:
        monkeypatch.setattr(sys, "stdin", typed)
        yield keys


async def _printed(capsys, so_far: list[str], fragment: str) -> str:
    """Everything printed until `fragment` shows (it is printed from other tasks)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while fragment not in "".join(so_far):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{fragment!r} never printed: {''.join(so_far)[-300:]!r}")
        so_far.append(capsys.readouterr().out)
        await asyncio.sleep(0.01)
    return "".join(so_far)


async def test_a_notice_that_arrives_while_the_prompt_waits_is_printed_at_once(
    runtime, emulator, phone, capsys, keyboard
):
    barrio = await make_barrio(runtime, "Barrio Comercial Rancagua")
    carmen = phone(CARMEN.user_id, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    terminal = Terminal(emulator, TwilioEmulator(), runtime, barrio.invite_code, 1)
    chatting = asyncio.create_task(terminal.loop())
    printed: list[str] = []
    try:
        await _printed(capsys, printed, "Ana> ")  # the prompt waits; nothing more is typed
        beto = phone(5010, "Beto")  # someone else asks to join, on another phone
        await register(beto, barrio, business="Bazar Beto")
        shown = await _printed(capsys, printed, "Nueva solicitud para Barrio Comercial Rancagua")
        late = shown[shown.index("Ana> ") :]
        assert late.startswith("Ana> \n🤖 Barrio Conecta (a Carmen):\nNueva solicitud")
        assert "👤 Beto" in late and "[1] ✅ Aprobar" in late
        assert late.endswith("Ana> ")  # and the prompt again, below it
    finally:
        keyboard.write(":salir\n")
        keyboard.flush()
        await asyncio.wait_for(chatting, WAIT_S)


async def test_the_buttons_of_messages_shown_together_number_on_and_each_can_be_tapped(
    runtime, emulator, phone, capsys, keyboard
):
    """Walking the demo: /asistencia shows one message per meeting, each numbered from [1],
    and a number tapped only the last one's buttons."""
    from tests.test_meetings import _call_meeting

    barrio = await make_barrio(runtime, "Barrio Comercial Rancagua", open_to_all=True)
    carmen = phone(CARMEN.user_id, "Carmen")
    await register(carmen, barrio)
    await make_coordinator(runtime, carmen, barrio)
    for when in ("jueves 19:00", "viernes 19:00"):
        await _call_meeting(carmen, when=when)
        await carmen.tap("Enviar invitación")
    terminal = Terminal(emulator, TwilioEmulator(), runtime, barrio.invite_code, 1)
    chatting = asyncio.create_task(terminal.loop())
    printed: list[str] = []
    try:
        await _printed(capsys, printed, "Ana> ")
        keyboard.write(":carmen\n/asistencia\n")
        keyboard.flush()
        shown = await _printed(capsys, printed, "viernes 27 de noviembre")
        shown = await _printed(capsys, printed, "Carmen> ")
        cards = shown[shown.index("jueves 26 de noviembre") :]
        first = cards[: cards.index("viernes 27 de noviembre")]
        second = cards[cards.index("viernes 27 de noviembre") :]
        moves = [line for line in second.splitlines() if "Cambiar fecha" in line]
        assert "[1]" in first and "[1]" not in second and moves
        number = moves[0].strip().split("]")[0].lstrip("[")
        keyboard.write(f"{number}\n")
        keyboard.flush()
        asked = await _printed(capsys, printed, "¿Cuál es la nueva fecha de")
        assert "(viernes 27 de noviembre" in asked[asked.rindex("¿Cuál es la nueva fecha de") :]
    finally:
        keyboard.write(":salir\n")
        keyboard.flush()
        await asyncio.wait_for(chatting, WAIT_S)
