"""Each barrio in its own time zone: Magallanes (America/Punta_Arenas, UTC-3 all year) beside
Santiago (UTC-4 in winter). Dates typed, dates said, reminders and quiet hours follow the
barrio's zone; "24 hours before" is 24 real hours across a clock change."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ShiftedClock
from handlers import admin, reminders
from models import Delivery, Meeting, Reminder, ReminderKind
from tests.support import text_of
from tests.test_broadcasts import _barrio_with_people
from tests.test_cli import barrio as barrio_cli
from tests.test_meetings import _call_meeting
from tests.test_reminders import settle_reminders

SANTIAGO = ZoneInfo("America/Santiago")


@pytest.fixture
def clock() -> ShiftedClock:
    # Tuesday 16 June 2026, 12:00 in Santiago (UTC-4), 13:00 in Punta Arenas (UTC-3).
    return ShiftedClock(datetime(2026, 6, 16, 16, 0, tzinfo=UTC))


async def _in_punta_arenas(runtime, barrio):
    async with runtime.sessions() as session, session.begin():
        row = await admin.require_barrio(session, barrio.slug)
        await admin.set_timezone(
            session, row, "America/Punta_Arenas", runtime.clock(), runtime.settings.zone
        )


async def test_a_magallanes_barrio_reads_says_and_reminds_in_its_own_zone(runtime, phone, clock):
    austral, pilar, (ana, _, _) = await _barrio_with_people(
        runtime, phone, "Barrio Austral", "Punta Arenas", first=6200
    )
    _, carmen, _ = await _barrio_with_people(runtime, phone, first=6300)
    await _in_punta_arenas(runtime, austral)

    assert "jueves 18 de junio a las 19:00" in await _call_meeting(pilar)
    await pilar.tap("Enviar invitación")
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    async with runtime.sessions() as session:
        starts = {m.barrio_id: m.starts_at for m in (await session.scalars(select(Meeting))).all()}
    assert starts[austral.id] == datetime(2026, 6, 18, 22, 0, tzinfo=UTC)  # 19:00 at UTC-3
    assert sorted(starts.values())[-1] == datetime(2026, 6, 18, 23, 0, tzinfo=UTC)  # UTC-4

    invite = await ana.wait_for("Te invitan")
    assert "jueves 18 de junio a las 19:00" in invite["text"]
    await settle_reminders(runtime, clock, datetime(2026, 6, 17, 22, 0, 5, tzinfo=UTC))
    reminder = await ana.wait_for("Recordatorio de reunión")
    assert "mañana jueves 18 de junio a las 19:00" in reminder["text"]


async def test_quiet_hours_follow_the_barrio_zone(runtime, phone, clock):
    austral, pilar, (ana, _, _) = await _barrio_with_people(
        runtime, phone, "Barrio Austral", "Punta Arenas", first=6200
    )
    await _in_punta_arenas(runtime, austral)
    # 21:30 in Santiago is 22:30 in Punta Arenas: inside Ana's quiet hours (22:00–08:00).
    clock.advance(datetime(2026, 6, 17, 1, 30, tzinfo=UTC) - clock())
    await pilar.say("/anuncio")
    await pilar.say("Mañana hay corte de luz en la calle Bories.")
    assert "Enviando a 3 socios" in text_of(await pilar.tap("Enviar"))
    async with runtime.sessions() as session:
        held = (await session.scalars(select(Delivery.not_before).distinct())).all()
    # 08:00 in Punta Arenas (11:00 UTC), not in Santiago (12:00 UTC).
    assert held == [datetime(2026, 6, 17, 11, 0, tzinfo=UTC)]


async def test_24_hours_before_is_24_real_hours_across_the_april_clock_change(runtime):
    """Sunday 5 April 2026 at 19:00 in Santiago is UTC-4; the day before at 19:00 was UTC-3.
    The 24-hour reminder falls at 20:00 on Saturday, 24 real hours before."""
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name="Barrio Abril", comuna="Rengo", region="O'Higgins", open_to_all=True
        )
        meeting = Meeting(
            barrio=barrio,
            title="Reunión",
            starts_at=datetime(2026, 4, 5, 23, 0, tzinfo=UTC),
            place="Sede",
        )
        session.add(meeting)
        await session.flush()
        await reminders.plan_meeting(session, meeting, datetime(2026, 3, 1, tzinfo=UTC))
        due = (
            await session.scalars(
                select(Reminder.due_at)
                .where(Reminder.kind == ReminderKind.MEETING)
                .order_by(Reminder.due_at)
            )
        ).all()
    assert due == [meeting.starts_at - timedelta(hours=24), meeting.starts_at - timedelta(hours=2)]
    assert due[0].astimezone(SANTIAGO).strftime("%a %H:%M") == "Sat 20:00"


def test_the_admin_sets_a_barrio_zone_and_its_reminders(cli_env, capsys):
    barrio_cli(
        capsys, "barrios", "create", "--name", "Barrio Austral", "--comuna", "Punta Arenas",
        "--region", "Magallanes",
    )  # fmt: skip
    slug = "barrio-austral-punta-arenas"
    out = barrio_cli(
        capsys, "barrios", "set", slug, "--timezone", "America/Punta_Arenas", "--reminders", "48,3"
    )
    assert "zona horaria America/Punta_Arenas; las reuniones se recuerdan 48 h, 3 h antes" in out
    listing = barrio_cli(capsys, "barrios", "list")
    assert "America/Punta_Arenas\t48h,3h" in listing
    for wrong in (["--timezone", "Chile/Magallanes_Sur"], ["--reminders", "500"], []):
        with pytest.raises(SystemExit) as stopped:
            barrio_cli(capsys, "barrios", "set", slug, *wrong)
        assert stopped.value.code == 2
    assert "America/Punta_Arenas\t48h,3h" in barrio_cli(capsys, "barrios", "list")
    assert "no se recuerdan" in barrio_cli(capsys, "barrios", "set", slug, "--reminders", "none")


async def test_a_coordinator_of_two_zones_types_each_meeting_in_its_barrios_zone(
    runtime, phone, clock
):
    from tests.support import make_coordinator

    austral, pilar, _ = await _barrio_with_people(
        runtime, phone, "Barrio Austral", "Punta Arenas", first=6200
    )
    await _in_punta_arenas(runtime, austral)
    _, carmen, _ = await _barrio_with_people(runtime, phone, first=6300)  # Santiago, joined first
    await pilar.say(f"/start {austral.invite_code}")
    await make_coordinator(runtime, carmen, austral)
    await carmen.say("/reunion")
    await carmen.tap("Barrio Austral")
    await carmen.say("Reunión austral")
    assert "jueves 18 de junio a las 19:00" in text_of(await carmen.say("jueves 19:00"))
    await carmen.tap("Sí, está bien")
    await carmen.say("Sede")
    await carmen.tap("Sin temario")
    await carmen.tap("Enviar invitación")
    async with runtime.sessions() as session:
        meeting = await session.scalar(select(Meeting).where(Meeting.barrio_id == austral.id))
    assert meeting.starts_at == datetime(2026, 6, 18, 22, 0, tzinfo=UTC)  # 19:00 at UTC-3


def test_a_zone_change_is_refused_while_meetings_are_ahead(cli_env, capsys):
    import asyncio

    from models import Barrio, db
    from models.entities import utcnow

    barrio_cli(
        capsys, "barrios", "create", "--name", "Barrio Austral", "--comuna", "Punta Arenas",
        "--region", "Magallanes",
    )  # fmt: skip

    async def add_meeting() -> None:
        engine = db.create_engine(os.environ["DATABASE_URL"])
        async with db.session_factory(engine, utcnow)() as session, session.begin():
            barrio = await session.scalar(select(Barrio))
            session.add(
                Meeting(
                    barrio=barrio,
                    title="Reunión",
                    starts_at=utcnow() + timedelta(days=3),
                    place="Sede",
                )
            )
        await engine.dispose()

    asyncio.run(add_meeting())
    with pytest.raises(SystemExit) as stopped:
        barrio_cli(
            capsys, "barrios", "set", "barrio-austral-punta-arenas", "--timezone",
            "America/Punta_Arenas",
        )  # fmt: skip
    assert stopped.value.code == 2
    assert "tiene reuniones por delante (1)" in capsys.readouterr().err
