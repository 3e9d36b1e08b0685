"""In-memory model of the parts of Twilio's Messages API and WhatsApp channel the bot uses.

`TwilioState` holds the account, its WhatsApp senders, every message created or received,
the people's customer-service windows, opt-outs and Meta's per-sender limits, and implements
Messages create / fetch with Twilio's JSON shapes and error codes. It knows nothing about
HTTP: `bot.emulator.twilio` serves it and posts the webhooks and status callbacks.

Where Twilio reports a problem matters as much as the code, so the model keeps Twilio's split:

* Synchronous (the create call answers 4xx and nothing is sent): 20003 bad credentials (401),
  20429 too many requests (429), 21211 invalid To, 21602 no body, 21603 / 21604 missing From /
  To, 21606 From not a WhatsApp address, 21610 opted out, 21617 body over 1,600 characters,
  21620 bad media URL, 21624 bad ValidityPeriod, 21609 bad StatusCallback, 21655 / 21656 bad
  ContentSid / ContentVariables, 21910 From and To on different channels.
* Asynchronous (the create call answers 201 "queued", then the message fails and the status
  callback says `failed` with an ErrorCode): 63016 freeform outside the 24-hour window, 63018
  Meta's cap on business-initiated conversations, 63003 number not on WhatsApp, 63007 unknown
  WhatsApp sender, 63028 template parameter mismatch, 30036 ValidityPeriod expired in the
  queue. `channel_errors="sync"` answers the first four synchronously instead (HTTP 400 with
  the same code): not what Twilio does, a convenience for code that wants the simpler model.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.emulator.telegram_state import Notifier, _window_wait

JSONDict = dict[str, Any]
FormItems = Sequence[tuple[str, str]]

API_VERSION = "2010-04-01"
# Twilio refuses longer bodies with 21617 (WhatsApp itself allows 4,096).
MAX_BODY_CHARS = 1600
MAX_VALIDITY_PERIOD_S = 36000
WINDOW_S = 24 * 3600.0
# Twilio's WhatsApp sandbox sender, the default From of the emulated account.
SANDBOX_SENDER = "+14155238886"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "emulator-auth-token-0123456789ab"
# Twilio's default opt-out handling: a message that is exactly one of these words.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

OUTBOUND_STATUSES = ("queued", "sent", "delivered", "read", "failed", "undelivered")
FAILURES = frozenset({"failed", "undelivered"})
# Progress of a message; a failure is final whatever its rank.
RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}

ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: (
        "The From phone number {from_} is not a valid, SMS-capable inbound phone number "
        "or short code for your account."
    ),
    21609: "The StatusCallback URL {url} is not a valid URL.",
    21610: "Attempt to send to unsubscribed recipient",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21620: "Invalid media URL(s)",
    21624: "Invalid validity period value",
    21655: "The ContentSid is Invalid",
    21656: "The ContentVariables Parameter is invalid",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    30008: "Unknown error",
    30036: "Validity Period Expired",
    63003: "Channel could not find To address",
    63007: "Twilio could not find a Channel with the specified From address",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
    63018: "Rate limit exceeded for Channel",
    63019: "Media failed to download",
    63024: "Invalid message recipient",
    63028: "Number of parameters provided does not match the expected number of parameters",
}
# What WhatsApp takes as media (Twilio checks the Content-Type its GET of MediaUrl answers).
WHATSAPP_MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/webp",
        "audio/ogg",
        "audio/amr",
        "audio/aac",
        "audio/mpeg",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "text/vcard",
    }
)
MEDIA_FAILED = 63019
# The channel errors that `channel_errors="sync"` answers at create time.
CHANNEL_ERRORS = frozenset({63003, 63007, 63016, 63018})

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def more_info(code: int) -> str:
    return f"https://www.twilio.com/docs/errors/{code}"


def error_message(code: int, **details: str) -> str:
    template = ERROR_MESSAGES.get(code, "Error {code}")
    try:
        return template.format(code=code, **details)
    except KeyError:
        return template


class TwilioError(Exception):
    """A Twilio REST error answer: HTTP status and Twilio's JSON error body.

    twilio-python turns it into `TwilioRestException(status, uri, "Unable to create record:
    <message>", code)`; a body with `type` and `title` would make it a TwilioServiceException
    instead (RFC 9457), which the Messages API never answers, so they are never added.
    """

    def __init__(
        self, status: int, code: int, message: str | None = None, *, detail: str | None = None
    ):
        self.status = status
        self.code = code
        self.message = message or error_message(code)
        self.detail = detail
        super().__init__(f"{status} {code}: {self.message}")

    def payload(self) -> JSONDict:
        body: JSONDict = {
            "code": self.code,
            "message": self.message,
            "more_info": more_info(self.code),
            "status": self.status,
        }
        if self.detail is not None:
            body["detail"] = self.detail
        return body


def unauthorized() -> TwilioError:
    return TwilioError(401, 20003, detail="Your AccountSid or AuthToken was incorrect.")


def not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, error_message(20404, path=path))


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(timestamp: float | None) -> str | None:
    """Twilio's date format: "Thu, 24 Aug 2023 05:01:45 +0000"."""
    if timestamp is None:
        return None
    return format_datetime(datetime.fromtimestamp(int(timestamp), UTC))


