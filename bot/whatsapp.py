"""The WhatsApp transport, through Twilio: webhooks in, `Inbound` to the same dialogue core,
replies and outbox messages out with the twilio REST client.

Thin like the Telegram one. WhatsApp has no buttons for a bot of ours, so options are a short
numbered list the person answers by typing the number (the core maps it back); commands are
the same words without a slash, parsed by the core; a poster's wa.me link carries a join text
with the barrio's invite code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from handlers import texts
from handlers.core import Inbound, InboundKind, Option
from scheduler.outbox import RetryLater, SendAmbiguous, SendFailed, Unreachable

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
# A WhatsApp message body holds at most this many characters (Twilio refuses longer: 21617).
MAX_BODY = 1600
# Room kept for the "(2/3)" that numbers the parts of a long message.
PART_MARK = 8
# The poster's wa.me link fills in this text; sending it joins the barrio of the code.
JOIN_TEXT = "Hola, quiero unirme a mi barrio con el código {code}"
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


def render(text: str, options: Sequence[Option]) -> list[str]:
    """The message as WhatsApp bodies: the options as a numbered list to answer by typing,
    split at line (or sentence) breaks into numbered parts when over `MAX_BODY`."""
    if options:
        listed = "\n".join(f"*{number}.* {o.label}" for number, o in enumerate(options, 1))
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


class WhatsAppSender:
    """The outbox's sender for WhatsApp: one REST call per body, errors mapped to the
    outbox's retry rules (and logged by the outbox with ids only)."""

    channel = CHANNEL

    def __init__(self, client: Client, from_number: str, status_callback: str | None) -> None:
        self.client = client
        self.from_ = f"whatsapp:{address(from_number)}"
        self.status_callback = status_callback

    async def send(
        self, recipient: str, text: str, options: Sequence[Option], photo: str | None
    ) -> str:
        sid = ""
        for body in render(text, options):
            sid = await self._create(recipient, body)
        return sid

    async def _create(self, recipient: str, body: str) -> str:
        kwargs: dict[str, object] = {"from_": self.from_, "to": f"whatsapp:{recipient}"}
        kwargs["body"] = body
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
