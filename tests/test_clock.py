"""One clock: every stamp the bot writes comes from the clock the runtime was given.

The runtime here lives on a winter Tuesday of 2031, far from both the day the suite was
written and the day it runs: a row stamped with the wall clock stands out by years.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import ShiftedClock
from models import Base
from models.entities import UtcDateTime
from tests.support import text_of, wait_for_delivery
from tests.test_broadcasts import _barrio_with_people

# Re-run under this module's far-away clock: it once passed only near 2026-11-24.
from tests.test_housekeeping import (  # noqa: F401
    test_unfinished_registrations_are_forgotten_after_a_week,
)
from tests.test_meetings import _call_meeting

FAR = datetime(2031, 6, 17, 16, 0, tzinfo=UTC)  # Tuesday, noon in Santiago (UTC-4)


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock(FAR)


async def test_every_stamp_comes_from_the_runtime_clock(runtime, phone, clock):
    _, carmen, (ana, beto, _rosa) = await _barrio_with_people(runtime, phone)
    await carmen.say("/anuncio")
    await carmen.say("Corte de agua el jueves")
    await carmen.tap("Enviar")
    await carmen.wait_for("Tu anuncio ya salió")
    check = await _call_meeting(carmen)
    assert "jueves 19 de junio a las 19:00" in check
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan a una reunión")
    await ana.tap("Asistiré")
    await beto.say("/alerta")
    await beto.tap("Robo")
    await beto.say("Se llevaron una bicicleta")
    await beto.tap("Seguir sin ubicación")
    assert "133" in text_of(await beto.tap("Enviar alerta"))
    await wait_for_delivery(runtime, lambda d: d.sent_at is not None and "🚨" in d.text)

    stamps = await _every_stamp(runtime)
    assert {table for table, _, _ in stamps} >= {
        "barrios",
        "members",
        "memberships",
        "conversations",
        "deliveries",
        "announcements",
        "security_alerts",
        "meetings",
        "rsvps",
    }
    # Meetings are days ahead, quiet hours hold notices until morning and the weekly digest
    # is planned for next Monday: a week of slack, against the years that separate this clock
    # from the wall clock.
    near = [(t, c, v) for t, c, v in stamps if abs(v - clock()) <= timedelta(days=8)]
    assert near == stamps


async def _every_stamp(runtime) -> list[tuple[str, str, datetime]]:
    found = []
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, UtcDateTime)]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                found += [
                    (table.name, column.name, value)
                    for column, value in zip(columns, row, strict=True)
                    if value is not None
                ]
    return found
