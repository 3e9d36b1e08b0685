"""Reminder cases no other test walks through: who the invitation never reached, offsets changed
with a meeting already called (from the bot and from the admin command line), a funding call to
a whole region in two zones, call reminders missed while the bot was stopped, and a reminder
across Chile's September clock change."""

# The set-ups shared with the other test files (tests/test_broadcasts.py and the rest) are
# untyped; this file's own functions are.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.emulator.telegram import TelegramEmulator
from bot.runtime import Runtime
from bot.settings import Settings
from handlers import admin
from handlers.reminders import MEETING_TEMPLATE
from models import Barrio, Delivery, DeliveryStatus, FundingCall, Meeting, ReminderKind, db
from models import ReminderStatus as Status
from scheduler.reminders import ReminderLoop
from tests.support import (
    WAIT_S,
    Phone,
    ShiftedClock,
    make_coordinator,
    register,
    text_of,
    wait_for_delivery,
)
from tests.test_broadcasts import _barrio_with_people
from tests.test_cli import barrio as barrio_cli
from tests.test_meetings import _call_meeting
from tests.test_reminders import (
    DAY_BEFORE,
    THURSDAY_19,
    TWO_HOURS_BEFORE,
    _publish_call,
    _reminders,
    outbox_idle,
    reminders_of,
    settle_reminders,
)
from tests.test_zones import _in_punta_arenas

SANTIAGO = ZoneInfo("America/Santiago")
PUNTA_ARENAS = ZoneInfo("America/Punta_Arenas")
MakePhone = Callable[[int, str], Phone]
SECONDS = timedelta(seconds=5)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> ShiftedClock:
    """Tuesday 24 November 2026 at noon in Santiago, unless the test names another start
    (`parametrize("clock", [start], indirect=True)`)."""
    start = getattr(request, "param", None)
    return ShiftedClock(start) if start is not None else ShiftedClock()


def _local(day: date, hour: int, zone: ZoneInfo = SANTIAGO) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def _a_tuesday_noon_ahead_of_the_real_clock() -> datetime:
    """The admin command line works on the real clock: a meeting it replans must be ahead of
    it too, so this test's Tuesday is one after today, whatever day it runs."""
    day = (datetime.now(UTC) + timedelta(days=1)).astimezone(SANTIAGO).date()
    return _local(day + timedelta(days=(1 - day.weekday()) % 7), 12)


def _loop(runtime: Runtime) -> ReminderLoop:
    assert runtime.reminders is not None
    return runtime.reminders


async def _pending(runtime: Runtime, kind: ReminderKind = ReminderKind.MEETING) -> list[datetime]:
    return [r.due_at for r in await _reminders(runtime, kind) if r.status == Status.PENDING]


# --- 1. a member the invitation never reached ----------------------------------------------
async def test_who_the_invitation_never_reached_is_listed_apart_and_not_reminded(
    runtime: Runtime, phone: MakePhone, clock: ShiftedClock, emulator: TelegramEmulator
) -> None:
    _, carmen, (ana, beto, rosa) = await _barrio_with_people(runtime, phone)
    emulator.block(beto.user_id, notify=False)  # the bot learns it when its invitation fails
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await rosa.wait_for("Te invitan")
    await wait_for_delivery(
        runtime,
        lambda d: (
            d.recipient == str(beto.user_id)
            and d.status in (DeliveryStatus.UNREACHABLE, DeliveryStatus.FAILED)
        ),
    )

    card = text_of(await carmen.say("/asistencia"))
    assert "⏳ Sin responder (2): Ana, Rosa" in card
    assert "📭 No les llegó la invitación (1): Beto" in card

    await settle_reminders(runtime, clock, DAY_BEFORE + SECONDS)
    for person in (ana, rosa):
        assert "Aún no respondes" in (await person.wait_for("Recordatorio de reunión"))["text"]
    await outbox_idle(runtime, clock)
    day_before = (await _reminders(runtime))[0]
    assert (day_before.status, day_before.recipients) == (Status.FIRED, 2)
    async with runtime.sessions() as session:
        for_beto = (
            await session.scalars(
                select(Delivery.status).where(
                    Delivery.template == MEETING_TEMPLATE,
                    Delivery.recipient == str(beto.user_id),
                )
            )
        ).all()
    # Nothing waits to be sent to him: at most a row the outbox marked unreachable at once.
    assert set(for_beto) <= {DeliveryStatus.UNREACHABLE}
    assert reminders_of(beto) == []
    assert "📭 No les llegó la invitación (1): Beto" in text_of(await carmen.say("/asistencia"))


