"""Webhook mode: Telegram (the emulator) posts updates to /telegram with the secret header."""

from __future__ import annotations

import socket

import httpx

from bot.runtime import Runtime
from tests.support import text_of


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_mode_round_trip(settings, emulator):
    port = _free_port()
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