def bare(address: str) -> str:
    """ "whatsapp:+56912345678" → "+56912345678"."""
    return address.strip().removeprefix("whatsapp:").strip()


def whatsapp(number: str) -> str:
    return "whatsapp:" + bare(number)


def checked_number(number: str) -> str:
    """A person's number as E.164 (with or without "whatsapp:"); ValueError otherwise."""
    value = bare(number)
    if not _E164.fullmatch(value):
        raise ValueError(f"not an E.164 number: {number!r}")
    return value


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass
class Message:
    """One message, outbound (created through the API or a TwiML reply) or inbound."""

    sid: str
    account_sid: str
    from_: str
    to: str
    body: str
    direction: str
    date_created: float
    date_updated: float
    status: str = "queued"
    date_sent: float | None = None
    error_code: int | None = None
    error_message: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    media_urls: list[str] = field(default_factory=list)
    # What fetching each MediaUrl gave (outbound): (Content-Type, the bytes); tests look.
    fetched_media: list[tuple[str, bytes]] = field(default_factory=list)
    status_callback: str | None = None
    validity_period: int | None = None
    business_initiated: bool = False
    # Statuses still to come, in order, and the error code of a failure among them.
    plan: list[str] = field(default_factory=list)
    plan_error: int | None = None
    # Status callbacks posted: {"status", "http_status", "url"}.
    callbacks: list[JSONDict] = field(default_factory=list)

    @property
    def number(self) -> str:
        """The person's number: To of an outbound message, From of an inbound one."""
        return bare(self.from_ if self.direction == "inbound" else self.to)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> JSONDict:
        """The Message resource as Twilio's JSON represents it."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": str(len(self.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": self.uri,
        }

    def record(self) -> JSONDict:
        """What tests and the control API see: the resource's essentials, plain."""
        return {
            "sid": self.sid,
            "number": self.number,
            "from": self.from_,
            "to": self.to,
            "direction": self.direction,
            "body": self.body,
            "content_sid": self.content_sid,
            "content_variables": self.content_variables,
            "media_urls": list(self.media_urls),
            "media": [
                {"content_type": kind, "size": len(data)} for kind, data in self.fetched_media
            ],
            "validity_period": self.validity_period,
            "status_callback": self.status_callback,
            "status": self.status,
            "error_code": self.error_code,
            "fails_with": self.plan_error if self.plan and self.plan[-1] in FAILURES else None,
            "business_initiated": self.business_initiated,
            "date_created": self.date_created,
            "callbacks": [dict(callback) for callback in self.callbacks],
        }


@dataclass
class Inbound:
    """A webhook the emulator built for a person's message, kept for redelivery."""

    message_sid: str
    params: dict[str, str]
    idempotency_token: str
    deliveries: list[JSONDict] = field(default_factory=list)


@dataclass
class Fault:
    """An injected failure for the next API request: an error answer, or a hang (the
    request is received, optionally carried out, and answered only after `seconds`)."""

    kind: Literal["error", "hang"]
    status: int = 500
    code: int | None = None
    message: str | None = None
    seconds: float = 30.0
    apply: bool = True
    method: Literal["create", "fetch", "any"] = "create"

    def error(self) -> TwilioError:
        code = self.code
        if code is None:
            code = {429: 20429, 401: 20003, 404: 20404, 503: 20503}.get(self.status, 20500)
        return TwilioError(self.status, code, self.message)