# --- 2. offsets changed with a meeting already called ---------------------------------------
async def test_hours_chosen_with_a_meeting_called_move_its_reminders(
    runtime: Runtime, phone: MakePhone, clock: ShiftedClock
) -> None:
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen)
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    assert await _pending(runtime) == [DAY_BEFORE, TWO_HOURS_BEFORE]

    await carmen.say("/recordatorios")
    saved = text_of(await carmen.tap("Solo 2 h antes"))
    assert "se recuerdan 2 h antes" in saved and "Reuniones próximas actualizadas: 1" in saved
    assert await _pending(runtime) == [TWO_HOURS_BEFORE]

    await carmen.say("/recordatorios")
    saved = text_of(await carmen.tap("48 h y 3 h antes"))
    assert "se recuerdan 48 h y 3 h antes" in saved
    assert "Reuniones próximas actualizadas: 1" in saved
    two_days, three_hours = THURSDAY_19 - timedelta(hours=48), THURSDAY_19 - timedelta(hours=3)
    assert await _pending(runtime) == [two_days, three_hours]

    # Ana notices: reminded at 19:00 on Tuesday and at 16:00 on Thursday, never at the old times.
    await settle_reminders(runtime, clock, two_days + SECONDS)
    first = await ana.wait_for("Recordatorio de reunión")
    assert "jueves 26 de noviembre a las 19:00" in first["text"]
    for old in (DAY_BEFORE, three_hours - timedelta(minutes=1)):
        await settle_reminders(runtime, clock, old + SECONDS)
        await outbox_idle(runtime, clock)
        assert len(reminders_of(ana)) == 1
    await settle_reminders(runtime, clock, three_hours + SECONDS)
    second = await ana.wait_for("Recordatorio de reunión")
    assert "hoy jueves 26 de noviembre a las 19:00" in second["text"]
    await settle_reminders(runtime, clock, TWO_HOURS_BEFORE + SECONDS)
    await outbox_idle(runtime, clock)
    assert len(reminders_of(ana)) == 2


AHEAD = _a_tuesday_noon_ahead_of_the_real_clock()


@pytest.mark.parametrize("clock", [AHEAD], indirect=True, ids=["a-tuesday-ahead"])
async def test_hours_set_by_the_admin_move_the_reminders_of_a_meeting_called(
    runtime: Runtime,
    phone: MakePhone,
    clock: ShiftedClock,
    cli_env: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    barrio, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    await _call_meeting(carmen)  # "jueves 19:00": two days after this Tuesday
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    starts = _local(AHEAD.astimezone(SANTIAGO).date() + timedelta(days=2), 19)
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Meeting.starts_at))).all() == [starts]
    assert await _pending(runtime) == [starts - timedelta(hours=24), starts - timedelta(hours=2)]

    # `barrio` is a command of its own (asyncio.run): here it runs beside the bot's loop.
    out = await asyncio.to_thread(
        barrio_cli, capsys, "barrios", "set", barrio.slug, "--reminders", "48,3"
    )
    assert "las reuniones se recuerdan 48 h, 3 h antes" in out
    two_days, three_hours = starts - timedelta(hours=48), starts - timedelta(hours=3)
    assert await _pending(runtime) == [two_days, three_hours]

    await settle_reminders(runtime, clock, two_days + SECONDS)
    assert "a las 19:00" in (await ana.wait_for("Recordatorio de reunión"))["text"]
    await settle_reminders(runtime, clock, starts - timedelta(hours=24) + SECONDS)
    await outbox_idle(runtime, clock)
    assert len(reminders_of(ana)) == 1
    await settle_reminders(runtime, clock, three_hours + SECONDS)
    assert "hoy jueves" in (await ana.wait_for("Recordatorio de reunión"))["text"]
    await settle_reminders(runtime, clock, starts - timedelta(hours=2) + SECONDS)
    await outbox_idle(runtime, clock)
    assert len(reminders_of(ana)) == 2


