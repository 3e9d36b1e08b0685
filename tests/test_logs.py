"""Logs carry ids, never what people wrote, their names or their Telegram ids; neither does
an outbox row's `last_error`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.logs import quiet_libraries
from handlers.core import Option
from handlers.outbox import Recipient, enqueue
from models import Delivery, DeliveryStatus, db
from models.entities import utcnow
from scheduler.outbox import FINAL, OutboxDispatcher, Pacer
from tests.support import wait_for_delivery

USER_ID = 7_654_321
NAME = "Zacarías"
SECRET = "pandebono"
TEXT = f"mi clave del portón es {SECRET}"
# Telegram may quote a piece of what was sent in its description of an error.
QUOTING = f'Bad Request: can\'t parse entities: Unsupported start tag "{SECRET}" at byte offset 3'


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    quiet_libraries()  # as `barrio run` configures logging
    caplog.set_level(logging.INFO)
    return caplog


def _written(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    ).casefold()


def _assert_clean(text: str) -> None:
    for trace in (NAME, SECRET, str(USER_ID)):
        assert trace.casefold() not in text.casefold(), f"{trace!r} is in {text!r}"


class _Logged(logging.Handler):
    """Sets an event when a record containing `fragment` is logged."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.fragment in record.getMessage():
            self.seen.set()


async def test_a_failing_turn_logs_the_update_id_only(runtime, phone, emulator, logs):
    person = phone(USER_ID, NAME)

    async def broken(inbound, receipt=None):
        # A bug whose message quotes what it choked on, as int("…") or a KeyError would.
        raise ValueError(f"cannot handle {inbound.text!r} from {inbound.sender_id}")

    runtime.dialogue.handle = broken
    logged = _Logged("unhandled error for update")
    logging.getLogger().addHandler(logged)
    try:
        update = emulator.send_text(USER_ID, TEXT)
        await person.send(update)
        await asyncio.wait_for(logged.seen.wait(), 10)
    finally:
        logging.getLogger().removeHandler(logged)

    written = _written(logs)
    _assert_clean(written)
    assert f"unhandled error for update {update['update_id']}" in written
    assert "valueerror" in written, "the kind of error and where it was raised stay"


async def test_failed_and_blocked_replies_log_no_telegram_id(runtime, phone, emulator, logs):
    person = phone(USER_ID, NAME)
    emulator.fail_next("sendMessage", status=400, description=QUOTING)
    await person.say(TEXT)
    emulator.fail_next(
        "sendMessage", status=403, description="Forbidden: bot was blocked by the user"
    )
    await person.say("/ayuda")

    written = _written(logs)
    _assert_clean(written)
    assert "a reply failed" in written
    assert "blocked the bot" in written


async def test_the_outbox_logs_and_stores_no_text_for_refused_or_blocked_sends(
    runtime, emulator, logs
):
    emulator.start_chats([USER_ID, USER_ID + 1])
    emulator.block(USER_ID, notify=False)
    emulator.fail_next("sendMessage", status=400, description=QUOTING)
    async with runtime.sessions() as session, session.begin():
        for address in (USER_ID + 1, USER_ID):  # the refused one first, then the blocked one
            await enqueue(
                session,
                [Recipient(None, "telegram", str(address), None, None, False)],
                TEXT,
                now=runtime.clock(),
                zone=runtime.settings.zone,
            )
    runtime.dispatcher.wake()
    refused = await wait_for_delivery(
        runtime, lambda d: d.recipient == str(USER_ID + 1) and d.status in FINAL
    )
    blocked = await wait_for_delivery(
        runtime, lambda d: d.recipient == str(USER_ID) and d.status in FINAL
    )

    assert refused.status == DeliveryStatus.FAILED
    assert refused.last_error and "unsupported start tag" in refused.last_error.casefold()
    assert blocked.status == DeliveryStatus.UNREACHABLE
    assert blocked.last_error == "Forbidden: bot was blocked by the user"
    _assert_clean(f"{refused.last_error} {blocked.last_error}")
    _assert_clean(_written(logs))


class _CrashingSender:
    """A sender with a bug whose message quotes what it was sending, and to whom."""

    channel = "telegram"

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        silent: bool = False,
    ) -> str:
        raise UnicodeError(f"cannot encode {text!r} for {recipient}")


async def test_a_crashing_sender_leaves_no_text_in_the_row_or_the_log(clean_database, logs):
    engine = db.create_engine(clean_database)
    sessions = db.session_factory(engine, utcnow)
    try:
        async with sessions() as session, session.begin():
            await enqueue(
                session,
                [Recipient(None, "telegram", str(USER_ID), None, None, False)],
                TEXT,
                now=utcnow(),
                zone=ZoneInfo("America/Santiago"),
            )
        dispatcher = OutboxDispatcher(
            sessions, [_CrashingSender()], {"telegram": Pacer(1000, 1000)}, clock=utcnow
        )
        await dispatcher.drain()
        async with sessions() as session:
            row = (await session.scalars(select(Delivery))).one()
    finally:
        await engine.dispose()

    assert row.status == DeliveryStatus.FAILED
    assert row.last_error == "sender crashed (UnicodeError)"
    written = _written(logs)
    _assert_clean(written)
    assert f"sender crashed on delivery {row.id}" in written
