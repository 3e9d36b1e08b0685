"""The dialogue core without a transport: inputs no Telegram client can produce, but a WhatsApp
webhook or a bug can (empty text, 10,000 characters), and the small dense helpers."""

from __future__ import annotations

import pytest

from handlers.core import Inbound, InboundKind, clean_line, fold, parse_id
from handlers.dialogue import Dialogue
from handlers.profile import chilean_phone
from models import db
from tests.support import ShiftedClock
from tests.support import snapshot as _snapshot


class _Sessions:
    def __init__(self, sessions):
        self.sessions = sessions


@pytest.fixture
async def dialogue(clean_database):
    engine = db.create_engine(clean_database)
    clock = ShiftedClock()
    yield Dialogue(db.session_factory(engine, clock), "BarrioTestBot", clock=clock)
    await engine.dispose()


async def test_empty_and_huge_text_in_registration(dialogue):
    def text(value: str) -> Inbound:
        return Inbound("telegram", "55", InboundKind.TEXT, text=value)

    await dialogue.handle(Inbound("telegram", "55", InboundKind.COMMAND, command="registro"))
    before = await _snapshot(_Sessions(dialogue.sessions))
    assert "muy corto" in (await dialogue.handle(text("")))[0].text
    assert "muy largo" in (await dialogue.handle(text("á" * 10_000)))[0].text
    assert "muy largo" in (await dialogue.handle(text("🙂" * 10_000)))[0].text
    assert await _snapshot(_Sessions(dialogue.sessions)) == before


async def test_a_crashing_handler_rolls_back_and_apologises(dialogue, monkeypatch):
    from handlers import dialogue as dialogue_module

    async def boom(turn, args):
        turn.enter("reg", "name", name="half written")
        raise RuntimeError("bug")

    monkeypatch.setitem(dialogue_module.COMMANDS, "registro", boom)
    before = await _snapshot(_Sessions(dialogue.sessions))
    replies = await dialogue.handle(
        Inbound("telegram", "56", InboundKind.COMMAND, command="registro")
    )
    assert replies[0].text.startswith("Uy, algo falló")
    assert await _snapshot(_Sessions(dialogue.sessions)) == before


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("9 1234 5678", "+56912345678"),
        ("+56 9 1234-5678", "+56912345678"),
        ("(72) 223 4567", "+56722234567"),
        ("56912345678", "+56912345678"),
        ("12345", None),
        ("091234567", None),
        ("９１２３４５６７８", None),
        ("", None),
    ],
)
def test_chilean_phone(typed, expected):
    assert chilean_phone(typed) == expected


def test_text_helpers():
    assert fold("  Peñalolén ÁREA ") == "penalolen area"
    assert clean_line("a\n\tb\x00  c") == "a b c"
    assert parse_id("42") == 42
    assert parse_id("²") is None and parse_id("1" * 13) is None and parse_id("") is None
    assert parse_id(str(2**31 - 1)) == 2**31 - 1 and parse_id("999999999999") is None