# --- 3. a funding call to a whole region ----------------------------------------------------
# Tuesday 16 June 2026 at noon in Santiago (UTC-4); Punta Arenas keeps UTC-3 all year.
JUNE = datetime(2026, 6, 16, 16, 0, tzinfo=UTC)


async def _barrio_in(
    runtime: Runtime,
    phone: MakePhone,
    name: str,
    comuna: str,
    region: str,
    people: list[str],
    first: int,
) -> tuple[Barrio, list[Phone]]:
    async with runtime.sessions() as session, session.begin():
        barrio = await admin.create_barrio(
            session, name=name, comuna=comuna, region=region, open_to_all=True
        )
    phones = []
    for offset, who in enumerate(people):
        person = phone(first + offset, who)
        await register(person, barrio, business=f"Negocio {who}")
        phones.append(person)
    return barrio, phones


def _call_reminders_of(person: Phone) -> list[str]:
    return [t for t in person.texts() if "se acerca el cierre" in t]


@pytest.mark.parametrize("clock", [JUNE], indirect=True, ids=["june"])
async def test_a_call_to_a_region_reminds_each_of_its_barrios_at_ten_in_its_zone(
    runtime: Runtime, phone: MakePhone, clock: ShiftedClock
) -> None:
    austral, (pilar, sofia) = await _barrio_in(
        runtime, phone, "Barrio Austral", "Punta Arenas", "Magallanes", ["Pilar", "Sofía"], 7000
    )
    await _in_punta_arenas(runtime, austral)
    await make_coordinator(runtime, pilar, austral)
    # Natales has no zone of its own yet: BARRIO_TIMEZONE, Santiago.
    _, (tomas,) = await _barrio_in(
        runtime, phone, "Barrio Natales", "Puerto Natales", "Magallanes", ["Tomás"], 7100
    )
    _, _, others = await _barrio_with_people(runtime, phone)  # O'Higgins

    await pilar.say("/convocatoria")
    await pilar.say("Fondo Austral 2026")
    await pilar.say("Financia calefacción para locales de la región.")
    await pilar.say("https://www.sercotec.cl/austral")
    await pilar.tap("Toda la región de Magallanes")
    await pilar.say("hoy")
    assert "Llegará a 2 socios" in text_of(await pilar.say("30/6"))
    await pilar.tap("Publicar")
    await sofia.wait_for("Nueva convocatoria")
    await tomas.wait_for("Nueva convocatoria")

    week, day = date(2026, 6, 23), date(2026, 6, 29)
    planned = [(r.due_at, r.zone) for r in await _reminders(runtime, ReminderKind.FUNDING)]
    assert planned == [
        (_local(week, 10, PUNTA_ARENAS), "America/Punta_Arenas"),  # 13:00 UTC
        (_local(week, 10), "America/Santiago"),  # 14:00 UTC
        (_local(day, 10, PUNTA_ARENAS), "America/Punta_Arenas"),
        (_local(day, 10), "America/Santiago"),
    ]

    await settle_reminders(runtime, clock, _local(week, 10, PUNTA_ARENAS) + SECONDS)
    got = await sofia.wait_for("se acerca el cierre")
    assert "Fondo Austral 2026" in got["text"] and "Quedan 7 días" in got["text"]
    await outbox_idle(runtime, clock)
    assert _call_reminders_of(tomas) == []  # 09:00 in Natales: not yet
    await settle_reminders(runtime, clock, _local(week, 10) + SECONDS)
    assert "Quedan 7 días" in (await tomas.wait_for("se acerca el cierre"))["text"]

    await settle_reminders(runtime, clock, _local(day, 10) + SECONDS)
    for person in (sofia, tomas):
        assert "cierra mañana" in (await person.wait_for("se acerca el cierre"))["text"]
    await outbox_idle(runtime, clock)
    assert len(_call_reminders_of(sofia)) == 2 and len(_call_reminders_of(tomas)) == 2
    for person in others:
        assert _call_reminders_of(person) == []
        assert not any("Fondo Austral" in t for t in person.texts())


# --- 4. call reminders that fell due while the bot was stopped ------------------------------
WEEK_BEFORE_CLOSE = datetime(2026, 12, 8, 13, 0, tzinfo=UTC)  # 10:00 on 8/12, the call closes 15/12
DAY_BEFORE_CLOSE = datetime(2026, 12, 14, 13, 0, tzinfo=UTC)