class TwilioState:
    """One Twilio account with WhatsApp senders, kept in memory.

    Times come from the injectable `clock` (seconds since the epoch, like `time.time`), which
    drives the 24-hour window, the daily conversation cap, the rate limit, ValidityPeriod and
    the dates in the JSON, so a test moves all of them without sleeping.
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        senders: Iterable[str] = (SANDBOX_SENDER,),
        *,
        rate_per_s: float | None = None,
        daily_conversation_cap: int | None = None,
        channel_errors: Literal["async", "sync"] = "async",
        enforce_opt_out: bool = True,
        opt_out_keywords: Iterable[str] = OPT_OUT_KEYWORDS,
        opt_in_keywords: Iterable[str] = OPT_IN_KEYWORDS,
        clock: Callable[[], float] = time.time,
    ):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.senders = [checked_number(sender) for sender in senders]
        if not self.senders:
            raise ValueError("at least one WhatsApp sender is needed")
        self.channel_errors = channel_errors
        self.enforce_opt_out = enforce_opt_out
        self.opt_out_keywords = frozenset(word.upper() for word in opt_out_keywords)
        self.opt_in_keywords = frozenset(word.upper() for word in opt_in_keywords)
        self.clock = clock
        # Where inbound MediaUrlN point: Twilio's API host, or the emulator once served.
        self.media_base_url = "https://api.twilio.com"
        self.rate_per_s: float | None = None
        self.daily_conversation_cap: int | None = None
        self.set_limits(rate_per_s, daily_conversation_cap)
        # Content templates (ContentSid → body with {{1}} placeholders) belong to the
        # account, not to a conversation: they survive reset().
        self.templates: dict[str, str] = {}
        self._activity = Notifier()
        self._closing = False
        self.reset()

    # ----------------------------------------------------------------- lifecycle & config --

    def reset(self) -> None:
        """Forget messages, people, windows, opt-outs, limits' counters, faults and stats.
        Credentials, senders, templates, limits, the webhook and proxies stay."""
        self._messages: dict[str, Message] = {}
        self._sent: list[Message] = []
        self._sent_by_number: dict[str, list[Message]] = {}
        self._inbound: dict[str, Inbound] = {}
        self._inbound_order: list[str] = []
        self._profiles: dict[str, str] = {}
        self._not_on_whatsapp: set[str] = set()
        self._last_inbound: dict[tuple[str, str], float] = {}
        self._opted_out: set[tuple[str, str]] = set()
        self._conversations: dict[str, dict[str, float]] = {}
        self._stamps: dict[str, deque[float]] = {}
        self._faults: deque[Fault] = deque()
        self._delivery_failures: dict[str, deque[tuple[str, int]]] = {}
        self._media: dict[str, tuple[str, bytes]] = {}
        self.recent_errors: deque[JSONDict] = deque(maxlen=50)
        self.stats: JSONDict = {
            "requests": 0,
            "created": 0,
            "fetched": 0,
            "errors": 0,
            "http_429": 0,
            "error_codes": {},
            "inbound": 0,
            "webhook_deliveries": 0,
            "webhook_failures": 0,
            "status_callbacks": 0,
            "status_callback_failures": 0,
        }
        self._activity.notify_all()

    def set_limits(
        self, rate_per_s: float | None = None, daily_conversation_cap: int | None = None
    ) -> None:
        """Messages per second per sender (over it: 429 / 20429) and business-initiated
        conversations per sender in any 24 hours (over it: 63018). None: no limit."""
        if rate_per_s is not None and rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive or None")
        if daily_conversation_cap is not None and daily_conversation_cap < 0:
            raise ValueError("daily_conversation_cap must be >= 0 or None")
        self.rate_per_s = rate_per_s
        self.daily_conversation_cap = daily_conversation_cap

    def conversations_open(self, *, sender: str | None = None) -> int:
        """Business-initiated conversations the sender has open now: what the daily cap
        counts (each closes 24 hours after it was opened)."""
        cutoff = self.clock() - WINDOW_S
        opened = self._conversations.get(self._sender(sender), {})
        return sum(1 for at in opened.values() if at > cutoff)

    def reset_daily_cap(self, *, sender: str | None = None) -> None:
        """Start the daily cap's count afresh, as if every conversation the sender (or every
        sender) opened were over: a test that does not move the clock a day."""
        if sender is None:
            self._conversations.clear()
        else:
            self._conversations.pop(self._sender(sender), None)

    def add_template(self, content_sid: str, body: str) -> None:
        """Register an approved Content template: its body, with {{1}}-style placeholders
        that ContentVariables fill in. Once any is registered, unknown ContentSids are 21655."""
        if not _CONTENT_SID.fullmatch(content_sid):
            raise ValueError(f"a ContentSid is 'HX' and 32 hex digits, not {content_sid!r}")
        self.templates[content_sid] = body

    def add_number(
        self, number: str, *, profile_name: str | None = None, on_whatsapp: bool = True
    ) -> str:
        """Describe a person: their WhatsApp profile name, or that the number has no
        WhatsApp (messages to it fail with 63003). Unknown numbers are on WhatsApp."""
        value = checked_number(number)
        if profile_name is not None:
            self._profiles[value] = profile_name
        if on_whatsapp:
            self._not_on_whatsapp.discard(value)
        else:
            self._not_on_whatsapp.add(value)
        return value

    def profile_name(self, number: str) -> str:
        value = checked_number(number)
        return self._profiles.get(value, f"Contacto {value[-4:]}")

    def fail_next(
        self,
        status: int = 500,
        count: int = 1,
        *,
        code: int | None = None,
        message: str | None = None,
        method: Literal["create", "fetch", "any"] = "create",
    ) -> None:
        """Answer the next `count` API requests with an error (500 → Twilio's 20500, 429 →
        20429, or any status and code) without carrying them out."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._faults.extend(
            Fault("error", status, code, message, method=method) for _ in range(count)
        )

    def hang_next(
        self,
        count: int = 1,
        *,
        seconds: float = 30.0,
        apply: bool = True,
        method: Literal["create", "fetch", "any"] = "create",
    ) -> None:
        """Make the next `count` requests hang for `seconds` after they arrive, so the client
        times out. With `apply` the request is carried out first (the message exists and is
        recorded: the ambiguous case); without it, nothing happens. `release_hung()` (and
        closing the emulator) answers them early."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._faults.extend(
            Fault("hang", seconds=seconds, apply=apply, method=method) for _ in range(count)
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def fail_delivery(
        self,
        number: str,
        status: Literal["failed", "undelivered"] = "undelivered",
        error_code: int = 63024,
        count: int = 1,
    ) -> None:
        """The next `count` accepted messages to `number` end in `status` with `error_code`
        (undelivered after sent, failed straight from queued) instead of delivered."""
        if status not in FAILURES:
            raise ValueError("status must be 'failed' or 'undelivered'")
        queue = self._delivery_failures.setdefault(checked_number(number), deque())
        queue.extend((status, int(error_code)) for _ in range(count))

    # ------------------------------------------------------- windows, opt-outs, people --

    def _sender(self, sender: str | None) -> str:
        return checked_number(sender) if sender else self.senders[0]

    def open_window(self, number: str, *, sender: str | None = None) -> None:
        """As if the person had just written: their 24-hour window starts now."""
        self._last_inbound[(self._sender(sender), checked_number(number))] = self.clock()

    def age_window(self, number: str, hours: float, *, sender: str | None = None) -> None:
        """Move the person's last inbound message `hours` further into the past (or close
        the window for good if they never wrote)."""
        key = (self._sender(sender), checked_number(number))
        if key in self._last_inbound:
            self._last_inbound[key] -= hours * 3600.0

    def close_window(self, number: str, *, sender: str | None = None) -> None:
        self._last_inbound.pop((self._sender(sender), checked_number(number)), None)

    def in_window(self, number: str, *, sender: str | None = None) -> bool:
        last = self._last_inbound.get((self._sender(sender), checked_number(number)))
        return last is not None and self.clock() - last < WINDOW_S

    def window_expires_at(self, number: str, *, sender: str | None = None) -> float | None:
        last = self._last_inbound.get((self._sender(sender), checked_number(number)))
        return None if last is None else last + WINDOW_S

    def set_opted_out(
        self, number: str, opted_out: bool = True, *, sender: str | None = None
    ) -> None:
        key = (self._sender(sender), checked_number(number))
        if opted_out:
            self._opted_out.add(key)
        else:
            self._opted_out.discard(key)

    def is_opted_out(self, number: str, *, sender: str | None = None) -> bool:
        return (self._sender(sender), checked_number(number)) in self._opted_out

    # --------------------------------------------------------------------- the REST API --

    def check_auth(self, username: str | None, password: str | None, account_sid: str) -> None:
        if username != self.account_sid or password != self.auth_token:
            raise unauthorized()
        if account_sid != self.account_sid:
            raise unauthorized()

    def next_fault(self, method: Literal["create", "fetch"]) -> Fault | None:
        if self._faults and self._faults[0].method in (method, "any"):
            return self._faults.popleft()
        return None

    def record_error(self, method: str, error: TwilioError) -> None:
        if error.status == 429:
            self.stats["http_429"] += 1
        else:
            self.stats["errors"] += 1
        codes = self.stats["error_codes"]
        codes[str(error.code)] = codes.get(str(error.code), 0) + 1
        self.recent_errors.append(
            {"method": method, "status": error.status, "code": error.code, "message": error.message}
        )

    def create_message(self, params: FormItems) -> Message:
        """Messages create with the request's form fields (MediaUrl may repeat); raises
        `TwilioError` for what Twilio refuses synchronously."""
        form: dict[str, str] = {}
        media_urls: list[str] = []
        for name, value in params:
            if name == "MediaUrl":
                media_urls.append(value)
            else:
                form[name] = value
        to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
        sender = bare(from_)
        self._check_rate(sender)
        if not to:
            raise TwilioError(400, 21604)
        if not from_:
            raise TwilioError(400, 21603)
        to_whatsapp, from_whatsapp = to.startswith("whatsapp:"), from_.startswith("whatsapp:")
        if to_whatsapp != from_whatsapp:
            raise TwilioError(400, 21910)
        if not from_whatsapp or not _E164.fullmatch(sender):
            raise TwilioError(400, 21606, error_message(21606, from_=from_))
        number = bare(to)
        if not _E164.fullmatch(number):
            raise TwilioError(400, 21211, error_message(21211, to=to))
        body = form.get("Body", "")
        content_sid = form.get("ContentSid") or None
        if not body and not content_sid and not media_urls:
            raise TwilioError(400, 21602)
        if len(body) > MAX_BODY_CHARS:
            raise TwilioError(400, 21617)
        variables: dict[str, str] | None = None
        if content_sid is not None:
            if not _CONTENT_SID.fullmatch(content_sid) or (
                self.templates and content_sid not in self.templates
            ):
                raise TwilioError(400, 21655)
            variables = _content_variables(form.get("ContentVariables"))
        if any(not _is_http_url(url) for url in media_urls):
            raise TwilioError(400, 21620)
        validity = _validity_period(form.get("ValidityPeriod"))
        callback = form.get("StatusCallback") or None
        if callback is not None and not _is_http_url(callback):
            raise TwilioError(400, 21609, error_message(21609, url=callback))
        if self.enforce_opt_out and (sender, number) in self._opted_out:
            raise TwilioError(400, 21610)

        now = self.clock()
        template = self.templates.get(content_sid) if content_sid else None
        message = Message(
            sid=new_sid("MM" if media_urls else "SM"),
            account_sid=self.account_sid,
            from_=from_,
            to=to,
            body=_render(template, variables) if template is not None else body,
            direction="outbound-api",
            date_created=now,
            date_updated=now,
            content_sid=content_sid,
            content_variables=variables,
            media_urls=media_urls,
            status_callback=callback,
            validity_period=validity,
        )
        failure = self._channel_outcome(message, sender, number, template)
        if failure is not None and self.channel_errors == "sync" and failure in CHANNEL_ERRORS:
            raise TwilioError(400, failure)
        self._stamps.setdefault(sender, deque()).append(now)
        if failure is None and message.business_initiated:
            self._conversations.setdefault(sender, {})[number] = now
        if failure is not None:
            message.plan, message.plan_error = ["failed"], failure
        else:
            planned = self._delivery_failures.get(number)
            if planned:
                status, code = planned.popleft()
                message.plan = ["failed"] if status == "failed" else ["sent", "undelivered"]
                message.plan_error = code
            else:
                message.plan = ["sent", "delivered", "read"]
        self._store_outbound(message)
        self.stats["created"] += 1
        return message

    def _check_rate(self, sender: str) -> None:
        if self.rate_per_s is None:
            return
        stamps = self._stamps.setdefault(sender, deque())
        if _window_wait(stamps, self.rate_per_s, self.clock()) > 0:
            raise TwilioError(429, 20429)

    def _channel_outcome(
        self, message: Message, sender: str, number: str, template: str | None
    ) -> int | None:
        """The error the channel will fail this message with, if any; marks a template sent
        outside the window as business-initiated."""
        if sender not in self.senders:
            return 63007
        if number in self._not_on_whatsapp:
            return 63003
        if template is not None and _placeholders(template) - set(message.content_variables or {}):
            return 63028
        last = self._last_inbound.get((sender, number))
        if last is not None and message.date_created - last < WINDOW_S:
            return None
        if message.content_sid is None:
            return 63016
        message.business_initiated = True
        opened = self._conversations.setdefault(sender, {})
        cutoff = message.date_created - WINDOW_S
        for person, at in list(opened.items()):
            if at <= cutoff:
                del opened[person]
        if number in opened:
            message.business_initiated = False  # the conversation is already open
            return None
        if self.daily_conversation_cap is not None and len(opened) >= self.daily_conversation_cap:
            return 63018
        return None

    def _store_outbound(self, message: Message) -> None:
        self._messages[message.sid] = message
        self._sent.append(message)
        self._sent_by_number.setdefault(message.number, []).append(message)
        self._activity.notify_all()

    def record_reply(self, inbound: Inbound, body: str, media_urls: list[str]) -> Message:
        """A message the bot sent by answering a webhook with TwiML <Message>."""
        now = self.clock()
        message = Message(
            sid=new_sid("MM" if media_urls else "SM"),
            account_sid=self.account_sid,
            from_=inbound.params["To"],
            to=inbound.params["From"],
            body=body,
            direction="outbound-reply",
            date_created=now,
            date_updated=now,
            media_urls=media_urls,
            plan=["sent", "delivered", "read"],
        )
        self._store_outbound(message)
        return message

    def fetch_message(self, sid: str) -> Message:
        message = self._messages.get(sid)
        if message is None:
            raise not_found(f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json")
        self.stats["fetched"] += 1
        return message

    # ------------------------------------------------------------------ status progress --

    def plan_transition(
        self,
        message: Message,
        status: str | None = None,
        *,
        error_code: int | None = None,
    ) -> list[str]:
        """Move a message forward to `status` (default: its next planned status) and return
        the statuses it went through, in order. A queued message past its ValidityPeriod
        fails with 30036 instead; `failed` / `undelivered` may be forced with `error_code`
        (default 30008). Raises ValueError for a status that cannot come next."""
        if status is not None and status not in OUTBOUND_STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        if not message.plan:
            if status is None:
                return []
            raise ValueError(f"message {message.sid} is already {message.status}")
        now = self.clock()
        if (
            message.status == "queued"
            and message.validity_period is not None
            and now - message.date_created > message.validity_period
        ):
            message.plan, message.plan_error, status = ["failed"], 30036, None
        target = status or message.plan[0]
        if target in message.plan:
            index = message.plan.index(target)
            steps, message.plan = message.plan[: index + 1], message.plan[index + 1 :]
        elif target in FAILURES:
            steps = (
                ["sent", target]
                if target == "undelivered" and message.status == "queued"
                else [target]
            )
            message.plan, message.plan_error = [], error_code or 30008
        else:
            raise ValueError(
                f"message {message.sid} is {message.status}; next planned: {message.plan}"
            )
        for step in steps:
            message.status = step
            message.date_updated = now
            if step == "sent" and message.date_sent is None:
                message.date_sent = now
            if step in FAILURES:
                message.error_code = message.plan_error
                message.error_message = error_message(message.plan_error or 30008)
        self._activity.notify_all()
        return steps

    def note_status(self, message: Message, status: str, error_code: int | None) -> None:
        """Keep the resource monotonic when callbacks are replayed by hand: it takes the most
        advanced status seen, and a failure is final."""
        if message.status in FAILURES:
            return
        if status in FAILURES:
            message.status, message.plan = status, []
            message.error_code = error_code or message.plan_error or 30008
            message.error_message = error_message(message.error_code)
        elif RANK.get(status, -1) > RANK.get(message.status, -1):
            message.status = status
            if message.date_sent is None and RANK[status] >= RANK["sent"]:
                message.date_sent = self.clock()
            message.plan = [
                step for step in message.plan if step in FAILURES or RANK[step] > RANK[status]
            ]
        message.date_updated = self.clock()

    def callback_params(
        self, message: Message, status: str, error_code: int | None
    ) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback."""
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "ChannelPrefix": "whatsapp",
            "ChannelToAddress": bare(message.to),
            "From": message.from_,
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "StructuredMessage": "false",
            "To": message.to,
        }
        if status in FAILURES:
            params["ErrorCode"] = str(error_code or message.error_code or 30008)
        return params

    # ------------------------------------------------------------------------- inbound --

    def build_inbound(
        self,
        number: str,
        *,
        body: str = "",
        message_type: str = "text",
        extra: Mapping[str, str] | None = None,
        media: Sequence[tuple[str, bytes]] = (),
        profile_name: str | None = None,
        sender: str | None = None,
    ) -> Inbound:
        """A person's message as the webhook form Twilio posts, with the side effects Twilio
        applies on receipt: the window opens and opt-out / opt-in keywords take effect."""
        value = checked_number(number)
        to = self._sender(sender)
        sid = new_sid("MM" if media else "SM")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": whatsapp(value),
            "MessageSid": sid,
            "MessageType": message_type,
            "NumMedia": str(len(media)),
            "NumSegments": "1",
            "ProfileName": profile_name or self.profile_name(value),
            "ReferralNumMedia": "0",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": whatsapp(to),
            "WaId": value.lstrip("+"),
        }
        for index, (content_type, data) in enumerate(media):
            media_sid = new_sid("ME")
            self._media[media_sid] = (content_type, data)
            params[f"MediaContentType{index}"] = content_type
            params[f"MediaUrl{index}"] = (
                f"{self.media_base_url}/{API_VERSION}/Accounts/{self.account_sid}"
                f"/Messages/{sid}/Media/{media_sid}"
            )
        params.update(extra or {})
        now = self.clock()
        self._last_inbound[(to, value)] = now
        keyword = body.strip().upper()
        if keyword in self.opt_out_keywords:
            self._opted_out.add((to, value))
        elif keyword in self.opt_in_keywords:
            self._opted_out.discard((to, value))
        inbound = Inbound(sid, params, str(uuid.uuid4()))
        self._inbound[sid] = inbound
        self._inbound_order.append(sid)
        self._messages[sid] = Message(
            sid=sid,
            account_sid=self.account_sid,
            from_=params["From"],
            to=params["To"],
            body=body,
            direction="inbound",
            date_created=now,
            date_updated=now,
            date_sent=now,
            status="received",
            media_urls=[params[f"MediaUrl{i}"] for i in range(len(media))],
        )
        self.stats["inbound"] += 1
        self._activity.notify_all()
        return inbound

    def inbound_message(self, message_sid: str | None = None) -> Inbound:
        """An inbound webhook built before (the last one by default)."""
        if message_sid is None:
            if not self._inbound_order:
                raise KeyError("no inbound message yet")
            message_sid = self._inbound_order[-1]
        found = self._inbound.get(message_sid)
        if found is None:
            raise KeyError(f"unknown inbound MessageSid {message_sid!r}")
        return found

    @property
    def last_inbound_sid(self) -> str | None:
        return self._inbound_order[-1] if self._inbound_order else None

    def inbound(self, number: str | None = None) -> list[JSONDict]:
        """The webhooks built for people's messages, oldest first, with their deliveries."""
        wanted = None if number is None else whatsapp(checked_number(number))
        found: list[JSONDict] = []
        for sid in self._inbound_order:
            item = self._inbound[sid]
            if wanted is None or item.params["From"] == wanted:
                found.append(
                    {
                        "message_sid": item.message_sid,
                        "params": dict(item.params),
                        "idempotency_token": item.idempotency_token,
                        "deliveries": [dict(delivery) for delivery in item.deliveries],
                    }
                )
        return found

    def media_content(self, media_sid: str) -> tuple[str, bytes] | None:
        return self._media.get(media_sid)

    # ---------------------------------------------------------- control: what was sent --

    def message(self, sid: str) -> JSONDict | None:
        found = self._messages.get(sid)
        return found.record() if found is not None else None

    def fetched_media(self, sid: str) -> list[tuple[str, bytes]]:
        """What fetching an outbound message's MediaUrl gave: (Content-Type, bytes) each."""
        found = self._messages.get(sid)
        return list(found.fetched_media) if found is not None else []

    def sent(self, number: str | None = None, *, after_sid: str | None = None) -> list[JSONDict]:
        """Accepted outbound messages in sending order (all, or one person's), optionally
        only those after the message `after_sid`. Each says its status and `fails_with`, the
        error the channel will fail it with (what the person never sees)."""
        if number is None:
            records = self._sent
        else:
            records = self._sent_by_number.get(checked_number(number), [])
        if after_sid is not None:
            sids = [record.sid for record in records]
            records = records[sids.index(after_sid) + 1 :] if after_sid in sids else records
        return [record.record() for record in records]

    def snapshot_stats(self) -> JSONDict:
        return {
            **self.stats,
            "error_codes": dict(self.stats["error_codes"]),
            "sent_messages": len(self._sent),
            "known_numbers": len(self._sent_by_number),
        }

    async def _wait_until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return False
            await self._activity.wait(remaining)
        return True

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline is the point of these calls
        what: str = "condition",
    ) -> None:
        """Wait until `predicate()` holds; re-checked whenever something happens."""
        if not await self._wait_until(predicate, timeout):
            raise TimeoutError(f"{what} not reached within {timeout}s. {self._describe()}")

    async def wait_for_sent(
        self,
        number: str | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[JSONDict]:
        """Wait until at least `count` messages (all time) were accepted for `number`, or for
        anyone when it is None, and return them."""
        key = None if number is None else checked_number(number)

        def sent_count() -> int:
            return len(self._sent if key is None else self._sent_by_number.get(key, []))

        if not await self._wait_until(lambda: sent_count() >= count, timeout):
            where = "in total" if key is None else f"to {key}"
            raise TimeoutError(
                f"expected {count} message(s) {where} within {timeout}s, got {sent_count()}. "
                f"{self._describe(key)}"
            )
        return self.sent(key)

    def _describe(self, number: str | None = None) -> str:
        records = self._sent if number is None else self._sent_by_number.get(number, [])
        lines = [
            f"{record.sid[:10]}… to {record.number} [{record.status}]: "
            f"{(record.body or record.content_sid or '')[:60]!r}"
            for record in records[-10:]
        ]
        errors = "; ".join(
            f"{error['method']} {error['status']} {error['code']}"
            for error in list(self.recent_errors)[-5:]
        )
        return f"Sent: {'; '.join(lines) or 'nothing'}. Recent API errors: {errors or 'none'}."


def _content_variables(raw: str | None) -> dict[str, str] | None:
    if raw is None or raw == "":
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        raise TwilioError(400, 21656) from None
    if not isinstance(data, dict) or not all(
        isinstance(value, str | int | float) and not isinstance(value, bool)
        for value in data.values()
    ):
        raise TwilioError(400, 21656)
    return {str(key): str(value) for key, value in data.items()}


def _validity_period(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise TwilioError(400, 21624) from None
    if not 1 <= value <= MAX_VALIDITY_PERIOD_S:
        raise TwilioError(400, 21624)
    return value


def _placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def _render(template: str, variables: Mapping[str, str] | None) -> str:
    values = variables or {}
    return _PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), template)
