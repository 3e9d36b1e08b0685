"""`/silencio` takes a person's own hours typed as they say them ("de 20 a 8"), next to its
taps; found walking the demo, where "de 20 a 8" got "No te entendí"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.quiet import parse_range
from models import Member
from tests.support import make_barrio, register, snapshot, text_of


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [
        ("de 20 a 8", (20 * 60, 8 * 60)),
        ("20:30 a 7", (20 * 60 + 30, 7 * 60)),
        ("Desde las 22 hasta las 7.", (22 * 60, 7 * 60)),
        ("22-8", (22 * 60, 8 * 60)),
        ("13 a 15 hrs", (13 * 60, 15 * 60)),
        ("de 10 a 7", (22 * 60, 7 * 60)),  # said of the night, not 21 hours of silence
        ("de 12 a 6", (0, 6 * 60)),
        ("de 1 a 7", (60, 7 * 60)),
        ("entre las 22 y las 7", (22 * 60, 7 * 60)),
        ("22 – 7", (22 * 60, 7 * 60)),
        ("de 25 a 8", None),
        ("de 20:75 a 8", None),
        ("de 8 a 8", None),
        ("en la noche", None),
        ("", None),
    ],
)
def test_parse_range(typed, minutes):
    assert parse_range(typed) == minutes


async def test_hours_typed_after_silencio_are_saved_and_bad_ones_change_nothing(runtime, phone):
    barrio = await make_barrio(runtime, open_to_all=True)
    ana = phone(8201, "Ana")
    await register(ana, barrio)
    assert "escribe tu horario" in text_of(await ana.say("/silencio"))
    before = await snapshot(runtime)
    assert "No entendí el horario" in text_of(await ana.say("de 25 a 8"))
    assert await snapshot(runtime) == before
    assert "Horario de silencio: de 20:00 a 08:00" in text_of(await ana.say("de 20 a 8"))
    async with runtime.sessions() as session:
        member = await session.scalar(select(Member).where(Member.name == "Ana"))
    assert (member.quiet_start, member.quiet_end) == (20 * 60, 8 * 60)
    # The menu is offered again: a word typed next is no longer read as hours.
    assert "No entendí el horario" not in text_of(await ana.say("perfil"))
