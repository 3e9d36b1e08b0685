"""Webhook mode: Telegram (the emulator) posts updates to /telegram with the secret header."""

from __future__ import annotations

import httpx

from bot.runtime import Runtime
from tests.support import free_port, text_of


async def test_webhook_mode_round_trip(settings, emulator):
    port = free_port()
    webhook_settings = settings.model_copy(
        update={
            "telegram_mode": "webhook",
            "public_base_url": f"http://127.0.0.1:{port}",
            "port": port,
        }
    )
    runtime = Runtime(webhook_settings)
    await runtime.start()
    try:
        update = emulator.send_text(7201, "/ayuda")
        await runtime.transport.wait_handled(update["update_id"])
        assert "Barrio Conecta une" in text_of(emulator.sent(7201))
        async with httpx.AsyncClient() as client:
            forged = await client.post(
                f"http://127.0.0.1:{port}/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            )
        assert forged.status_code == 403
    finally:
        await runtime.stop()
