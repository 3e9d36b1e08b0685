"""The web app served beside the bot: health, Telegram's webhook in webhook mode, and
Twilio's WhatsApp webhook and status callbacks when WhatsApp is configured."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

# Telegram's updates are a few KiB; a body past this is not Telegram's and is not read whole.
MAX_UPDATE_BYTES = 1024 * 1024
# Update ids are stored as text and compared as integers: keep them within a signed 64 bits.
MAX_UPDATE_ID = 2**63 - 1


class MalformedUpdate(ValueError):
    """The webhook callback's way to say the update cannot be read: the answer is 400."""


class _TooLarge(Exception):
    pass


class WhatsAppWebhooks(Protocol):
    async def webhook(self, request: Request) -> Response: ...
    async def status_callback(self, request: Request) -> Response: ...


def create_web_app(
    check_database: Callable[[], Awaitable[None]],
    telegram_update: Callable[[dict[str, object]], Awaitable[None]] | None = None,
    telegram_secret: str = "",
    whatsapp: WhatsAppWebhooks | None = None,
    files: Callable[[Request], Awaitable[Response]] | None = None,
) -> Starlette:
    async def healthz(_request: Request) -> Response:
        try:
            await check_database()
        except Exception as error:
            log.warning("health check: database does not answer: %s", error)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def telegram(request: Request) -> Response:
        if telegram_update is None:
            return Response(status_code=404)
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        # An empty secret would match an absent header: never open the webhook that way.
        if not telegram_secret or not hmac.compare_digest(given.encode(), telegram_secret.encode()):
            return Response(status_code=403)
        try:
            body = await _read_body(request, MAX_UPDATE_BYTES)
        except _TooLarge:
            log.warning("webhook: body over %d bytes refused", MAX_UPDATE_BYTES)
            return Response(status_code=413)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
            log.warning("webhook: body is not JSON")
            return Response(status_code=400)
        update_id = payload.get("update_id") if isinstance(payload, dict) else None
        # bool is an int to Python, not to Telegram.
        if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
            log.warning("webhook: body is not an update with an integer update_id")
            return Response(status_code=400)
        try:
            await telegram_update(payload)
        except MalformedUpdate as error:
            log.warning("webhook: update %d refused: %s", update_id, error)
            return Response(status_code=400)
        return Response()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/telegram", telegram, methods=["POST"]),
    ]
    if whatsapp is not None:
        routes += [
            Route("/whatsapp", whatsapp.webhook, methods=["POST"]),
            Route("/whatsapp/status", whatsapp.status_callback, methods=["POST"]),
        ]
    if files is not None:
        # Photos and documents for WhatsApp, fetched by Twilio (bot/files.py).
        routes.append(Route("/files/{token}/{name}", files, methods=["GET", "HEAD"]))
    return Starlette(routes=routes)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk so an oversized one is refused without holding it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)
