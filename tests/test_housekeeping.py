"""Housekeeping the scheduler runs, and the CSV export's spreadsheet safety."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from handlers.admin import spreadsheet_safe
from handlers.registration import forget_abandoned
from models import Conversation
from tests.support import make_barrio


async def test_unfinished_registrations_are_forgotten_after_a_week(runtime, phone, clock):
    barrio = await make_barrio(runtime)
    ana = phone(7501, "Ana")
    await ana.say(f"/start {barrio.invite_code}")
    await ana.say("Ana Pérez")
    assert await forget_abandoned(runtime.sessions, clock() + timedelta(days=6)) == 0
    assert await forget_abandoned(runtime.sessions, clock() + timedelta(days=8)) == 1
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 0


def test_spreadsheet_formulas_are_defused():
    assert spreadsheet_safe('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert spreadsheet_safe("+56912345678") == "'+56912345678"
    assert spreadsheet_safe("Almacén Ana") == "Almacén Ana"
