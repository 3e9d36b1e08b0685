"""Files served by the bot's own web app, for a channel that takes media only as a URL.

WhatsApp (through Twilio) sends a photo or a document by fetching `MediaUrl`; it cannot carry
a calendar file or a JSON document at all. So what a Telegram member gets as a file, a
WhatsApp member gets as media fetched from `PUBLIC_BASE_URL/files/<token>/<name>` (a photo),
or as a link to open (the `.ics`, `/misdatos`). The token is 32 random bytes: the address is
the only key, so it is unguessable, and it stops working at `expires_at` (then the row is
pruned). Nothing here is listed or searchable.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from models import SharedFile

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
# A person's own data (`/misdatos`) is reachable for this long: long enough to tap the link.
PERSONAL_FOR = timedelta(hours=1)
# A meeting's calendar file or an announcement's photo: the barrio's content, for a week.
CONTENT_FOR = timedelta(days=7)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# How an announcement names a photo sent from WhatsApp: Twilio's MediaUrl, behind this prefix.
# A Telegram photo is its bare file_id. Either way the outbox stores the reference, and each
# channel's sender gets the photo its own way (a Telegram member's copy is uploaded, a
# WhatsApp member's is this web app's copy).
WHATSAPP_MEDIA = "whatsapp-media:"
# Twilio's limit for an image it sends on WhatsApp; Telegram's for a photo is larger.
MAX_PHOTO_BYTES = 5 * 1024 * 1024


def is_whatsapp_media(photo: str) -> bool:
    return photo.startswith(WHATSAPP_MEDIA)


def safe_filename(name: str) -> str:
    """ASCII, no spaces or slashes: Twilio shows it, and it sits in a URL path."""
    cleaned = _SAFE_NAME.sub("-", name).strip("-.")
    return cleaned[:80] or "archivo"


async def share(
    session: AsyncSession,
    *,
    content: bytes,
    filename: str,
    content_type: str,
    now: datetime,
    valid_for: timedelta,
    member_id: int | None = None,
    source: str | None = None,
) -> SharedFile:
    shared = SharedFile(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        filename=safe_filename(filename),
        content_type=content_type,
        content=content,
        member_id=member_id,
        source=source,
        expires_at=now + valid_for,
    )
    session.add(shared)
    await session.flush()
    return shared


async def copy_of(
    sessions: async_sessionmaker[AsyncSession],
    source: str,
    now: datetime,
    fetch: Callable[[], Awaitable[bytes]],
    *,
    name: str = "foto",
) -> SharedFile:
    """The stored copy of the photo `source` (e.g. a Telegram file_id), fetched once however
    many people it goes to: `fetch` is awaited only when there is no live copy yet."""
    async with sessions() as session:
        found = await session.scalar(select(SharedFile).where(SharedFile.source == source))
        if found is not None and found.expires_at > now + timedelta(hours=1):
            return found
    content = await fetch()
    content_type, extension = image_type(content)
    try:
        async with sessions() as session, session.begin():
            await session.execute(delete(SharedFile).where(SharedFile.source == source))
            return await share(
                session,
                content=content,
                filename=f"{name}.{extension}",
                content_type=content_type,
                now=now,
                valid_for=CONTENT_FOR,
                source=source,
            )
    except IntegrityError:
        # Another send stored it at the same moment: that copy serves.
        async with sessions() as session:
            found = await session.scalar(select(SharedFile).where(SharedFile.source == source))
        if found is None:
            raise
        return found


def image_type(content: bytes) -> tuple[str, str]:
    """The type Twilio is told (it checks the header it gets against what WhatsApp takes),
    from the bytes themselves: Telegram keeps photos as JPEG, but a file may be PNG or WebP."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "image/jpeg", "jpg"


def url_of(base_url: str, shared: SharedFile) -> str:
    return f"{base_url.rstrip('/')}/files/{shared.token}/{quote(shared.filename)}"


def file_route(
    sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
) -> Callable[[Request], Awaitable[Response]]:
    """GET and HEAD (Twilio checks the type with HEAD first) of a shared file; 404 for a
    token that is unknown, expired or paired with another name."""

    async def serve(request: Request) -> Response:
        token = request.path_params["token"]
        if not (0 < len(token) <= 64):
            return Response(status_code=404)
        async with sessions() as session:
            shared = await session.scalar(select(SharedFile).where(SharedFile.token == token))
        if (
            shared is None
            or shared.expires_at <= clock()
            or request.path_params["name"] != shared.filename
        ):
            return Response(status_code=404)
        headers = {
            "Content-Disposition": f'inline; filename="{shared.filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        }
        body = b"" if request.method == "HEAD" else shared.content
        response = Response(body, media_type=shared.content_type, headers=headers)
        if request.method == "HEAD":
            response.headers["content-length"] = str(len(shared.content))
        return response

    return serve


async def prune_shared_files(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    async with sessions() as session, session.begin():
        result = await session.execute(delete(SharedFile).where(SharedFile.expires_at <= now))
    pruned = int(getattr(result, "rowcount", 0) or 0)
    if pruned:
        log.info("deleted %d shared files past their time", pruned)
    return pruned
