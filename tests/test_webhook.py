"""Webhook mode: Telegram (the emulator) posts updates to /telegram with the secret header."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.web import MAX_UPDATE_BYTES, create_web_app
from models import InboundUpdate
from tests.support import free_port, text_of

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def test_webhook_mode_round_trip(webhook, emulator):
    runtime, url, _headers = webhook
    update = emulator.send_text(7201, "/ayuda")
    await runtime.transport.wait_handled(update["update_id"])
    assert "Barrio Conecta une" in text_of(emulator.sent(7201))
    async with httpx.AsyncClient() as client:
        forged = await client.post(url, json=update, headers={SECRET_HEADER: "wrong"})
    assert forged.status_code == 403


@pytest.fixture
async def webhook(settings, emulator):
    """The bot in webhook mode; yields (runtime, its /telegram URL, the right headers)."""
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
    secret = webhook_settings.telegram_webhook_secret.get_secret_value()
    try:
        yield runtime, f"http://127.0.0.1:{port}/telegram", {SECRET_HEADER: secret}
    finally:
        await runtime.stop()


async def _stored(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(InboundUpdate)) or 0


MESSAGE = {"message_id": 1, "date": 0, "chat": {"id": 7401, "type": "private"}}
MALFORMED = {
    "update_id not a number": b'{"update_id":"abc"}',
    "update_id a float": b'{"update_id":1.5}',
    "update_id a bool": b'{"update_id":true}',
    "update_id negative": b'{"update_id":-1}',
    "update_id past 64 bits": b'{"update_id":' + str(2**64).encode() + b"}",
    "no update_id": b'{"message":{}}',
    "message not an object": b'{"update_id":1,"message":"x"}',
    "message without date": json.dumps({"update_id": 2, "message": {"message_id": 1}}).encode(),
    "chat not an object": json.dumps(
        {"update_id": 3, "message": {**MESSAGE, "chat": "x"}}
    ).encode(),
    "date out of range": json.dumps(
        {"update_id": 4, "message": {**MESSAGE, "date": 10**20}}
    ).encode(),
    "callback_query a list": b'{"update_id":5,"callback_query":[1]}',
    "not an object": b"[1]",
    "not JSON": b"update_id=1",
    "not UTF-8": b'{"update_id":1,"x":"\xff"}',
    "nested past recursion": b"[" * 200_000,
    "empty": b"",
}


async def test_malformed_updates_get_400_and_store_nothing(webhook):
    runtime, url, headers = webhook
    before = await _stored(runtime)
    async with httpx.AsyncClient() as client:
        for what, body in MALFORMED.items():
            response = await client.post(url, content=body, headers=headers)
            assert response.status_code == 400, what
        assert await _stored(runtime) == before
        # And the same endpoint still takes a real update: the counter above can see a row.
        good = {"update_id": 9_000_001, "message": {**MESSAGE, "text": "hola"}}
        response = await client.post(url, json=good, headers=headers)
        assert response.status_code == 200
    assert await _stored(runtime) == before + 1


async def test_a_body_over_the_limit_gets_413_and_stores_nothing(webhook):
    runtime, url, headers = webhook
    before = await _stored(runtime)
    filler = b"a" * MAX_UPDATE_BYTES
    huge = b'{"update_id":9000002,"x":"' + filler + b'"}'

    async def chunked():  # no Content-Length: the limit must hold while reading
        yield huge[:1000]
        for start in range(1000, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024]

    async with httpx.AsyncClient() as client:
        declared = await client.post(url, content=huge, headers=headers)
        streamed = await client.post(url, content=chunked(), headers=headers)
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert await _stored(runtime) == before


async def test_an_empty_secret_never_opens_the_webhook():
    """Defence in depth: even if an empty secret got past the settings, `"" == ""` must not
    let a request without the header through."""
    called = []

    async def update(payload):
        called.append(payload)

    async def healthy():
        return None

    app = create_web_app(healthy, update, "")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bot"
    ) as client:
        for headers in ({}, {SECRET_HEADER: ""}):
            response = await client.post("/telegram", json={"update_id": 1}, headers=headers)
            assert response.status_code == 403
    assert called == []
