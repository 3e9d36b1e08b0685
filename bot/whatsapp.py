"""The WhatsApp transport, through Twilio: webhooks in, `Inbound` to the same dialogue core,
replies and outbox messages out with the twilio REST client.

Thin like the Telegram one. WhatsApp has no buttons for a bot of ours, so options are a short
numbered list the person answers by typing the number (the core maps it back); commands are
the same words without a slash, parsed by the core; a poster's wa.me link carries a join text
with the barrio's invite code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import ColumnElement, String, Table, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot import files
from bot.inbound import REPLAY_WITHIN
from handlers import broadcasts, texts
from handlers.core import Document, Inbound, InboundKind, Option, Reply, fold
from handlers.dialogue import COMMANDS, SANTIAGO, Dialogue
from handlers.outbox import Recipient, enqueue
from models import (
    ChannelIdentity,
    Conversation,
    Delivery,
    DeliveryStatus,
    EarlyReceipt,
    InboundUpdate,
    Priority,
    queries,
)
from scheduler.outbox import (
    LATE_REPLY,
    Pacer,
    RetryLater,
    SendAmbiguous,
    SendFailed,
    Unreachable,
    traceback_without_values,
)

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
# A WhatsApp message body holds at most this many characters (Twilio refuses longer: 21617).
MAX_BODY = 1600
# Room kept for the "(2/3)" that numbers the parts of a long message.
PART_MARK = 8
# The poster's wa.me link fills in this text; sending it joins the barrio of the code.
JOIN_TEXT = "Hola, quiero unirme a mi barrio con el código {code}"
_COMMAND = re.compile(r"(?<![\w/])/([a-z]+)\b")
_JOIN = re.compile(r"\bunirme\b.*?\b([A-HJ-NP-Z2-9]{8})\b", re.IGNORECASE | re.DOTALL)
# Twilio's codes the outbox must tell apart.
OPTED_OUT = 21610
OUTSIDE_WINDOW = 63016
TOO_MANY_REQUESTS = 20429
DAILY_CAP = 63018
# What 63018 means here: Meta's messaging limit. A WhatsApp sender may start conversations (a
# template outside the person's 24-hour window) with only so many different people in any
# rolling 24 hours: 250, 1,000, 10,000… by its tier; free text inside a person's window does
# not count. Twilio accepts the message and fails it with 63018 in the status callback. (The
# same code also stands for a throughput limit, which `WHATSAPP_RATE_PER_S` keeps us under.)
# A slot comes free 24 hours after the conversation that took it, so every slot is free again
# at most 24 hours after the cap was reached: the rows it stopped, and the rest of their
# broadcast still queued, wait that long. Earlier slots may free sooner, but the coordinator
# is told a time that holds, and a cap still full is not probed with members' messages.
DAILY_CAP_WINDOW = timedelta(hours=24)
# A 63018 answered at once (the request refused, nothing sent; not what Twilio does, but the
# emulator can) holds that one row this long (the outbox's RetryLater, the channel's other
# sends going on) and it tries again then: a refused request costs nothing. The rest of its
# broadcast waits the window.
DAILY_CAP_PAUSE_S = 3600.0
# What the rows held for the cap say (`last_error`): how a 63018 already handled for a
# broadcast is known, so its coordinator is told once.
HELD_BY_CAP = f"twilio {DAILY_CAP}: the sender's daily cap; waiting for its next window"
# A 63018 at once is counted for the coordinator when its window's outcomes are written: within
# a second or so; past this the database is in trouble, and the count is given as it stands.
CAP_COUNT_WITHIN_S = 60.0
CAP_COUNT_POLL_S = 0.05
PROBING_CAP = f"twilio {DAILY_CAP}: the sender's daily cap; tried again hourly"
_CAP_MARK = f"twilio {DAILY_CAP}:%"


def address(whatsapp_address: str) -> str:
    """ "whatsapp:+56912345678" → "+56912345678": how identities store a number."""
    return whatsapp_address.removeprefix("whatsapp:").strip()


# Images WhatsApp sends that Telegram shows as a photo too.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})
# What the outbox's column for a photo's reference holds.
MAX_REFERENCE: int = cast(String, Delivery.__table__.c.photo.type).length or 0


def inbound_from_webhook(form: Mapping[str, str]) -> Inbound | None:
    """What a person did, from Twilio's webhook parameters; None if it names no sender."""
    sender = address(form.get("From", ""))
    if not sender:
        return None
    body = form.get("Body", "")
    latitude, longitude = form.get("Latitude"), form.get("Longitude")
    if latitude and longitude:
        try:
            return Inbound(
                CHANNEL,
                sender,
                InboundKind.LOCATION,
                location=(float(latitude), float(longitude)),
            )
        except ValueError:
            return Inbound(CHANNEL, sender, InboundKind.MEDIA, media="location")
    if (form.get("NumMedia") or "0").strip() not in ("", "0"):
        kind, url = form.get("MediaContentType0") or "media", form.get("MediaUrl0") or ""
        reference = files.WHATSAPP_MEDIA + url
        if kind in PHOTO_TYPES and url and len(reference) <= MAX_REFERENCE:
            # A photo, as the core knows one: an announcement can carry it.
            return Inbound(
                CHANNEL, sender, InboundKind.MEDIA, text=body, media="photo", media_id=reference
            )
        return Inbound(CHANNEL, sender, InboundKind.MEDIA, text=body, media=kind, media_id=url)
    joining = _JOIN.search(body)
    if joining:
        code = joining[1].upper()
        return Inbound(CHANNEL, sender, InboundKind.COMMAND, text=body, command="start", args=code)
    return Inbound(CHANNEL, sender, InboundKind.TEXT, text=body)


