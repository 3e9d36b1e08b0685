"""The web app served beside the bot: health, and Telegram's webhook in webhook mode."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


def create_web_app(
    check_database: Callable[[], Awaitable[None]],
    telegram_update: Callable[[dict[str, object]], Awaitable[None]] | None = None,
    telegram_secret: str = "",
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
        if not hmac.compare_digest(given.encode(), telegram_secret.encode()):
            return Response(status_code=403)
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return Response(status_code=400)
        if not isinstance(payload, dict):
            return Response(status_code=400)
        await telegram_update(payload)
        return Response()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/telegram", telegram, methods=["POST"]),
        ]
    )
