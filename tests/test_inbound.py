"""Inbound updates are stored before they are acknowledged, and handled exactly once."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from bot import inbound
from bot.runtime import Runtime
from models import InboundUpdate
from tests.support import free_port, text_of


async def test_webhook_redelivery_is_handled_once(settings, emulator):
    port = free_port()
    runtime = Runtime(
        settings.model_copy(
            update={
                "telegram_mode": "webhook",
                "public_base_url": f"http://127.0.0.1:{port}",
                "port": port,
            }
        )
    )
    await runtime.start()
    try:
        update = emulator.send_text(7401, "/ayuda")
        await runtime.transport.wait_handled(update["update_id"])
        secret = runtime.settings.telegram_webhook_secret.get_secret_value()
        async with httpx.AsyncClient() as client:
            again = await client.post(
                f"http://127.0.0.1:{port}/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
        assert again.status_code == 200
        await asyncio.sleep(0.3)  # time for a wrongly repeated turn to answer; none must
        assert len(emulator.sent(7401)) == 1
    finally:
        await runtime.stop()


async def test_stored_but_unprocessed_update_is_replayed_at_start(settings, emulator, clock):
    """The process stored an update (so Telegram considers it delivered) and died before
    handling it: the next start handles it."""
    update = emulator.send_text(7402, "/ayuda")
    # Take it off the emulator's queue as a crashed poller would have, then store it.
    emulator.pending_updates()  # the emulator still has it queued until an offset confirms it
    seeding = Runtime(settings, serve_web=False, clock=clock)
    from telegram import Update

    from models import db

    await db.upgrade(seeding.engine)
    await inbound.store(seeding.sessions, [Update.de_json(update, None)], clock())
    await seeding.engine.dispose()

    runtime = Runtime(settings, serve_web=False, clock=clock)
    await runtime.start()
    try:
        await runtime.transport.wait_handled(update["update_id"])
        await asyncio.sleep(0.3)
        replies = emulator.sent(7402)
        assert len(replies) == 1, "replayed once, and the same update from getUpdates skipped"
        assert "Barrio Conecta une" in text_of(replies)
        async with runtime.sessions() as session:
            row = await session.scalar(select(InboundUpdate))
        assert row is not None and row.processed_at is not None
    finally:
        await runtime.stop()


async def test_update_ids_numbered_afresh_are_new_updates(settings, emulator, clock):
    """Telegram restarts update ids after a week without updates; a new emulator (the demo's,
    at every start) does too. Same id, new content: a new update, answered."""
    from bot.emulator.telegram import TelegramEmulator, serve_emulator
    from tests.support import BOT_ID, BOT_USERNAME, TOKEN

    runtime = Runtime(settings, serve_web=False, clock=clock)
    await runtime.start()
    try:
        first = emulator.send_text(7403, "/ayuda")
        await runtime.transport.wait_handled(first["update_id"])
    finally:
        await runtime.stop()

    again = TelegramEmulator(token=TOKEN, bot_id=BOT_ID, bot_username=BOT_USERNAME)
    async with serve_emulator(again):
        restarted = Runtime(
            settings.model_copy(update={"telegram_api_base_url": again.base_url}),
            serve_web=False,
            clock=clock,
        )
        await restarted.start()
        try:
            # Another message: a restart within the same second could otherwise repeat the
            # first one to the byte (date, message id and all), which no real restart does.
            second = again.send_text(7403, "/start")
            assert second["update_id"] == first["update_id"]
            await asyncio.wait_for(restarted.transport.wait_handled(second["update_id"]), 10)
            assert "Soy Barrio Conecta" in text_of(again.sent(7403))
        finally:
            await restarted.stop()


async def test_what_a_person_sent_is_not_kept_once_handled(runtime, phone):
    ana = phone(7404, "Ana")
    await ana.say("Mi nombre secreto es Zoraida")
    async with runtime.sessions() as session:
        rows = (await session.scalars(select(InboundUpdate))).all()
    assert rows and all(r.processed_at is not None and r.payload is None for r in rows)


async def test_an_update_too_old_to_replay_gets_a_word_instead(settings, emulator, clock):
    from datetime import timedelta

    from telegram import Update

    from models import db

    update = emulator.send_text(7405, "/alerta")
    emulator.pending_updates()
    seeding = Runtime(settings, serve_web=False, clock=clock)
    await db.upgrade(seeding.engine)
    await inbound.store(seeding.sessions, [Update.de_json(update, None)], clock())
    await seeding.engine.dispose()

    clock.advance(timedelta(hours=2))
    runtime = Runtime(settings, serve_web=False, clock=clock)
    await runtime.start()
    try:
        await emulator.wait_for_sent(7405, count=1, timeout=10)
        replies = text_of(emulator.sent(7405))
        assert "se me pasó tu último mensaje" in replies
        assert "¿Qué está pasando?" not in replies  # the old /alerta did not act
        async with runtime.sessions() as session:
            row = await session.scalar(select(InboundUpdate))
        assert row.processed_at is not None and row.payload is None
    finally:
        await runtime.stop()


async def test_a_failed_turn_is_marked_handled_once_the_database_answers(clean_database):
    """The person was told "algo falló": the update must never replay later, even when the
    database itself failed and the first attempt to record that fails too."""
    from handlers import dialogue as dialogue_module
    from handlers.core import Inbound, InboundKind
    from models import db
    from tests.support import ShiftedClock

    engine = db.create_engine(clean_database)
    clock = ShiftedClock()
    core = dialogue_module.Dialogue(db.session_factory(engine, clock), "Bot", clock=clock)
    calls = []

    async def receipt(session):
        calls.append(len(calls))
        if len(calls) <= 2:  # the turn itself, then the first retry: the database is down
            raise ConnectionError("database went away")
        return True

    try:
        replies = await core.handle(Inbound("telegram", "7406", InboundKind.TEXT, "hola"), receipt)
        assert "algo falló" in replies[0].text
        await core.settle(10)  # what Runtime.stop does before the engine goes
        assert len(calls) == 3 and not core._marking
    finally:
        await engine.dispose()