def spell_commands(text: str) -> str:
    """Commands as they are typed on WhatsApp: "/directorio" → "DIRECTORIO" (the core reads
    a command's name without its slash, in any case)."""
    return _COMMAND.sub(lambda m: m[1].upper() if m[1] in COMMANDS else m[0], text)


def render(text: str, options: Sequence[Option], first_number: int = 1) -> list[str]:
    """The message as WhatsApp bodies: commands spelt without a slash, the options as a
    numbered list to answer by typing (from `first_number`: the core numbers the lists of one
    reply on from each other), split at line (or sentence) breaks into numbered parts when
    over `MAX_BODY`."""
    text = spell_commands(_reworded(text))
    if options:
        listed = "\n".join(
            f"*{number}.* {o.label}" for number, o in enumerate(options, first_number)
        )
        text = f"{text}\n\n{listed}\n\n{texts.WHATSAPP_ANSWER_WITH_NUMBER}"
    parts = _split(text, MAX_BODY - PART_MARK)
    if len(parts) == 1:
        return parts
    return [f"({index}/{len(parts)}) {part}" for index, part in enumerate(parts, 1)]


def _reworded(text: str) -> str:
    """Telegram's "toca un botón" as WhatsApp has it: options are typed by number there."""
    for telegram_words, whatsapp_words in texts.WHATSAPP_WORDING.items():
        text = text.replace(telegram_words, whatsapp_words)
    return text


def _split(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    cut = text.rfind("\n", 0, limit)
    if cut < limit // 2:
        cut = max(text.rfind(". ", 0, limit), text.rfind("? ", 0, limit)) + 1
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit)
    if cut < limit // 2:
        cut = limit
    return [text[:cut].rstrip(), *_split(text[cut:].lstrip(), limit)]


# WhatsApp's customer-service window: free text only this long after the person last wrote.
WINDOW = timedelta(hours=24)
# Kept in hand so that a message queued at 23h59m does not arrive at 24h01m.
WINDOW_MARGIN = timedelta(minutes=5)
# A security alert not delivered within this long is dropped by Twilio (and reported failed).
ALERT_VALIDITY_S = 3600
# A template variable holds at most this much of the message (Meta's limit is 1,024).
TEMPLATE_VARIABLE_MAX = 1000


