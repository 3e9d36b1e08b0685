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
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.inbound import REPLAY_WITHIN
from handlers import texts
from handlers.core import Inbound, InboundKind, Option, Reply, fold
from handlers.dialogue import COMMANDS, Dialogue
from models import ChannelIdentity, Delivery, DeliveryStatus, InboundUpdate
from scheduler.outbox import (
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
# Meta's daily cap resets within a day; waiting an hour and trying again is the cheapest probe.
DAILY_CAP_PAUSE_S = 3600.0


def address(whatsapp_address: str) -> str:
    """ "whatsapp:+56912345678" → "+56912345678": how identities store a number."""
    return whatsapp_address.removeprefix("whatsapp:").strip()


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
        return Inbound(
            CHANNEL,
            sender,
            InboundKind.MEDIA,
            text=body,
            media=form.get("MediaContentType0") or "media",
            media_id=form.get("MediaUrl0"),
        )
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
    text = spell_commands(text)
    if options:
        listed = "\n".join(
            f"*{number}.* {o.label}" for number, o in enumerate(options, first_number)
        )
        text = f"{text}\n\n{listed}\n\n{texts.WHATSAPP_ANSWER_WITH_NUMBER}"
    parts = _split(text, MAX_BODY - PART_MARK)
    if len(parts) == 1:
        return parts
    return [f"({index}/{len(parts)}) {part}" for index, part in enumerate(parts, 1)]


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
    ) -> None:
        self.client = client
        self.from_ = f"whatsapp:{address(from_number)}"
        self.status_callback = status_callback
        self.sessions = sessions
        self.clock = clock
        self.templates = dict(templates or {})

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None,
        kind: str | None = None,
        *,
        first_number: int = 1,
    ) -> str:
        if kind is not None and not await self._in_window(recipient):
            return await self._send_template(recipient, text, options, kind)
        sid = ""
        for body in render(text, options, first_number):
            sid = await self._create(recipient, {"body": body}, kind)
        return sid

    async def _in_window(self, recipient: str) -> bool:
        if self.sessions is None or self.clock is None:
            return True
        async with self.sessions() as session:
            last = await session.scalar(
                select(ChannelIdentity.last_inbound_at).where(
                    ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_id == recipient
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
        self, recipient: str, content: Mapping[str, str], kind: str | None = None
    ) -> str:
        kwargs: dict[str, object] = {"from_": self.from_, "to": f"whatsapp:{recipient}"}
        kwargs.update(content)
        if kind == "alert":
            # Held up somewhere on the way, a security alert fails rather than arriving late.
            kwargs["validity_period"] = ALERT_VALIDITY_S
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            message = await self.client.messages.create_async(**kwargs)
        except TwilioRestException as error:
            raise _mapped(error) from None
        except aiohttp.ClientConnectorError:
            # Never reached Twilio: nothing was sent, so trying again cannot double it.
            raise SendFailed("twilio unreachable", permanent=False) from None
        except (TimeoutError, aiohttp.ClientError):
            # The request may have arrived: no idempotency key, so never resent blindly.
            raise SendAmbiguous("twilio: no answer after the request was sent") from None
        return str(message.sid)


def _mapped(error: TwilioRestException) -> Exception:
    code = error.code
    if error.status == 429 or code == TOO_MANY_REQUESTS:
        return RetryLater(1.0)
    if code == DAILY_CAP:
        return RetryLater(DAILY_CAP_PAUSE_S)
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


def twilio_client(account_sid: str, auth_token: str, api_base_url: str | None) -> Client:
    """The twilio REST client on its async HTTP client; `api_base_url` points it elsewhere
    than api.twilio.com (the emulator), keeping the paths Twilio's. Build it inside the
    running event loop; close it with `await client.http_client.close()`."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient())
    if api_base_url:
        client.api.base_url = api_base_url.rstrip("/")
    return client


async def store_webhook(
    sessions: async_sessionmaker[AsyncSession], sid: str, form: Mapping[str, str], now: datetime
) -> bool:
    """Store the webhook before it is acknowledged; False for a redelivery (same MessageSid,
    which Twilio never reuses)."""
    async with sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        result = await session.execute(
            insert(InboundUpdate)
            .values(
                channel=CHANNEL,
                platform_id=sid,
                fingerprint="",
                payload=dict(form),
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["channel", "platform_id", "fingerprint"])
            .returning(InboundUpdate.id)
        )
        return result.scalar() is not None


async def mark_handled(session: AsyncSession, sid: str, now: datetime) -> bool:
    """Claim a stored webhook in the turn's transaction; False if it was handled already.
    What the person sent is not kept once the turn is done."""
    result = await session.execute(
        update(InboundUpdate)
        .where(
            InboundUpdate.channel == CHANNEL,
            InboundUpdate.platform_id == sid,
            InboundUpdate.processed_at.is_(None),
        )
        .values(processed_at=now, payload=None)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def unprocessed_webhooks(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> list[dict[str, str]]:
    """Webhooks stored and never handled (the process stopped), oldest first; those older
    than `REPLAY_WITHIN` are dropped, as on Telegram."""
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
        if stale:
            await session.execute(
                update(InboundUpdate)
                .where(InboundUpdate.id.in_(stale))
                .values(processed_at=now, payload=None)
            )
            log.warning("%d stored WhatsApp messages were too old to replay; dropped", len(stale))
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
) -> None:
    """A status callback, applied monotonically to the delivery whose message it names."""
    if not sid:
        return
    this_message = (Delivery.channel == CHANNEL) & (Delivery.platform_message_id == sid)
    async with sessions() as session, session.begin():
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
                .where(
                    this_message, Delivery.status == DeliveryStatus.SENT, Delivery.receipt.is_(None)
                )
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
    ) -> None:
        self.dialogue = dialogue
        self.sender = sender
        self.pacer = pacer
        self.sessions = sessions
        self.clock = clock
        self.validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        # One chain of turns per person: their messages are handled in the order they came.
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._handled: dict[str, asyncio.Event] = {}

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
        if await store_webhook(self.sessions, sid, verified, self.clock()):
            self.schedule(verified)
        # An empty TwiML answer: replies go through the REST API, paced like everything else.
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status_callback(self, request: Request) -> Response:
        verified = await self._verified(request)
        if isinstance(verified, Response):
            return verified
        await record_status(
            self.sessions,
            verified.get("MessageSid", ""),
            verified.get("MessageStatus", ""),
            verified.get("ErrorCode", ""),
            self.clock(),
        )
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
            if not await mark_handled(session, sid, now):
                return False
            # Their 24-hour window opens now: free text may reach them until it closes.
            await session.execute(
                update(ChannelIdentity)
                .where(
                    ChannelIdentity.channel == CHANNEL,
                    ChannelIdentity.external_id == inbound.sender_id,
                )
                .values(last_inbound_at=now)
            )
            return True

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
                text = texts.WHATSAPP_NO_FILES.format(name=reply.document.filename)
            await self.pacer.acquire(inbound.sender_id, reply=True)
            try:
                await self.sender.send(
                    inbound.sender_id, text, reply.options, None, first_number=first_number
                )
            except (RetryLater, SendFailed, SendAmbiguous, Unreachable) as error:
                log.warning("whatsapp reply not sent (%s)", type(error).__name__)
            first_number += len(reply.options)

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
