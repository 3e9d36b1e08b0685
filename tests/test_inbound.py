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