class WhatsAppSender:
    """The outbox's sender for WhatsApp: free text within the 24-hour window, the approved
    template for the kind of message outside it (a kind without one is refused, with the
    reason, never dropped silently); errors mapped to the outbox's retry rules (and logged by
    the outbox with ids only)."""

    channel = CHANNEL

    def __init__(
        self,
        client: Client,
        from_number: str,
        status_callback: str | None,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        clock: Callable[[], datetime] | None = None,
        templates: Mapping[str, str] | None = None,
        zone: ZoneInfo | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.from_ = f"whatsapp:{address(from_number)}"
        self.status_callback = status_callback
        self.sessions = sessions
        self.clock = clock
        self.templates = dict(templates or {})
        # For telling a coordinator of the daily cap: the zone their times are said in, and
        # the outbox's wake-up for that message. `WhatsAppTransport` fills in its dialogue's.
        self.zone = zone
        self.on_enqueued = on_enqueued
        self._telling: set[asyncio.Task[None]] = set()
        # Photos: WhatsApp takes them only as a URL, which Twilio fetches. `fetch_photo` gets
        # the bytes of a photo the outbox names (a Telegram file_id, or a photo sent from
        # WhatsApp: `files.WHATSAPP_MEDIA`), and `files_base_url` is
        # where the bot's web app serves its copy (bot/files.py); the runtime sets both.
        self.fetch_photo: Callable[[str], Awaitable[bytes]] | None = None
        self.files_base_url: str | None = None

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        first_number: int = 1,
        silent: bool = False,
    ) -> str:
        # `silent` is not for WhatsApp, which has no silent messages: a personal notice in the
        # person's quiet hours goes now all the same (see the README's quiet hours).
        if kind is not None and not await self._in_window(recipient):
            return await self._send_template(recipient, text, options, kind)
        media = await self._photo_url(photo) if photo else None
        sid = ""
        bodies = render(text, options, first_number)
        for index, body in enumerate(bodies):
            content: dict[str, object] = {"body": body}
            if media is not None and index == 0:
                content["media_url"] = [media]
            # Only the piece whose sid the outbox row keeps is worth a status callback.
            last = index == len(bodies) - 1
            sid = await self._create(recipient, content, kind, tracked=last)
        return sid

    async def after_recorded(self, message_ids: Sequence[str]) -> None:
        """The outbox has written these messages' rows: status callbacks that came first
        apply now."""
        if self.sessions is None or self.clock is None:
            return
        now = self.clock()
        if await apply_early_receipts(self.sessions, message_ids, now, self.zone or SANTIAGO):
            if self.on_enqueued is not None:
                self.on_enqueued()

    async def _photo_url(self, photo: str) -> str | None:
        """Where Twilio fetches this photo from; None (the text goes alone) if it cannot be
        had: the words are the message, the photo is not worth losing them for."""
        if (
            self.fetch_photo is None
            or self.files_base_url is None
            or self.sessions is None
            or self.clock is None
        ):
            return None
        fetch = self.fetch_photo
        source = photo if files.is_whatsapp_media(photo) else f"telegram-photo:{photo}"
        try:
            shared = await files.copy_of(self.sessions, source, self.clock(), lambda: fetch(photo))
        except Exception as error:
            log.warning("photo for WhatsApp not available (%s)", type(error).__name__)
            return None
        return files.url_of(self.files_base_url, shared)

    async def _in_window(self, recipient: str) -> bool:
        if self.sessions is None or self.clock is None:
            return True
        async with self.sessions() as session:
            last = await session.scalar(
                select(ChannelIdentity.last_inbound_at).where(
                    ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_id == recipient
                )
            )
            if last is None:
                # No member (an administrator): their conversation is stamped at each of
                # their turns (handlers/dialogue.py), no later than they last wrote.
                last = await session.scalar(
                    select(Conversation.updated_at).where(
                        Conversation.channel == CHANNEL, Conversation.external_id == recipient
                    )
                )
        return last is not None and self.clock() - last < WINDOW - WINDOW_MARGIN

    async def _send_template(
        self, recipient: str, text: str, options: Sequence[Option], kind: str
    ) -> str:
        template = self.templates.get(kind)
        if template is None:
            raise SendFailed(
                f"outside the 24-hour window, and no WhatsApp template for {kind} messages",
                permanent=True,
            )
        whole = "\n\n".join(render(text, options))
        if len(whole) > TEMPLATE_VARIABLE_MAX:
            whole = whole[: TEMPLATE_VARIABLE_MAX - 1].rstrip() + "…"
        variables = json.dumps({"1": whole}, ensure_ascii=False)
        return await self._create(
            recipient, {"content_sid": template, "content_variables": variables}, kind
        )

    async def _create(
        self,
        recipient: str,
        content: Mapping[str, object],
        kind: str | None = None,
        *,
        tracked: bool = True,
    ) -> str:
        kwargs: dict[str, object] = {"from_": self.from_, "to": f"whatsapp:{recipient}"}
        kwargs.update(content)
        if kind == "alert":
            # Held up somewhere on the way, a security alert fails rather than arriving late.
            kwargs["validity_period"] = ALERT_VALIDITY_S
        # A direct reply (no kind) has no outbox row for its callbacks to update.
        if self.status_callback and kind is not None and tracked:
            kwargs["status_callback"] = self.status_callback
        try:
            message = await self.client.messages.create_async(**kwargs)
        except TwilioRestException as error:
            if error.code == DAILY_CAP and kind is not None:
                await self._held_by_cap(recipient, kind)
            raise _mapped(error) from None
        except aiohttp.ClientConnectorError:
            # Never reached Twilio: nothing was sent, so trying again cannot double it.
            raise SendFailed("twilio unreachable", permanent=False) from None
        except (TimeoutError, aiohttp.ClientError):
            # The request may have arrived: no idempotency key, so never resent blindly.
            raise SendAmbiguous("twilio: no answer after the request was sent") from None
        return str(message.sid)

    async def _held_by_cap(self, recipient: str, kind: str) -> None:
        """A 63018 at once, for the outbox row being sent to `recipient`: the outbox pauses
        the channel and tries that row again (RetryLater); the rest of its broadcast waits
        the cap's window, and its coordinator is told, once. The outbox passes the row's
        kind, not the row: it is the one it marked `sending` to that number."""
        # A notice to one person holds up no broadcast: it keeps the outbox's hourly retry.
        if self.sessions is None or self.clock is None or kind == "notice":
            return
        now = self.clock()
        sending = (
            (Delivery.channel == CHANNEL)
            & (Delivery.recipient == recipient)
            & (Delivery.status == DeliveryStatus.SENDING)
        )
        of_kind = Delivery.broadcast.like(f"{kind}:%")
        try:
            async with self.sessions() as session, session.begin():
                row = (
                    await session.execute(
                        select(Delivery.id, Delivery.broadcast, Delivery.priority)
                        .where(sending, of_kind)
                        .order_by(Delivery.sending_since.desc(), Delivery.id.desc())
                        .limit(1)
                    )
                ).first()
                # An alert a day late means nothing, and a notice to one person holds up no
                # broadcast: they keep the outbox's hourly retry.
                if row is None or row.broadcast is None or row.priority <= Priority.ALERT:
                    return
                await broadcasts.serialise(session, row.broadcast)
                told = await _cap_told(session, row.broadcast)
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id == row.id, Delivery.status == DeliveryStatus.SENDING)
                    .values(last_error=PROBING_CAP)
                    .execution_options(synchronize_session=False)
                )
                await _hold(session, row.broadcast, now, self.zone or SANTIAGO)
        except Exception as error:
            # The send's own outcome (RetryLater) still holds this row; only the rest of
            # its broadcast is not held back, and each of those will come here in turn.
            log.error(
                "holding a broadcast for the daily cap failed\n%s", traceback_without_values(error)
            )
            return
        if not told:
            task = asyncio.create_task(
                self._tell_when_written(row.id, row.broadcast), name=f"daily cap {row.broadcast}"
            )
            self._telling.add(task)
            task.add_done_callback(self._telling.discard)

    async def _tell_when_written(self, row_id: int, broadcast: str) -> None:
        """Tell the coordinator how many wait once the outbox has written the outcomes of
        the stopped row's window: until then its other rows are `sending`, those that went
        out and those stopped alike, and the count would be wrong. (Looked for, as the outbox
        says nothing when it writes them.)"""
        assert self.sessions is not None and self.clock is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CAP_COUNT_WITHIN_S
        try:
            while loop.time() < deadline:
                async with self.sessions() as session:
                    status = await session.scalar(
                        select(Delivery.status).where(Delivery.id == row_id)
                    )
                if status != DeliveryStatus.SENDING:
                    break
                await asyncio.sleep(CAP_COUNT_POLL_S)
            async with self.sessions() as session, session.begin():
                await broadcasts.serialise(session, broadcast)
                queued = await _tell(
                    session,
                    broadcast,
                    self.clock(),
                    self.zone or SANTIAGO,
                    later=Delivery.status == DeliveryStatus.SENDING,
                )
        except Exception as error:
            log.error(
                "telling of the daily cap failed (%s)\n%s",
                broadcast,
                traceback_without_values(error),
            )
            return
        if queued and self.on_enqueued is not None:
            self.on_enqueued()


