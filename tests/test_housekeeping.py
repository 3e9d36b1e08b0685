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


async def test_the_scheduled_housekeeping_keeps_deliveries_for_delivery_retention_days(
    settings, clock, emulator, monkeypatch
):
    """DELIVERY_RETENTION_DAYS, read from the environment, is what the runtime's
    housekeeping job prunes finished deliveries by; handled updates go after a day."""
    from bot.runtime import Runtime
    from bot.settings import load_settings
    from models import Delivery, DeliveryStatus, InboundUpdate
    from tests.support import Phone

    monkeypatch.setenv("DELIVERY_RETENTION_DAYS", "3")
    assert load_settings().delivery_retention_days == 3
    runtime = Runtime(settings.model_copy(update={"delivery_retention_days": 3}), clock=clock)
    await runtime.start()
    try:
        ana = Phone(emulator, runtime, 7502, "Ana")
        await ana.say("/alerta")  # a message handled
        async with runtime.sessions() as session, session.begin():
            session.add(
                Delivery(
                    channel="telegram",
                    recipient="7502",
                    text="Mañana hay feria.",
                    not_before=clock(),
                    status=DeliveryStatus.SENT,
                )
            )

        async def counts() -> tuple[int, int]:
            async with runtime.sessions() as session:
                finished = select(func.count()).where(Delivery.status != DeliveryStatus.PENDING)
                return (
                    int(await session.scalar(finished.select_from(Delivery)) or 0),
                    int(await session.scalar(select(func.count()).select_from(InboundUpdate)) or 0),
                )

        kept = await counts()
        assert kept[0] > 0 and kept[1] > 0
        clock.advance(timedelta(days=2))
        await runtime._prune_deliveries()
        await runtime._forget_inbound()
        assert (await counts())[0] == kept[0]  # within the 3 days
        assert (await counts())[1] == 0  # handled updates: a day
        clock.advance(timedelta(days=2))
        await runtime._prune_deliveries()
        assert (await counts())[0] == 0
    finally:
        await runtime.stop()
