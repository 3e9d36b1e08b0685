"""Finished outbox rows are deleted after the retention period; unfinished ones never are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models import Barrio, Delivery, DeliveryStatus, Meeting, db
from scheduler.retention import prune_deliveries

NOW = datetime(2031, 3, 10, 15, 0, tzinfo=UTC)
KEEP = timedelta(days=30)


def _delivery(text: str, status: DeliveryStatus, age: timedelta, broadcast=None) -> Delivery:
    queued = NOW - age
    return Delivery(
        channel="telegram",
        recipient="1",
        text=text,
        status=status,
        broadcast=broadcast,
        created_at=queued,
        not_before=queued,
    )


async def test_finished_deliveries_go_after_the_retention_period(clean_database):
    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, lambda: NOW)
    try:
        async with sessions() as session, session.begin():
            barrio = Barrio(slug="b", name="B", comuna="C", region="R", invite_code="X1")
            session.add(barrio)
            await session.flush()
            ahead = Meeting(barrio_id=barrio.id, title="T", starts_at=NOW + KEEP, place="P")
            past = Meeting(barrio_id=barrio.id, title="T", starts_at=NOW - KEEP, place="P")
            session.add_all([ahead, past])
            await session.flush()
            session.add_all(
                [
                    _delivery("old sent", DeliveryStatus.SENT, KEEP + timedelta(days=1)),
                    _delivery("old failed", DeliveryStatus.FAILED, KEEP * 2),
                    _delivery("old ambiguous", DeliveryStatus.AMBIGUOUS, KEEP * 2),
                    _delivery("recent sent", DeliveryStatus.SENT, KEEP - timedelta(days=1)),
                    _delivery("old pending", DeliveryStatus.PENDING, KEEP * 2),
                    _delivery(
                        "invitation ahead", DeliveryStatus.SENT, KEEP * 2, f"meeting:{ahead.id}"
                    ),
                    _delivery(
                        "invitation past", DeliveryStatus.SENT, KEEP * 2, f"meeting:{past.id}"
                    ),
                ]
            )
        assert await prune_deliveries(sessions, NOW, KEEP) == 4
        async with sessions() as session:
            left = set((await session.scalars(select(Delivery.text))).all())
        assert left == {"recent sent", "old pending", "invitation ahead"}
    finally:
        await engine.dispose()


async def test_done_reminders_go_after_the_retention_period_pending_ones_stay(clean_database):
    from models import Reminder, ReminderKind, ReminderStatus
    from scheduler.retention import prune_reminders

    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, lambda: NOW)
    try:
        async with sessions() as session, session.begin():
            for key, status, age in (
                ("old-fired", ReminderStatus.FIRED, KEEP + timedelta(days=1)),
                ("old-skipped", ReminderStatus.SKIPPED, KEEP + timedelta(days=1)),
                ("recent", ReminderStatus.FIRED, KEEP - timedelta(days=1)),
                ("overdue", ReminderStatus.PENDING, KEEP + timedelta(days=1)),
            ):
                session.add(
                    Reminder(key=key, kind=ReminderKind.DIGEST, due_at=NOW - age, status=status)
                )
        assert await prune_reminders(sessions, NOW, KEEP) == 2
        async with sessions() as session:
            kept = (await session.scalars(select(Reminder.key).order_by(Reminder.key))).all()
        assert kept == ["overdue", "recent"]
    finally:
        await engine.dispose()


async def test_status_callbacks_no_row_came_to_name_go_after_a_day(clean_database):
    from models import EarlyReceipt
    from scheduler.retention import prune_early_receipts

    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, lambda: NOW)
    try:
        async with sessions() as session, session.begin():
            for sid, age in (("SMold", timedelta(hours=25)), ("SMnew", timedelta(hours=23))):
                session.add(
                    EarlyReceipt(
                        channel="whatsapp",
                        platform_message_id=sid,
                        status="delivered",
                        error_code="",
                        received_at=NOW - age,
                    )
                )
        assert await prune_early_receipts(sessions, NOW) == 1
        async with sessions() as session:
            kept = (await session.scalars(select(EarlyReceipt.platform_message_id))).all()
        assert kept == ["SMnew"]
    finally:
        await engine.dispose()