def _mapped(error: TwilioRestException) -> Exception:
    code = error.code
    if error.status == 429 or code == TOO_MANY_REQUESTS:
        return RetryLater(1.0)
    if code == DAILY_CAP:
        # Replies and messages inside people's windows still go: only this row waits.
        return RetryLater(DAILY_CAP_PAUSE_S, whole_channel=False)
    if code == OPTED_OUT:
        return Unreachable(f"twilio {code}: the person opted out")
    if code == OUTSIDE_WINDOW:
        return SendFailed(f"twilio {code}: outside the 24-hour window", permanent=True)
    if error.status >= 500:
        return SendFailed(f"twilio {error.status}", permanent=False)
    return SendFailed(f"twilio {error.status} ({code})", permanent=True)


# --- the way in ---------------------------------------------------------------------------------
# Twilio's webhook is a small form; a body past this is not Twilio's.
MAX_WEBHOOK_BYTES = 64 * 1024
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe"})
# Twilio lets the number be written to again; the person gets the help and the menu.
START_WORDS = frozenset({"start", "unstop"})


# A REST call to Twilio that has not answered in this long is given up on (and, as it may have
# arrived, counted ambiguous by the outbox).
TWILIO_TIMEOUT_S = 10.0


class TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """twilio's own aiohttp client with a timeout on every request (its default waits for
    ever), and the credentials as an Authorization header: aiohttp 3.14 deprecates the
    `BasicAuth` object twilio 9 builds from them."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> Any:
        headers = dict(headers or {})
        if auth is not None:
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        return await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout or TWILIO_TIMEOUT_S,
            allow_redirects=allow_redirects,
        )

    # twilio formats a dozen lines (headers and all) for every request before its logger
    # decides whether to write them; below INFO nothing is formatted.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            super().log_request(kwargs)

    def log_response(self, status_code: int, response: Any) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            super().log_response(status_code, response)


async def fetch_media(
    reference: str, account_sid: str, auth_token: str, api_base_url: str | None
) -> bytes:
    """The bytes of a photo a person sent on WhatsApp (`files.WHATSAPP_MEDIA` + MediaUrl),
    fetched from Twilio with the account's credentials, as Twilio requires for media. Only
    from Twilio's API (or the emulator that stands for it), and at most MAX_PHOTO_BYTES."""
    url = reference.removeprefix(files.WHATSAPP_MEDIA)
    api = (api_base_url or TWILIO_API).rstrip("/") + "/"
    if not url.startswith(api):
        raise ValueError("media outside Twilio's API")
    credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    timeout = aiohttp.ClientTimeout(total=TWILIO_TIMEOUT_S)
    content = bytearray()
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        # Twilio answers with a redirect to where the file is; aiohttp does not take the
        # credentials to another host.
        session.get(url, headers={"Authorization": f"Basic {credentials}"}) as answer,
    ):
        answer.raise_for_status()
        async for chunk in answer.content.iter_chunked(64 * 1024):
            content += chunk
            if len(content) > files.MAX_PHOTO_BYTES:
                raise ValueError("media larger than a photo may be")
    return bytes(content)


TWILIO_API = "https://api.twilio.com"