async def _call_published_then_stopped(
    settings: Settings, emulator: TelegramEmulator, clock: ShiftedClock
) -> list[Phone]:
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    try:
        _, carmen, members = await _barrio_with_people(
            runtime, lambda user_id, name: Phone(emulator, runtime, user_id, name)
        )
        await _publish_call(carmen, members[0])
        for person in members[1:]:
            await person.wait_for("Nueva convocatoria")
        assert await _pending(runtime, ReminderKind.FUNDING) == [
            WEEK_BEFORE_CLOSE,
            DAY_BEFORE_CLOSE,
        ]
    finally:
        await runtime.stop()
    return list(members)


async def _restarted(settings: Settings, clock: ShiftedClock, people: list[Phone]) -> Runtime:
    runtime = Runtime(settings, clock=clock)
    await runtime.start()
    await asyncio.wait_for(_loop(runtime).ready.wait(), WAIT_S)
    for person in people:
        person.runtime = runtime
    await settle_reminders(runtime, clock)
    return runtime


async def test_a_call_reminder_missed_while_stopped_is_sent_once_at_start_if_still_open(
    settings: Settings,
    emulator: TelegramEmulator,
    clock: ShiftedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    members = await _call_published_then_stopped(settings, emulator, clock)
    # Stopped across the 7-day reminder; started again on Wednesday 9 December at noon.
    clock.advance(datetime(2026, 12, 9, 15, 0, tzinfo=UTC) - clock())
    caplog.set_level(logging.INFO, logger="scheduler.reminders")
    runtime = await _restarted(settings, clock, members)
    try:
        for person in members:
            got = await person.wait_for("se acerca el cierre")
            assert "Quedan 6 días" in got["text"]  # worded as it goes out, not as it was due
        await outbox_idle(runtime, clock)
        assert [len(_call_reminders_of(p)) for p in members] == [1, 1, 1]
        week, day = await _reminders(runtime, ReminderKind.FUNDING)
        assert (week.status, day.status) == (Status.FIRED, Status.PENDING)
        assert _loop(runtime).stats.late == 1
        logged = [r.getMessage() for r in caplog.records]
        about = [line for line in logged if line.startswith(f"reminder {week.id} ")]
        assert len(about) == 1 and about[0].startswith(f"reminder {week.id} (funding) fired ")
        assert about[0].endswith("after its due time (the bot was stopped)")

        await settle_reminders(runtime, clock, DAY_BEFORE_CLOSE + SECONDS)
        for person in members:
            assert "cierra mañana" in (await person.wait_for("se acerca el cierre"))["text"]
        await outbox_idle(runtime, clock)
        assert [len(_call_reminders_of(p)) for p in members] == [2, 2, 2]
    finally:
        await runtime.stop()


async def test_call_reminders_all_missed_while_stopped_make_one_message_at_start(
    settings: Settings, emulator: TelegramEmulator, clock: ShiftedClock
) -> None:
    members = await _call_published_then_stopped(settings, emulator, clock)
    # Stopped across both: started again on Monday 14 December at noon, the call still open.
    clock.advance(datetime(2026, 12, 14, 15, 0, tzinfo=UTC) - clock())
    runtime = await _restarted(settings, clock, members)
    try:
        for person in members:
            assert "cierra mañana" in (await person.wait_for("se acerca el cierre"))["text"]
        await outbox_idle(runtime, clock)
        assert [len(_call_reminders_of(p)) for p in members] == [1, 1, 1]
        week, day = await _reminders(runtime, ReminderKind.FUNDING)
        assert (week.status, day.status) == (Status.SKIPPED, Status.FIRED)
    finally:
        await runtime.stop()


@pytest.mark.parametrize(
    ("what", "restart", "notes"),
    [
        # Withdrawn while this bot was stopped by a write that left its reminder rows (the
        # bot's own "Retirar" drops them): restarted on 9/12, the call would still be open.
        ("withdrawn", datetime(2026, 12, 9, 15, 0, tzinfo=UTC), ["call withdrawn", None]),
        # Stopped from before the 7-day reminder to the day after the call closed.
        ("closed", datetime(2026, 12, 16, 15, 0, tzinfo=UTC), ["call closed", "call closed"]),
    ],
    ids=["withdrawn", "closed"],
)
async def test_a_call_reminder_missed_while_stopped_is_skipped_if_the_call_is_gone(
    settings: Settings,
    emulator: TelegramEmulator,
    clock: ShiftedClock,
    caplog: pytest.LogCaptureFixture,
    what: str,
    restart: datetime,
    notes: list[str | None],
) -> None:
    members = await _call_published_then_stopped(settings, emulator, clock)
    if what == "withdrawn":
        engine = db.create_engine(settings.database_url)
        try:
            async with db.session_factory(engine, clock)() as session, session.begin():
                await session.execute(update(FundingCall).values(withdrawn_at=clock()))
        finally:
            await engine.dispose()
    clock.advance(restart - clock())
    caplog.set_level(logging.INFO, logger="scheduler.reminders")
    runtime = await _restarted(settings, clock, members)
    try:
        rows = await _reminders(runtime, ReminderKind.FUNDING)
        assert [r.note for r in rows] == notes
        assert [r.status for r in rows] == [
            Status.SKIPPED if note else Status.PENDING for note in notes
        ]
        # Counted with the rest skipped at this start (a weekly digest whose week is over, too).
        every_kind = [r for kind in ReminderKind for r in await _reminders(runtime, kind)]
        skipped = [r for r in every_kind if r.status == Status.SKIPPED]
        assert _loop(runtime).stats.skipped == len(skipped)
        logged = [r.getMessage() for r in caplog.records]
        for row in rows:
            about = [line for line in logged if line.startswith(f"reminder {row.id} ")]
            assert len(about) == (1 if row.note else 0)
            if row.note:
                assert about[0].startswith(f"reminder {row.id} (funding) skipped ")
                assert about[0].endswith(f"after its due time: {row.note}")
        await outbox_idle(runtime, clock)
        assert [_call_reminders_of(p) for p in members] == [[], [], []]
        assert "No hay convocatorias" in text_of(await members[0].say("/convocatorias"))
    finally:
        await runtime.stop()


# --- 5. across Chile's September clock change -----------------------------------------------
# Tuesday 1 September 2026 at noon in Santiago (UTC-4). On Sunday 6 September at 00:00 the
# clocks go forward to UTC-3.
SEPTEMBER = datetime(2026, 9, 1, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("clock", [SEPTEMBER], indirect=True, ids=["september"])
async def test_the_day_before_reminder_across_the_september_clock_change(
    runtime: Runtime, phone: MakePhone, clock: ShiftedClock
) -> None:
    _, carmen, (ana, _, _) = await _barrio_with_people(runtime, phone)
    assert "domingo 6 de septiembre a las 19:00" in await _call_meeting(carmen, "domingo 19:00")
    await carmen.tap("Enviar invitación")
    await ana.wait_for("Te invitan")
    await ana.tap("Asistiré")
    starts = datetime(2026, 9, 6, 22, 0, tzinfo=UTC)  # 19:00 at UTC-3
    # 24 real hours before: Saturday 22:00 UTC, which is 18:00 in Santiago (still UTC-4).
    day_before = starts - timedelta(hours=24)
    local = day_before.astimezone(SANTIAGO)
    assert (local.date(), local.strftime("%H:%M")) == (date(2026, 9, 5), "18:00")
    assert await _pending(runtime) == [day_before, starts - timedelta(hours=2)]

    await settle_reminders(runtime, clock, day_before - SECONDS)
    await outbox_idle(runtime, clock)
    assert reminders_of(ana) == []
    await settle_reminders(runtime, clock, day_before + SECONDS)
    reminder = await ana.wait_for("Recordatorio de reunión")
    assert "mañana domingo 6 de septiembre a las 19:00" in reminder["text"]
    # Saturday at 19:00, the hour a wall-clock "day before" would pick: still only one.
    await settle_reminders(runtime, clock, day_before + timedelta(hours=1) + SECONDS)
    await outbox_idle(runtime, clock)
    assert len(reminders_of(ana)) == 1

    await settle_reminders(runtime, clock, starts - timedelta(hours=2) + SECONDS)
    same_day = await ana.wait_for("Recordatorio de reunión")
    assert "hoy domingo 6 de septiembre a las 19:00" in same_day["text"]
    await outbox_idle(runtime, clock)
    assert len(reminders_of(ana)) == 2
