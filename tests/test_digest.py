"""The weekly digest: opt-in with /resumen, Mondays at 09:00 in the barrio's zone, the week's
meetings with one's own answer, open calls with days left, new members; nothing to say, no
message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models import ReminderKind, ReminderStatus
from tests.support import text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_meetings import _call_meeting
from tests.test_reminders import _publish_call, _reminders, outbox_idle, settle_reminders

# Monday 30 November 2026, 09:00 in Santiago (UTC-3).
MONDAY_9 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def digests(phone) -> list[str]:
    return [t for t in phone.texts() if "Tu resumen de la semana" in t]


async def test_a_member_who_asked_gets_the_week_on_monday_morning(runtime, phone, clock):
    _, carmen, (ana, beto, _) = await _barrio_with_people(runtime, phone)
    assert "Ahora no lo recibes" in text_of(await ana.say("/resumen"))
    assert "lunes a las 9:00" in text_of(await ana.tap("Quiero recibirlo"))
    await _call_meeting(carmen, when="3/12 19:00")
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    await _publish_call(carmen, ana)

    planned = await _reminders(runtime, ReminderKind.DIGEST)
    assert [r.due_at for r in planned] == [MONDAY_9]
    await settle_reminders(runtime, clock, MONDAY_9 + timedelta(seconds=5))
    digest = (await ana.wait_for("Tu resumen de la semana"))["text"]
    assert (
        "jueves 3 de diciembre a las 19:00: Reunión mensual de socios (Barrio Estación). "
        "Tu respuesta: Asistiré" in digest
    )
    assert "Fondo Barrios 2027: ⏳ Quedan 15 días" in digest
    assert "Socios nuevos en los últimos 7 días: 3" in digest  # Carmen, Beto and Rosa
    await outbox_idle(runtime, clock)
    assert digests(beto) == [] and digests(carmen) == []
    # The next Monday is planned as this one fires.
    assert [(r.due_at, r.status) for r in await _reminders(runtime, ReminderKind.DIGEST)] == [
        (MONDAY_9, ReminderStatus.FIRED),
        (MONDAY_9 + timedelta(days=7), ReminderStatus.PENDING),
    ]

    # Turned off: the next one does not come.
    await ana.say("/resumen")
    assert "ya no te llegará" in text_of(await ana.tap("No quiero recibirlo"))
    await settle_reminders(runtime, clock, MONDAY_9 + timedelta(days=7, seconds=5))
    await outbox_idle(runtime, clock)
    assert len(digests(ana)) == 1


async def test_nothing_to_report_sends_nothing(runtime, phone, clock):
    _, _, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await ana.say("/resumen")
    await ana.tap("Quiero recibirlo")
    # Two Mondays on, nobody joined in the last week, no meeting, no call.
    await settle_reminders(runtime, clock, MONDAY_9 + timedelta(seconds=5))
    await ana.wait_for("Tu resumen de la semana")
    await settle_reminders(runtime, clock, MONDAY_9 + timedelta(days=7, seconds=5))
    await outbox_idle(runtime, clock)
    assert len(digests(ana)) == 1  # the first: the barrio's members joined that week
    second = (await _reminders(runtime, ReminderKind.DIGEST))[1]
    assert second.status == ReminderStatus.FIRED and second.recipients == 0