def twilio_client(account_sid: str, auth_token: str, api_base_url: str | None) -> Client:
    """The twilio REST client on its async HTTP client; `api_base_url` points it elsewhere
    than api.twilio.com (the emulator), keeping the paths Twilio's. Build it inside the
    running event loop; close it with `await client.http_client.close()`."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient())
    if api_base_url:
        client.api.base_url = api_base_url.rstrip("/")
    return client


async def store_webhooks(
    sessions: async_sessionmaker[AsyncSession],
    webhooks: Sequence[tuple[str, Mapping[str, str], datetime]],
) -> set[str]:
    """Store webhooks (MessageSid, form, when received) before they are acknowledged, in one
    transaction; returns the MessageSids not seen before (Twilio never reuses one): a
    redelivery's is not among them, and one given twice here is counted once (see
    `WhatsAppTransport._store`)."""
    rows: dict[str, dict[str, object]] = {}
    for sid, form, now in webhooks:
        rows.setdefault(sid, {"sid": sid, "payload": dict(form), "now": now})
    async with sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        result = await session.execute(_STORE_WEBHOOK[dialect == "postgresql"], list(rows.values()))
        return set(result.scalars())


# Built once, with bind parameters: they run for every webhook, and building a statement
# (and its cache key) costs more CPU than SQLite takes to run it. On the tables, not the
# mapped classes: no loaded object holds these rows, and the ORM's bulk DML path (looking for
# objects to synchronise, ORM-enabled RETURNING) costs more CPU again than the statement.
_INBOUND = cast(Table, InboundUpdate.__table__)
_IDENTITIES = cast(Table, ChannelIdentity.__table__)
# By "is it PostgreSQL": the dialects spell ON CONFLICT each in their own insert().
_STORE_WEBHOOK = tuple(
    insert(_INBOUND)
    .values(
        channel=CHANNEL,
        platform_id=bindparam("sid"),
        fingerprint="",
        payload=bindparam("payload"),
        received_at=bindparam("now"),
    )
    .on_conflict_do_nothing(index_elements=["channel", "platform_id", "fingerprint"])
    .returning(_INBOUND.c.platform_id)
    for insert in (sqlite_insert, pg_insert)
)
_MARK_HANDLED = (
    update(_INBOUND)
    .where(
        _INBOUND.c.channel == CHANNEL,
        _INBOUND.c.platform_id == bindparam("sid"),
        _INBOUND.c.processed_at.is_(None),
    )
    .values(processed_at=bindparam("now"), payload=None)
)
_WROTE_NOW = (
    update(_IDENTITIES)
    .where(
        _IDENTITIES.c.channel == CHANNEL,
        _IDENTITIES.c.external_id == bindparam("sender"),
    )
    .values(last_inbound_at=bindparam("now"))
)


# The claim and the open window in one round trip where the database allows it: PostgreSQL
# runs data-modifying CTEs (measured: a turn is mostly round trips); SQLite takes the two.
_HANDLED = _MARK_HANDLED.returning(_INBOUND.c.id).cte("handled")
_CLAIM_AND_WROTE_NOW = (
    select(func.count())
    .select_from(_HANDLED)
    .add_cte(_WROTE_NOW.where(select(_HANDLED.c.id).exists()).cte("wrote"))
)


async def mark_handled(session: AsyncSession, sid: str, now: datetime) -> bool:
    """Claim a stored webhook in the turn's transaction; False if it was handled already.
    What the person sent is not kept once the turn is done."""
    result = await session.execute(_MARK_HANDLED, {"sid": sid, "now": now})
    return bool(getattr(result, "rowcount", 0))


async def claim_message(session: AsyncSession, sid: str, sender: str, now: datetime) -> bool:
    """`mark_handled`, and if it was new, the sender's 24-hour window opens now: free text
    may reach them until it closes."""
    values = {"sid": sid, "sender": sender, "now": now}
    if session.get_bind().dialect.name == "postgresql":
        return bool(await session.scalar(_CLAIM_AND_WROTE_NOW, values))
    if not await mark_handled(session, sid, now):
        return False
    await session.execute(_WROTE_NOW, values)
    return True


async def unprocessed_webhooks(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> list[dict[str, str]]:
    """Webhooks stored and never handled (the process stopped), oldest first; those older
    than `REPLAY_WITHIN` are dropped, as on Telegram, and whoever sent them is told, once,
    that their message was missed, while a reply may still go (24 hours); an old STOP is
    honoured instead."""
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(InboundUpdate.id, InboundUpdate.payload, InboundUpdate.received_at)
                .where(InboundUpdate.channel == CHANNEL, InboundUpdate.processed_at.is_(None))
                .order_by(InboundUpdate.id)
            )
        ).all()
        fresh = [dict(p) for _, p, at in rows if p and at >= now - REPLAY_WITHIN]
        stale = [row_id for row_id, p, at in rows if not p or at < now - REPLAY_WITHIN]
        missed: set[str] = set()
        stopped: set[str] = set()
        for _, payload, received_at in rows:
            if not payload or received_at >= now - REPLAY_WITHIN:
                continue
            sender = address(payload.get("From", ""))
            if fold(payload.get("Body", "")) in STOP_WORDS:
                # Too old to answer, never too old to honour: no more messages to them.
                stopped.add(sender)
            elif received_at >= now - (WINDOW - WINDOW_MARGIN):
                # Only inside the 24 hours their message opened can a reply go.
                missed.add(sender)
        # Someone whose later message is replayed has not lost their last message.
        missed -= {address(form.get("From", "")) for form in fresh}
        missed -= stopped
        missed.discard("")
        if stopped:
            await session.execute(
                update(ChannelIdentity)
                .where(
                    ChannelIdentity.channel == CHANNEL,
                    ChannelIdentity.external_id.in_(sorted(stopped)),
                )
                .values(unreachable_at=now)
            )
        if stale:
            await session.execute(
                update(InboundUpdate)
                .where(InboundUpdate.id.in_(stale))
                .values(processed_at=now, payload=None)
            )
            log.warning("%d stored WhatsApp messages were too old to replay; dropped", len(stale))
        await enqueue(
            session,
            [Recipient(None, CHANNEL, number, None, None, False) for number in sorted(missed)],
            texts.MISSED_MESSAGE,
            now=now,
            zone=SANTIAGO,
            priority=Priority.PERSONAL,
            broadcast=LATE_REPLY,
        )
    return fresh


# What a receipt may follow: callbacks come late, twice or out of order, and "delivered" never
# goes back to "sent", nor "read" to "delivered".
_RECEIPT_AFTER: dict[str, tuple[str | None, ...]] = {
    "delivered": (None,),
    "read": (None, "delivered"),
}
FAILED_STATUSES = frozenset({"failed", "undelivered"})


async def record_status(
    sessions: async_sessionmaker[AsyncSession],
    sid: str,
    status: str,
    error_code: str,
    now: datetime,
    *,
    zone: ZoneInfo = SANTIAGO,
) -> bool:
    """A status callback, applied monotonically to the delivery whose message it names; a
    63018 (the daily cap) holds it back instead of failing it. True if that queued a message
    (the coordinator told), for the outbox to look.

    Twilio may call back before the outbox has written the send's outcome (it writes a
    window's outcomes together, after the sends): such a callback is kept as an
    `EarlyReceipt` and applied once the row names the message (`apply_early_receipts`)."""
    if not sid or (status not in _RECEIPT_AFTER and status not in FAILED_STATUSES):
        return False  # "queued", "sent"…: what the outbox already knows
    async with sessions() as session, session.begin():
        if await _names_the_message(session, sid):
            return await _apply_status(session, sid, status, error_code, now, zone)
        session.add(
            EarlyReceipt(
                channel=CHANNEL,
                platform_message_id=sid[:64],
                status=status[:16],
                error_code=error_code.strip()[:16],
                received_at=now,
            )
        )
    # The outbox may have written the outcome meanwhile, before this receipt was committed,
    # and looked for early receipts without seeing it: look again. Both looking is harmless,
    # each receipt is applied once (it is deleted as it is applied).
    return await apply_early_receipts(sessions, [sid], now, zone)


async def apply_early_receipts(
    sessions: async_sessionmaker[AsyncSession],
    sids: Sequence[str],
    now: datetime,
    zone: ZoneInfo = SANTIAGO,
) -> bool:
    """The early receipts of these messages whose rows now name them, applied in the order
    they came and deleted. True if that queued a message."""
    if not sids:
        return False
    kept = (EarlyReceipt.channel == CHANNEL) & EarlyReceipt.platform_message_id.in_(sids)
    # Called after every window the outbox sends: a plain read first, so that the usual case
    # (nothing came early) takes no write transaction (on SQLite, the process's writers' turn).
    async with sessions() as session:
        if await session.scalar(select(EarlyReceipt.id).where(kept).limit(1)) is None:
            return False
    queued = False
    async with sessions() as session, session.begin():
        early = (
            await session.scalars(
                select(EarlyReceipt).where(kept).order_by(EarlyReceipt.id).with_for_update()
            )
        ).all()
        named = {
            sid
            for sid in {e.platform_message_id for e in early}
            if await _names_the_message(session, sid)
        }
        for receipt in early:
            if receipt.platform_message_id in named:
                queued |= await _apply_status(
                    session,
                    receipt.platform_message_id,
                    receipt.status,
                    receipt.error_code,
                    now,
                    zone,
                )
                await session.delete(receipt)
    return queued


async def _names_the_message(session: AsyncSession, sid: str) -> bool:
    found = await session.scalar(
        select(Delivery.id)
        .where(Delivery.channel == CHANNEL, Delivery.platform_message_id == sid)
        .limit(1)
    )
    return found is not None


async def _apply_status(
    session: AsyncSession, sid: str, status: str, error_code: str, now: datetime, zone: ZoneInfo
) -> bool:
    this_message = (Delivery.channel == CHANNEL) & (Delivery.platform_message_id == sid)
    if status in FAILED_STATUSES and error_code.strip() == str(DAILY_CAP):
        held = await _held_by_cap_callback(session, this_message, now, zone)
        if held is not None:
            return held
    if status in _RECEIPT_AFTER:
        earlier = _RECEIPT_AFTER[status]
        await session.execute(
            update(Delivery)
            .where(
                this_message,
                Delivery.status == DeliveryStatus.SENT,
                or_(
                    Delivery.receipt.is_(None),
                    Delivery.receipt.in_([r for r in earlier if r is not None] or [""]),
                ),
            )
            .values(receipt=status)
            .execution_options(synchronize_session=False)
        )
    elif status in FAILED_STATUSES:
        code = error_code if error_code.isdigit() else "?"
        reason = {
            str(OUTSIDE_WINDOW): "outside the 24-hour window, and no template for it",
            str(OPTED_OUT): "the person opted out",
        }.get(code, "the channel could not deliver it")
        # Accepted, then failed on the way: the count says so. A receipt already in
        # (delivered, read) is not undone by a late or repeated failure.
        failed = await session.scalars(
            update(Delivery)
            .where(this_message, Delivery.status == DeliveryStatus.SENT, Delivery.receipt.is_(None))
            .values(status=DeliveryStatus.FAILED, last_error=f"twilio {code}: {reason}"[:255])
            .returning(Delivery.recipient)
            .execution_options(synchronize_session=False)
        )
        if code == str(OPTED_OUT):
            for recipient in failed.all():
                await session.execute(
                    update(ChannelIdentity)
                    .where(
                        ChannelIdentity.channel == CHANNEL,
                        ChannelIdentity.external_id == recipient,
                    )
                    .values(unreachable_at=now)
                )
    return False


class _Capped(NamedTuple):
    id: int
    broadcast: str | None
    sent_at: datetime | None
    priority: int
    expires_at: datetime | None


async def _held_by_cap_callback(
    session: AsyncSession, this_message: ColumnElement[bool], now: datetime, zone: ZoneInfo
) -> bool | None:
    """A 63018 in a status callback is not a final failure: the row goes back to `pending`
    for the cap's next window, the rest of its broadcast waits with it, and its coordinator
    is told, once per broadcast. Returns whether a message was queued; None if the row is not
    held (an alert, or a reminder that would arrive too late): it fails as before. A repeated
    or late callback finds no `sent` row for its message (the held row forgot it) and does
    nothing."""
    found = (
        await session.execute(
            select(
                Delivery.id,
                Delivery.broadcast,
                Delivery.sent_at,
                Delivery.priority,
                Delivery.expires_at,
            ).where(
                this_message, Delivery.status == DeliveryStatus.SENT, Delivery.receipt.is_(None)
            )
        )
    ).first()
    if found is None:
        return False
    row = _Capped(*found)
    await broadcasts.serialise(session, row.broadcast)
    until = await _cap_resume(session, row.broadcast, now)
    if row.priority <= Priority.ALERT or (row.expires_at is not None and row.expires_at <= until):
        return None
    told = await _cap_told(session, row.broadcast)
    claimed = await queries.updated(
        session,
        update(Delivery)
        .where(
            Delivery.id == row.id,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.receipt.is_(None),
        )
        .values(
            status=DeliveryStatus.PENDING,
            not_before=now,
            sent_at=None,
            platform_message_id=None,
            last_error=HELD_BY_CAP,
        )
        .execution_options(synchronize_session=False),
    )
    if not claimed:
        return False
    if row.broadcast is None:
        # A notice to one person: no barrio's zone to look up.
        await broadcasts.hold_pending(
            session, Delivery.id == row.id, until, zone, reason=HELD_BY_CAP
        )
        return False
    # Its outcome was written with its window's, so what is `sending` now went after it; so
    # did what is `sent` since with no word back yet (it may be on its way to the same cap).
    later = Delivery.status == DeliveryStatus.SENDING
    if row.sent_at is not None:
        later = later | (
            (Delivery.status == DeliveryStatus.SENT)
            & Delivery.receipt.is_(None)
            & (Delivery.sent_at >= row.sent_at)
        )
    await _hold(session, row.broadcast, now, zone)
    return await _tell(session, row.broadcast, now, zone, later=later, tell=not told)


async def _cap_told(session: AsyncSession, broadcast: str | None) -> bool:
    """Whether a 63018 was handled for this broadcast already (its coordinator told); a
    message that is no broadcast has nobody to tell."""
    if broadcast is None:
        return True
    marked = await session.scalar(
        select(Delivery.id)
        .where(Delivery.broadcast == broadcast, Delivery.last_error.like(_CAP_MARK))
        .limit(1)
    )
    return marked is not None


async def _cap_resume(session: AsyncSession, broadcast: str | None, now: datetime) -> datetime:
    """When rows stopped by the cap go again: with the rest of their broadcast if it is
    waiting already (a later 63018 joins that wait rather than pushing it on), else a whole
    window from now."""
    if broadcast is not None:
        waiting = await session.scalar(
            select(func.min(Delivery.not_before)).where(
                Delivery.broadcast == broadcast,
                Delivery.channel == CHANNEL,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.last_error == HELD_BY_CAP,
                Delivery.not_before > now,
            )
        )
        if waiting is not None:
            return max(waiting, now)
    return now + DAILY_CAP_WINDOW


async def _hold(session: AsyncSession, broadcast: str, now: datetime, zone: ZoneInfo) -> None:
    """Hold the broadcast's WhatsApp rows still queued until the cap's next window: they
    would meet the same cap."""
    until = await _cap_resume(session, broadcast, now)
    local = await broadcasts.zone_of(session, broadcast, zone)
    rows = (Delivery.broadcast == broadcast) & (Delivery.channel == CHANNEL)
    await broadcasts.hold_pending(session, rows, until, local, reason=HELD_BY_CAP)


async def _tell(
    session: AsyncSession,
    broadcast: str,
    now: datetime,
    zone: ZoneInfo,
    *,
    later: ColumnElement[bool],
    tell: bool = True,
) -> bool:
    """The broadcast waits for the cap: its report is due again when it finishes, and with
    `tell` its coordinator hears how many wait (those queued, and the `later` ones: sent
    after the message the cap stopped, and bound to fail the same way) and from when. True
    if a message was queued."""
    rows = (Delivery.broadcast == broadcast) & (Delivery.channel == CHANNEL)
    waiting = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(rows, (Delivery.status == DeliveryStatus.PENDING) | later)
    )
    return await broadcasts.held_back(
        session,
        broadcast,
        waiting=int(waiting or 0),
        until=await _cap_resume(session, broadcast, now),
        now=now,
        default_zone=zone,
        tell=tell,
    )


class WhatsAppTransport:
    """Twilio's webhook in (signature checked, stored, acknowledged), the dialogue run per
    person in order, its replies sent with the REST client at the channel's pace."""

    def __init__(
        self,
        dialogue: Dialogue,
        sender: WhatsAppSender,
        pacer: Pacer,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        auth_token: str,
        public_base_url: str | None,
        concurrency: int = 8,
    ) -> None:
        self.dialogue = dialogue
        self.sender = sender
        # The sender is built before the dialogue (bot/runtime.py): it learns from it the
        # deployment's zone and the outbox's wake-up, for telling a coordinator of the cap.
        sender.zone = sender.zone or dialogue.zone
        sender.on_enqueued = sender.on_enqueued or dialogue.on_enqueued
        self.pacer = pacer
        self.sessions = sessions
        self.clock = clock
        self.validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        # One chain of turns per person: their messages are handled in the order they came.
        self._chains: dict[str, asyncio.Task[None]] = {}
        # Turns of different people at once: a burst of webhooks must not open a turn (and a
        # database transaction) for each at the same moment.
        self._turns = asyncio.Semaphore(concurrency)
        self._handled: dict[str, asyncio.Event] = {}
        # Webhooks waiting to be stored, and the task storing them (`_store`).
        self._to_store: list[tuple[str, dict[str, str], datetime, asyncio.Future[bool]]] = []
        self._storing: asyncio.Task[None] | None = None

    def _signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public one it was configured with (behind a proxy or a
        TLS terminator the request's own URL differs), with the query string."""
        if self.public_base_url is None:
            return str(request.url)
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{self.public_base_url}{request.url.path}{query}"

    async def _form(self, request: Request) -> dict[str, str] | None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
            return None
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            return None
        return {k: v for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)}

    async def _verified(self, request: Request) -> dict[str, str] | Response:
        form = await self._form(request)
        if form is None:
            return Response(status_code=413)
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.validator.validate(self._signed_url(request), form, signature):
            log.warning("whatsapp webhook: missing or bad signature; refused")
            return Response(status_code=403)
        return form

    async def webhook(self, request: Request) -> Response:
        verified = await self._verified(request)
        if isinstance(verified, Response):
            return verified
        sid = verified.get("MessageSid", "")
        if not sid or len(sid) > 64:
            return Response(status_code=400)
        if await self._store(sid, verified):
            self.schedule(verified)
        # An empty TwiML answer: replies go through the REST API, paced like everything else.
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def _store(self, sid: str, form: dict[str, str]) -> bool:
        """Store a webhook before it is acknowledged; False for a redelivery. The webhooks
        that come while others are being written are stored together next, in one transaction:
        each is still acknowledged only once its own row is committed, but a burst takes the
        database's one writer (models/db.py) a few times instead of once per webhook, so the
        turns waiting for it wait less (`whatsapp_webhook` bench)."""
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._to_store.append((sid, form, self.clock(), stored))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_waiting(), name="whatsapp store")
        return await stored

    async def _store_waiting(self) -> None:
        while self._to_store:
            group, self._to_store = self._to_store, []
            try:
                new = await store_webhooks(self.sessions, [(s, f, at) for s, f, at, _ in group])
            except BaseException as error:
                # Not stored, so not acknowledged: each answers 500 and Twilio sends it again.
                for *_, stored in group:
                    if not stored.done():
                        stored.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            for sid, _form, _at, stored in group:
                # A MessageSid twice in one group is new once: the first is handled.
                if not stored.done():
                    stored.set_result(sid in new)
                new.discard(sid)

    async def status_callback(self, request: Request) -> Response:
        verified = await self._verified(request)
        if isinstance(verified, Response):
            return verified
        queued = await record_status(
            self.sessions,
            verified.get("MessageSid", ""),
            verified.get("MessageStatus", ""),
            verified.get("ErrorCode", ""),
            self.clock(),
            zone=self.dialogue.zone,
        )
        if queued and self.dialogue.on_enqueued is not None:
            self.dialogue.on_enqueued()
        return Response(EMPTY_TWIML, media_type="text/xml")

    def schedule(self, form: Mapping[str, str]) -> None:
        person = address(form.get("From", "")) or form.get("MessageSid", "")
        previous = self._chains.get(person)
        sid = form.get("MessageSid", "")
        self._handled.setdefault(sid, asyncio.Event())
        task = asyncio.create_task(self._after(previous, form), name=f"whatsapp turn {sid}")
        self._chains[person] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._chains.get(person) is done:
                del self._chains[person]

        task.add_done_callback(forget)

    async def _after(self, previous: asyncio.Task[None] | None, form: Mapping[str, str]) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        sid = form.get("MessageSid", "")
        try:
            async with self._turns:
                await self._turn(sid, form)
        except Exception as error:
            log.error("whatsapp turn failed\n%s", traceback_without_values(error))
        finally:
            self._handled.setdefault(sid, asyncio.Event()).set()

    async def wait_handled(self, sid: str) -> None:
        await self._handled.setdefault(sid, asyncio.Event()).wait()

    async def _turn(self, sid: str, form: Mapping[str, str]) -> None:
        inbound = inbound_from_webhook(form)
        now = self.clock()
        if inbound is None:
            async with self.sessions() as session, session.begin():
                await mark_handled(session, sid, now)
            return

        async def receipt(session: AsyncSession) -> bool:
            return await claim_message(session, sid, inbound.sender_id, now)

        if inbound.kind == InboundKind.TEXT and fold(inbound.text) in STOP_WORDS:
            replies = await self._opt_out(inbound, receipt)
        elif inbound.kind == InboundKind.TEXT and fold(inbound.text) in START_WORDS:
            replies = await self.dialogue.handle(replace(inbound, text="ayuda"), receipt)
        else:
            replies = await self.dialogue.handle(inbound, receipt)
        first_number = 1
        for reply in replies:
            text = reply.text
            if reply.document is not None:
                text = f"{text}\n\n{await self._file_link(reply.document, inbound.sender_id)}"
            await self.pacer.acquire(inbound.sender_id, reply=True)
            try:
                await self.sender.send(
                    inbound.sender_id, text, reply.options, None, first_number=first_number
                )
            except (RetryLater, SendFailed, SendAmbiguous, Unreachable) as error:
                log.warning("whatsapp reply not sent (%s)", type(error).__name__)
            first_number += len(reply.options)

    async def _file_link(self, document: Document, sender: str) -> str:
        """A file as WhatsApp can have it: a link to the bot's copy. A person's own data
        names them, so erasing them deletes it, and its link lasts an hour."""
        base = self.sender.files_base_url
        valid, words = (
            (files.PERSONAL_FOR, texts.WHATSAPP_FILE_VALID["hour"])
            if document.personal
            else (files.CONTENT_FOR, texts.WHATSAPP_FILE_VALID["week"])
        )
        if base is None:  # the web app is not serving yet
            return texts.WHATSAPP_FILE_FAILED.format(name=document.filename)
        try:
            async with self.sessions() as session, session.begin():
                owner = (
                    await session.scalar(
                        select(ChannelIdentity.member_id).where(
                            ChannelIdentity.channel == CHANNEL,
                            ChannelIdentity.external_id == sender,
                        )
                    )
                    if document.personal
                    else None
                )
                shared = await files.share(
                    session,
                    content=document.content,
                    filename=document.filename,
                    content_type=document.content_type,
                    now=self.clock(),
                    valid_for=valid,
                    member_id=owner,
                )
        except Exception as error:
            log.error("sharing a file for WhatsApp failed\n%s", traceback_without_values(error))
            return texts.WHATSAPP_FILE_FAILED.format(name=document.filename)
        return texts.WHATSAPP_FILE_LINK.format(
            name=document.filename, url=files.url_of(base, shared), valid=words
        )

    async def _opt_out(
        self, inbound: Inbound, receipt: Callable[[AsyncSession], Awaitable[bool]]
    ) -> list[Reply]:
        """STOP: no broadcast reaches this number any more, and no REST call goes to it (not
        even an answer: Twilio has opted the number out and would refuse it, 21610), until
        the person writes again (START)."""
        async with self.sessions() as session, session.begin():
            if not await receipt(session):
                return []
            await session.execute(
                update(ChannelIdentity)
                .where(
                    ChannelIdentity.channel == CHANNEL,
                    ChannelIdentity.external_id == inbound.sender_id,
                )
                .values(unreachable_at=self.clock())
            )
        return []


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
