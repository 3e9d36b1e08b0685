"""Local emulator of Twilio's Messages API and WhatsApp webhooks, for tests, demos and benches.

The real twilio library talks to it through `twilio_client`:

    emulator = TwilioEmulator(account_sid=SID, auth_token=TOKEN)
    async with serve_twilio_emulator(emulator) as base_url:
        client = twilio_client(SID, TOKEN, base_url)
        message = await client.messages.create_async(
            from_="whatsapp:+14155238886", to="whatsapp:+56912345678", body="Hola"
        )
        ...
        await client.http_client.close()

Pointing twilio-python at another host
--------------------------------------
twilio-python 9.x has no base-URL setting. Every request URL is built from a hard-coded
domain (`ApiBase.__init__` passes "https://api.twilio.com" to `Domain`, which joins it with
"/2010-04-01/Accounts/{sid}/Messages.json"), then `ClientBase.get_hostname` may insert an
edge / region (TWILIO_EDGE, TWILIO_REGION) and hands the absolute URL to
`client.http_client.request(...)`. Two ways in:

* assigning `client.api.base_url = ...`: works today, but it is an attribute of a generated
  class, covers only the `api` domain and must be redone on every new `Client`;
* a custom `http_client`, the extension point Twilio documents ("custom HTTP clients",
  advanced-examples/custom-http-client.md) and recommends for mocking (twilio-python #521).

`BaseUrlHttpClient` takes the second: an `AsyncTwilioHttpClient` whose `request` swaps the
origin of any `*.twilio.com` URL for `base_url` (keeping path and query), so it works for
every domain, with edges and regions, and leaves other URLs alone. It also fixes a trap of
`AsyncTwilioHttpClient`: its `timeout` argument is stored but never used (the per-request
timeout the library passes is None, which aiohttp reads as "no timeout at all"), so a
request to a Twilio that never answers would wait forever; here `timeout` applies to every
request that sets none, and a timeout raises the builtin `TimeoutError`. And it sends the
Basic credentials as a header itself: the parent builds an `aiohttp.BasicAuth`, deprecated
in aiohttp 3.14 (a DeprecationWarning on every request, an error under the tests'
`filterwarnings = error`). With `base_url=None` it talks to the real Twilio.

What is emulated
----------------
`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form: To, From, Body, ContentSid,
ContentVariables, MediaUrl repeated, StatusCallback, ValidityPeriod) and
`GET .../Messages/{Sid}.json`, with HTTP Basic auth against the account SID and auth token,
Twilio's JSON shapes and error bodies, and the WhatsApp rules described in
`bot.emulator.twilio_state` (24-hour window, templates, opt-out, rate, Meta's daily cap,
1,600-character bodies). People's messages are posted to the webhook as Twilio's form with a
valid `X-Twilio-Signature` (RequestValidator's algorithm, over the *public* URL the bot is
configured with, which may differ from where the emulator posts when the bot sits behind a
reverse proxy), or unsigned / wrongly signed / replayed on request. Status callbacks are
signed the same way and driven by the test (`advance_status`, `settle`,
`send_status_callbacks` for duplicates and disorder) or automatically (`auto_status`). A
webhook answered with TwiML `<Message>` (or text/plain, which Twilio sends as a reply) is
recorded as an `outbound-reply`. Everything is also reachable as JSON under `/control/`.

Not emulated: SMS / MMS (From must be `whatsapp:`), Messaging Services, API keys, message
list / update / delete, scheduling, Twilio's queueing of traffic above a sender's throughput
(the emulator answers 429 instead, so pacing can be measured), webhook fallback URLs and
retries (Twilio does not retry messaging webhooks).

Run standalone with (as a module: run as a file, its name would shadow the twilio package):

    python -m bot.emulator.twilio --port 8082 --webhook http://127.0.0.1:8080/whatsapp
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.emulator.telegram import EmulatorServer
from bot.emulator.telegram_state import PLACEHOLDER_PNG
from bot.emulator.twilio_state import (
    API_VERSION,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FAILURES,
    MEDIA_FAILED,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    RANK,
    SANDBOX_SENDER,
    WHATSAPP_MEDIA_TYPES,
    Inbound,
    JSONDict,
    Message,
    TwilioError,
    TwilioState,
    new_sid,
    not_found,
)

__all__ = [
    "BaseUrlHttpClient",
    "Signature",
    "TwilioEmulator",
    "TwilioError",
    "main",
    "rewrite_twilio_url",
    "serve_twilio_emulator",
    "twilio_client",
]

Signature = Literal["valid", "missing", "wrong"]
WEBHOOK_TIMEOUT_S = 15.0  # how long Twilio waits for a webhook's answer


# ------------------------------------------------------------------ the bot's client --


def rewrite_twilio_url(url: str, base_url: str | None) -> str:
    """`url` with the origin of a `*.twilio.com` URL replaced by `base_url` (whose path, if
    any, is prefixed); other URLs, and any URL when `base_url` is None, unchanged."""
    if not base_url:
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host != "twilio.com" and not host.endswith(".twilio.com"):
        return url
    base = urlsplit(base_url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


class BaseUrlHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """twilio's aiohttp client, sending Twilio's URLs to `base_url` and honouring `timeout`.

    Create it inside a running event loop (aiohttp's session binds to it) and close it with
    `await client.close()` (or `await twilio.http_client.close()`).
    """

    def __init__(
        self, base_url: str | None = None, *, timeout: float | None = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None

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
    ) -> TwilioResponse:
        if auth is not None:
            # aiohttp 3.14 deprecates the BasicAuth object the parent class would build.
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {credentials}"}
        response: TwilioResponse = await super().request(
            method,
            rewrite_twilio_url(url, self.base_url),
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=self.timeout if timeout is None else timeout,
            allow_redirects=allow_redirects,
        )
        return response


def twilio_client(
    account_sid: str,
    auth_token: str,
    base_url: str | None = None,
    *,
    timeout: float | None = 10.0,
) -> Client:
    """A twilio REST `Client` for `create_async` / `fetch_async`, talking to `base_url`
    (e.g. TWILIO_API_BASE_URL, the emulator) or to Twilio when it is None. Call it inside the
    event loop that will use it; close with `await client.http_client.close()`."""
    http_client = BaseUrlHttpClient(base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


# ------------------------------------------------------------------------ the emulator --


@dataclass
class Webhook:
    url: str  # where the emulator posts
    public_url: str  # what it signs: the URL the bot believes Twilio calls


class TwilioEmulator(TwilioState):
    """The emulator: Twilio semantics from `TwilioState`, plus its ASGI app, inbound webhooks
    and status callbacks. `serve_twilio_emulator` serves it and closes it on exit.

    `auto_status`: None (status callbacks only when the test asks), or the status every
    accepted message is taken to ("sent", "delivered" or "read"; failures go to their end)
    `auto_status_delay_s` after it was created.
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
        auto_status: str | None = None,
        auto_status_delay_s: float = 0.0,
        webhook_timeout_s: float = WEBHOOK_TIMEOUT_S,
        clock: Callable[[], float] | None = None,
    ):
        extra: dict[str, Any] = {} if clock is None else {"clock": clock}
        super().__init__(
            account_sid,
            auth_token,
            senders,
            rate_per_s=rate_per_s,
            daily_conversation_cap=daily_conversation_cap,
            channel_errors=channel_errors,
            enforce_opt_out=enforce_opt_out,
            opt_out_keywords=opt_out_keywords,
            opt_in_keywords=opt_in_keywords,
            **extra,
        )
        if auto_status is not None and auto_status not in ("sent", "delivered", "read"):
            raise ValueError("auto_status must be None, 'sent', 'delivered' or 'read'")
        self.auto_status = auto_status
        self.auto_status_delay_s = auto_status_delay_s
        self.webhook_timeout_s = webhook_timeout_s
        self.base_url: str | None = None
        self.webhook: Webhook | None = None
        self._proxies: list[tuple[str, str]] = []
        self._app: Starlette | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hang_generation = 0

    @property
    def app(self) -> Starlette:
        """The ASGI app: the REST API, inbound media and the /control routes."""
        if self._app is None:
            self._app = _build_app(self)
        return self._app

    async def aclose(self) -> None:
        """Answer hung requests, cancel automatic status callbacks, close the HTTP client."""
        self.release_hung()
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def release_hung(self) -> None:
        """Answer every request that `hang_next` is holding, now."""
        self._hang_generation += 1
        self._activity.notify_all()

    async def hang(self, seconds: float) -> None:
        generation = self._hang_generation
        await self._wait_until(lambda: self._hang_generation != generation, seconds)

    # ------------------------------------------------------------- where webhooks go --

    def set_webhook(self, url: str | None, public_url: str | None = None) -> None:
        """Where people's messages are posted (`url`) and the URL their signature is computed
        over (`public_url`, default `url`): the bot's PUBLIC_BASE_URL + path when it sits
        behind a proxy. When both have the same path, their origins are also registered as a
        proxy, so status callbacks to the public origin reach the bot too."""
        if url is None:
            self.webhook = None
            return
        public = public_url or url
        self.webhook = Webhook(url, public)
        actual_parts, public_parts = urlsplit(url), urlsplit(public)
        if public != url and actual_parts.path == public_parts.path:
            self.proxy(
                f"{public_parts.scheme}://{public_parts.netloc}",
                f"{actual_parts.scheme}://{actual_parts.netloc}",
            )

    def proxy(self, public_base: str, actual_base: str) -> None:
        """Post anything addressed under `public_base` (a StatusCallback, say) to the same
        path under `actual_base` instead, as a reverse proxy in front of the bot would."""
        public_base, actual_base = public_base.rstrip("/"), actual_base.rstrip("/")
        self._proxies = [(p, a) for p, a in self._proxies if p != public_base]
        self._proxies.append((public_base, actual_base))

    def routed(self, url: str) -> str:
        for public, actual in self._proxies:
            if url == public or url.startswith(public + "/") or url.startswith(public + "?"):
                return actual + url[len(public) :]
        return url

    def signature(self, url: str, params: Mapping[str, str]) -> str:
        """X-Twilio-Signature for a form posted to `url`, as Twilio computes it."""
        return str(RequestValidator(self.auth_token).compute_signature(url, dict(params)))

    async def _post(
        self,
        public_url: str,
        params: Mapping[str, str],
        *,
        signature: Signature = "valid",
        sign_url: str | None = None,
        idempotency_token: str | None = None,
        url: str | None = None,
    ) -> tuple[int, httpx.Response | None, str | None]:
        """POST a signed form; returns the HTTP status (0 when unreachable), the response and
        the signature sent."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.webhook_timeout_s, limits=httpx.Limits(max_connections=100)
            )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": idempotency_token or str(uuid.uuid4()),
        }
        sent_signature: str | None = None
        if signature == "valid":
            sent_signature = self.signature(sign_url or public_url, params)
        elif signature == "wrong":
            forged = RequestValidator(self.auth_token + "-forged")
            sent_signature = str(forged.compute_signature(sign_url or public_url, dict(params)))
        elif signature != "missing":
            raise ValueError("signature must be 'valid', 'missing' or 'wrong'")
        if sent_signature is not None:
            headers["X-Twilio-Signature"] = sent_signature
        try:
            response = await self._http.post(
                url or self.routed(public_url), content=urlencode(params).encode(), headers=headers
            )
        except httpx.HTTPError:
            return 0, None, sent_signature
        return response.status_code, response, sent_signature

    # ---------------------------------------------------------------- people's messages --

    async def send_text(
        self,
        number: str,
        body: str,
        *,
        profile_name: str | None = None,
        sender: str | None = None,
        signature: Signature = "valid",
        sign_url: str | None = None,
    ) -> int:
        """A person writes `body`; returns the HTTP status the bot's webhook answered (0 if
        it could not be reached). `signature="missing"` / `"wrong"` forge the request;
        `sign_url` signs over another URL than the configured public one."""
        inbound = self.build_inbound(number, body=body, profile_name=profile_name, sender=sender)
        return await self._deliver_inbound(inbound, signature, sign_url)

    async def send_location(
        self,
        number: str,
        latitude: float,
        longitude: float,
        *,
        address: str | None = None,
        label: str | None = None,
        profile_name: str | None = None,
        sender: str | None = None,
        signature: Signature = "valid",
        sign_url: str | None = None,
    ) -> int:
        """A person shares a location (Latitude / Longitude, optionally Address and Label)."""
        extra = {"Latitude": str(latitude), "Longitude": str(longitude)}
        if address is not None:
            extra["Address"] = address
        if label is not None:
            extra["Label"] = label
        inbound = self.build_inbound(
            number,
            message_type="location",
            extra=extra,
            profile_name=profile_name,
            sender=sender,
        )
        return await self._deliver_inbound(inbound, signature, sign_url)

    async def send_media(
        self,
        number: str,
        content_type: str = "image/jpeg",
        *,
        data: bytes | None = None,
        caption: str = "",
        profile_name: str | None = None,
        sender: str | None = None,
        signature: Signature = "valid",
        sign_url: str | None = None,
    ) -> int:
        """A person sends a photo (or any file) with an optional caption (the Body); the
        webhook gets NumMedia=1, MediaUrl0 (served by the emulator) and MediaContentType0."""
        kind = content_type.split("/", 1)[0]
        message_type = kind if kind in ("image", "video", "audio") else "document"
        content = data if data is not None else (PLACEHOLDER_PNG if kind == "image" else b"")
        inbound = self.build_inbound(
            number,
            body=caption,
            message_type=message_type,
            media=[(content_type, content)],
            profile_name=profile_name,
            sender=sender,
        )
        return await self._deliver_inbound(inbound, signature, sign_url)

    async def send_button(
        self,
        number: str,
        text: str,
        payload: str | None = None,
        *,
        profile_name: str | None = None,
        sender: str | None = None,
        signature: Signature = "valid",
    ) -> int:
        """A person taps a quick-reply button of a template (ButtonText / ButtonPayload)."""
        extra = {"ButtonText": text, "ButtonPayload": payload if payload is not None else text}
        inbound = self.build_inbound(
            number,
            body=text,
            message_type="button",
            extra=extra,
            profile_name=profile_name,
            sender=sender,
        )
        return await self._deliver_inbound(inbound, signature, None)

    async def redeliver(
        self, message_sid: str | None = None, *, signature: Signature = "valid"
    ) -> int:
        """Post an inbound message again, identical (same MessageSid, parameters, signature
        and I-Twilio-Idempotency-Token): a replay. The last one by default."""
        return await self._deliver_inbound(self.inbound_message(message_sid), signature, None)

    async def send_many(
        self, items: Iterable[Mapping[str, Any]], *, concurrency: int = 8
    ) -> list[int]:
        """Deliver many texts ({"number", "body"}, optional "profile_name") with up to
        `concurrency` in flight; returns the statuses in order. For benches."""
        slots = asyncio.Semaphore(concurrency)

        async def one(item: Mapping[str, Any]) -> int:
            async with slots:
                return await self.send_text(
                    str(item["number"]), str(item["body"]), profile_name=item.get("profile_name")
                )

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def _deliver_inbound(
        self, inbound: Inbound, signature: Signature, sign_url: str | None
    ) -> int:
        hook = self.webhook
        if hook is None:
            raise RuntimeError("no webhook set: call set_webhook(url) first")
        status, response, sent = await self._post(
            hook.public_url,
            inbound.params,
            signature=signature,
            sign_url=sign_url,
            idempotency_token=inbound.idempotency_token,
            url=hook.url,
        )
        delivery: JSONDict = {"status": status, "url": hook.url, "signature": sent}
        inbound.deliveries.append(delivery)
        if 200 <= status < 300 and response is not None:
            self.stats["webhook_deliveries"] += 1
            delivery.update(self._run_reply(inbound, response))
        else:
            self.stats["webhook_failures"] += 1
        self._activity.notify_all()
        return status

    def _run_reply(self, inbound: Inbound, response: httpx.Response) -> JSONDict:
        """Carry out a webhook's answer as Twilio does: TwiML <Message> verbs (text/xml,
        application/xml, text/html) and text/plain are sent back to the person; anything else
        with a body is Twilio's error 12300 (invalid Content-Type), nothing is sent."""
        text = response.text.strip()
        if not text:
            return {}
        mime = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if mime == "text/plain":
            return {"replies": [self.record_reply(inbound, text, []).sid]}
        if mime not in ("text/xml", "application/xml", "text/html"):
            return {"twilio_error": 12300}
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            return {"twilio_error": 12100}  # Document parse failure
        if root.tag != "Response":
            return {"twilio_error": 12100}
        replies = []
        for verb in root.iter("Message"):
            body_element = verb.find("Body")
            body = body_element.text if body_element is not None else verb.text
            media = [
                (m.text or "").strip() for m in verb.findall("Media") if (m.text or "").strip()
            ]
            replies.append(self.record_reply(inbound, (body or "").strip(), media).sid)
        return {"replies": replies} if replies else {}

    # ------------------------------------------------------------------ status callbacks --

    def _message(self, sid: str) -> Message:
        message = self._messages.get(sid)
        if message is None or message.direction == "inbound":
            raise KeyError(f"no outbound message {sid!r}")
        return message

    async def advance_status(
        self,
        sid: str,
        status: str | None = None,
        *,
        skip_intermediate: bool = False,
        error_code: int | None = None,
        signature: Signature = "valid",
    ) -> list[int]:
        """Take a message to `status` (default: its next planned one: sent, delivered, read,
        or the failure it is bound to) and post a status callback for every status it passes
        (only the last with `skip_intermediate`, like WhatsApp's read without delivered).
        Returns the HTTP statuses the StatusCallback answered ([] without one)."""
        message = self._message(sid)
        steps = self.plan_transition(message, status, error_code=error_code)
        if skip_intermediate:
            steps = steps[-1:]
        return [await self._callback(message, step, None, signature) for step in steps]

    async def settle(self, sid: str | None = None, until: str = "read") -> int:
        """Advance one message (or every pending one) through its plan up to `until`; a
        message bound to fail goes to its failure. Returns the callbacks posted."""
        if until not in RANK:
            raise ValueError(f"cannot settle until {until!r}")
        messages = [self._message(sid)] if sid is not None else list(self._sent)
        posted = 0
        for message in messages:
            if not message.plan:
                continue
            if message.plan[-1] in FAILURES:
                target = message.plan[-1]
            elif until in message.plan:
                target = until
            elif RANK[message.plan[0]] > RANK[until]:
                continue
            else:
                target = message.plan[-1]
            posted += len(await self.advance_status(message.sid, target))
        return posted

    async def send_status_callbacks(
        self,
        sid: str,
        statuses: Iterable[str],
        *,
        error_code: int | None = None,
        signature: Signature = "valid",
    ) -> list[int]:
        """Post these callbacks in this order, duplicates and disorder included, as the
        network may deliver them. The resource keeps the most advanced status seen."""
        message = self._message(sid)
        results = []
        for status in statuses:
            if status not in RANK and status not in FAILURES:
                raise ValueError(f"unknown message status {status!r}")
            self.note_status(message, status, error_code)
            results.append(await self._callback(message, status, error_code, signature))
        return results

    async def _callback(
        self, message: Message, status: str, error_code: int | None, signature: Signature
    ) -> int:
        if not message.status_callback:
            return 0
        params = self.callback_params(message, status, error_code)
        http_status, _, _ = await self._post(message.status_callback, params, signature=signature)
        message.callbacks.append(
            {"status": status, "http_status": http_status, "url": message.status_callback}
        )
        if 200 <= http_status < 300:
            self.stats["status_callbacks"] += 1
        else:
            self.stats["status_callback_failures"] += 1
        self._activity.notify_all()
        return http_status

    async def fetch_media(self, message: Message) -> None:
        """Fetch each MediaUrl as Twilio does before sending: a URL that does not answer 200
        with a type WhatsApp takes fails the message (63019, in its status callbacks)."""
        if not message.media_urls:
            return
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.webhook_timeout_s, limits=httpx.Limits(max_connections=100)
            )
        for url in message.media_urls:
            try:
                answer = await self._http.get(self.routed(url))
            except httpx.HTTPError:
                answer = None
            kind = answer.headers.get("content-type", "").split(";")[0].strip() if answer else ""
            if answer is None or answer.status_code != 200 or kind not in WHATSAPP_MEDIA_TYPES:
                message.plan, message.plan_error = ["failed"], MEDIA_FAILED
                return
            message.fetched_media.append((kind, answer.content))

    def _after_create(self, message: Message) -> None:
        if self.auto_status is None:
            return
        task = asyncio.get_running_loop().create_task(self._auto_advance(message.sid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _auto_advance(self, sid: str) -> None:
        if self.auto_status_delay_s > 0:
            await asyncio.sleep(self.auto_status_delay_s)
        await self.settle(sid, until=self.auto_status or "read")


# -------------------------------------------------------------------------- the ASGI app --


def _twilio_json(payload: JSONDict, status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(
        payload, status_code=status, headers={"Twilio-Request-Id": new_sid("RQ"), **headers}
    )


def _twilio_error(error: TwilioError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else {}
    return _twilio_json(error.payload(), error.status, **headers)


def _credentials(request: Request) -> tuple[str | None, str | None]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else (None, None)


def _control_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


ControlHandler = Callable[[dict[str, Any]], Any]


def _control(handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    """A control route: query string and JSON body in, JSON out; bad input is a 400."""

    async def endpoint(request: Request) -> Response:
        args: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        try:
            if body:
                data = json.loads(body)
                args.update(data if isinstance(data, dict) else {"items": data})
            result = handler(args)
            if inspect.isawaitable(result):
                result = await result
        except TimeoutError as error:
            return _control_error(408, str(error))
        except RuntimeError as error:
            return _control_error(409, str(error))
        except (ValueError, TypeError, KeyError) as error:
            return _control_error(400, f"{error.__class__.__name__}: {error}")
        return JSONResponse(result)

    return endpoint


def _opt_int(args: Mapping[str, Any], name: str) -> int | None:
    value = args.get(name)
    return None if value in (None, "") else int(value)


def _opt_float(args: Mapping[str, Any], name: str) -> float | None:
    value = args.get(name)
    return None if value in (None, "") else float(value)


def _build_app(emulator: TwilioEmulator) -> Starlette:
    async def create(request: Request) -> Response:
        emulator.stats["requests"] += 1
        body = await request.body()
        try:
            username, password = _credentials(request)
            emulator.check_auth(username, password, request.path_params["account_sid"])
            try:
                params = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                raise TwilioError(400, 20001, "Request body is not valid UTF-8") from None
            fault = emulator.next_fault("create")
            if fault is not None and fault.kind == "error":
                raise fault.error()
            if fault is not None:
                outcome: Message | TwilioError | None = None
                if fault.apply:
                    try:
                        outcome = emulator.create_message(params)
                        emulator._after_create(outcome)
                    except TwilioError as error:
                        outcome = error
                await emulator.hang(fault.seconds)
                if isinstance(outcome, TwilioError):
                    raise outcome
                if outcome is None:
                    raise TwilioError(503, 20503)
                message = outcome
            else:
                message = emulator.create_message(params)
                await emulator.fetch_media(message)
                emulator._after_create(message)
        except TwilioError as error:
            emulator.record_error("create", error)
            return _twilio_error(error)
        return _twilio_json(message.resource(), 201)

    async def fetch(request: Request) -> Response:
        emulator.stats["requests"] += 1
        try:
            username, password = _credentials(request)
            emulator.check_auth(username, password, request.path_params["account_sid"])
            fault = emulator.next_fault("fetch")
            if fault is not None and fault.kind == "error":
                raise fault.error()
            if fault is not None:
                await emulator.hang(fault.seconds)
            message = emulator.fetch_message(request.path_params["sid"])
        except TwilioError as error:
            emulator.record_error("fetch", error)
            return _twilio_error(error)
        return _twilio_json(message.resource())

    async def media(request: Request) -> Response:
        # Twilio asks for the account's credentials on media URLs (HTTP auth, on by default).
        try:
            username, password = _credentials(request)
            emulator.check_auth(username, password, request.path_params["account_sid"])
        except TwilioError as error:
            return _twilio_error(error)
        found = emulator.media_content(request.path_params["media_sid"])
        if found is None or request.path_params["account_sid"] != emulator.account_sid:
            return _twilio_error(not_found(request.url.path))
        content_type, data = found
        return Response(data, media_type=content_type)

    async def unknown(request: Request) -> Response:
        return _twilio_error(not_found(request.url.path))

    def set_webhook(args: dict[str, Any]) -> JSONDict:
        emulator.set_webhook(args.get("url"), args.get("public_url"))
        hook = emulator.webhook
        return {"url": hook.url if hook else None, "public_url": hook.public_url if hook else None}

    def set_proxy(args: dict[str, Any]) -> JSONDict:
        emulator.proxy(str(args["public_base"]), str(args["actual_base"]))
        return {"ok": True}

    async def message_in(args: dict[str, Any]) -> JSONDict:
        status = await emulator.send_text(
            str(args["number"]),
            str(args.get("body", "")),
            profile_name=args.get("profile_name"),
            signature=args.get("signature", "valid"),
            sign_url=args.get("sign_url"),
        )
        return {"status": status, "message_sid": emulator.last_inbound_sid}

    async def location_in(args: dict[str, Any]) -> JSONDict:
        status = await emulator.send_location(
            str(args["number"]),
            float(args["latitude"]),
            float(args["longitude"]),
            address=args.get("address"),
            label=args.get("label"),
            profile_name=args.get("profile_name"),
            signature=args.get("signature", "valid"),
        )
        return {"status": status, "message_sid": emulator.last_inbound_sid}

    async def media_in(args: dict[str, Any]) -> JSONDict:
        data = args.get("data_base64")
        status = await emulator.send_media(
            str(args["number"]),
            str(args.get("content_type", "image/jpeg")),
            data=base64.b64decode(data) if data else None,
            caption=str(args.get("caption", "")),
            profile_name=args.get("profile_name"),
            signature=args.get("signature", "valid"),
        )
        return {"status": status, "message_sid": emulator.last_inbound_sid}

    async def button_in(args: dict[str, Any]) -> JSONDict:
        status = await emulator.send_button(
            str(args["number"]), str(args["text"]), args.get("payload")
        )
        return {"status": status, "message_sid": emulator.last_inbound_sid}

    async def bulk_in(args: dict[str, Any]) -> JSONDict:
        statuses = await emulator.send_many(
            args["items"], concurrency=_opt_int(args, "concurrency") or 8
        )
        counts: dict[str, int] = {}
        for status in statuses:
            counts[str(status)] = counts.get(str(status), 0) + 1
        return {"count": len(statuses), "statuses": counts}

    async def redeliver(args: dict[str, Any]) -> JSONDict:
        status = await emulator.redeliver(
            args.get("message_sid"), signature=args.get("signature", "valid")
        )
        return {"status": status}

    async def wait_sent(args: dict[str, Any]) -> list[JSONDict]:
        return await emulator.wait_for_sent(
            args.get("number") or None,
            count=_opt_int(args, "count") or 1,
            timeout=_opt_float(args, "timeout") or 5.0,
        )

    async def wait_stats(args: dict[str, Any]) -> JSONDict:
        wanted = _opt_int(args, "sent_messages") or 0
        await emulator.wait_for(
            lambda: len(emulator._sent) >= wanted,
            timeout=_opt_float(args, "timeout") or 5.0,
            what=f"{wanted} messages sent",
        )
        return emulator.snapshot_stats()

    def one_message(args: dict[str, Any]) -> JSONDict:
        found = emulator.message(str(args["sid"]))
        if found is None:
            raise KeyError(f"unknown message {args['sid']!r}")
        return found

    async def advance(args: dict[str, Any]) -> JSONDict:
        statuses = await emulator.advance_status(
            str(args["sid"]),
            args.get("status"),
            skip_intermediate=bool(args.get("skip_intermediate", False)),
            error_code=_opt_int(args, "error_code"),
        )
        return {"callbacks": statuses, "message": emulator.message(str(args["sid"]))}

    async def callbacks(args: dict[str, Any]) -> JSONDict:
        statuses = await emulator.send_status_callbacks(
            str(args["sid"]), list(args["statuses"]), error_code=_opt_int(args, "error_code")
        )
        return {"callbacks": statuses, "message": emulator.message(str(args["sid"]))}

    async def settle(args: dict[str, Any]) -> JSONDict:
        posted = await emulator.settle(args.get("sid"), until=str(args.get("until", "read")))
        return {"callbacks": posted}

    def window(args: dict[str, Any]) -> JSONDict:
        number, sender = str(args["number"]), args.get("sender")
        if args.get("open"):
            emulator.open_window(number, sender=sender)
        elif args.get("close"):
            emulator.close_window(number, sender=sender)
        else:
            emulator.age_window(number, float(args.get("hours", 24)), sender=sender)
        return {
            "number": number,
            "in_window": emulator.in_window(number, sender=sender),
            "expires_at": emulator.window_expires_at(number, sender=sender),
        }

    def opt_out(args: dict[str, Any]) -> JSONDict:
        number = str(args["number"])
        emulator.set_opted_out(number, bool(args.get("opted_out", True)), sender=args.get("sender"))
        return {"number": number, "opted_out": emulator.is_opted_out(number)}

    def numbers(args: dict[str, Any]) -> JSONDict:
        number = emulator.add_number(
            str(args["number"]),
            profile_name=args.get("profile_name"),
            on_whatsapp=bool(args.get("on_whatsapp", True)),
        )
        return {"number": number, "profile_name": emulator.profile_name(number)}

    def templates(args: dict[str, Any]) -> JSONDict:
        emulator.add_template(str(args["content_sid"]), str(args["body"]))
        return {"templates": dict(emulator.templates)}

    def limits(args: dict[str, Any]) -> JSONDict:
        emulator.set_limits(
            _opt_float(args, "rate_per_s"), _opt_int(args, "daily_conversation_cap")
        )
        return {
            "rate_per_s": emulator.rate_per_s,
            "daily_conversation_cap": emulator.daily_conversation_cap,
        }

    def reset_daily_cap(args: dict[str, Any]) -> JSONDict:
        emulator.reset_daily_cap(sender=args.get("sender") or None)
        return {"conversations_open": emulator.conversations_open(sender=args.get("sender"))}

    def faults(args: dict[str, Any]) -> JSONDict:
        kind = args.pop("kind", "error")
        count = _opt_int(args, "count") or 1
        method = args.get("method", "create")
        if kind == "hang":
            emulator.hang_next(
                count,
                seconds=_opt_float(args, "seconds") or 30.0,
                apply=bool(args.get("apply", True)),
                method=method,
            )
        else:
            emulator.fail_next(
                _opt_int(args, "status") or 500,
                count,
                code=_opt_int(args, "code"),
                message=args.get("message"),
                method=method,
            )
        return {"ok": True}

    def delivery_failures(args: dict[str, Any]) -> JSONDict:
        emulator.fail_delivery(
            str(args["number"]),
            args.get("status", "undelivered"),
            _opt_int(args, "error_code") or 63024,
            _opt_int(args, "count") or 1,
        )
        return {"ok": True}

    def clear_faults(_args: dict[str, Any]) -> JSONDict:
        emulator.clear_faults()
        emulator.release_hung()
        return {"ok": True}

    def reset(_args: dict[str, Any]) -> JSONDict:
        emulator.reset()
        return {"ok": True}

    controls: list[tuple[str, str, ControlHandler]] = [
        ("POST", "/control/webhook", set_webhook),
        ("POST", "/control/proxy", set_proxy),
        ("POST", "/control/numbers", numbers),
        ("POST", "/control/templates", templates),
        ("POST", "/control/messages", message_in),
        ("POST", "/control/messages/bulk", bulk_in),
        ("POST", "/control/locations", location_in),
        ("POST", "/control/media", media_in),
        ("POST", "/control/buttons", button_in),
        ("POST", "/control/redeliver", redeliver),
        ("GET", "/control/inbound", lambda a: emulator.inbound(a.get("number") or None)),
        (
            "GET",
            "/control/sent",
            lambda a: emulator.sent(a.get("number") or None, after_sid=a.get("after_sid")),
        ),
        ("GET", "/control/sent/wait", wait_sent),
        ("GET", "/control/message", one_message),
        ("POST", "/control/status", advance),
        ("POST", "/control/status/callbacks", callbacks),
        ("POST", "/control/status/settle", settle),
        ("POST", "/control/window", window),
        ("POST", "/control/opt_out", opt_out),
        ("POST", "/control/limits", limits),
        ("POST", "/control/limits/reset", reset_daily_cap),
        ("POST", "/control/faults", faults),
        ("POST", "/control/faults/clear", clear_faults),
        ("POST", "/control/delivery_failures", delivery_failures),
        ("GET", "/control/stats", lambda _a: emulator.snapshot_stats()),
        ("GET", "/control/stats/wait", wait_stats),
        ("GET", "/control/errors", lambda _a: list(emulator.recent_errors)),
        ("POST", "/control/reset", reset),
    ]
    account = f"/{API_VERSION}/Accounts/{{account_sid}}"
    routes = [
        Route(f"{account}/Messages.json", create, methods=["POST"]),
        Route(f"{account}/Messages/{{sid}}.json", fetch, methods=["GET"]),
        Route(f"{account}/Messages/{{sid}}/Media/{{media_sid}}", media, methods=["GET"]),
    ]
    routes += [Route(path, _control(handler), methods=[verb]) for verb, path, handler in controls]
    routes.append(Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "DELETE"]))
    return Starlette(routes=routes)


# ------------------------------------------------------------------------------ serving --


@contextlib.asynccontextmanager
async def serve_twilio_emulator(
    emulator: TwilioEmulator, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve the emulator in the current event loop; yields (and sets `emulator.base_url`
    to) e.g. "http://127.0.0.1:PORT". On exit, hung requests and waits are released."""
    emulator._closing = False
    server = EmulatorServer(emulator.app, host, port)
    emulator.base_url = await server.start()
    emulator.media_base_url = emulator.base_url
    try:
        yield emulator.base_url
    finally:
        emulator._closing = True
        emulator.release_hung()
        await server.stop()
        await emulator.aclose()
        emulator._closing = False


# ----------------------------------------------------------------------------------- CLI --


async def _serve_forever(emulator: TwilioEmulator, host: str, port: int) -> None:
    server = EmulatorServer(emulator.app, host, port)
    emulator.base_url = emulator.media_base_url = await server.start()
    print(emulator.base_url, flush=True)
    try:
        await server.wait()
    finally:
        emulator._closing = True
        emulator.release_hung()
        await server.stop()
        await emulator.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Twilio Messages API / WhatsApp emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument(
        "--sender", action="append", help=f"WhatsApp sender number (default {SANDBOX_SENDER})"
    )
    parser.add_argument("--rate", type=float, help="messages per second per sender")
    parser.add_argument("--daily-cap", type=int, help="business-initiated conversations a day")
    parser.add_argument("--webhook", help="where people's messages are posted")
    parser.add_argument("--public-webhook", help="the URL signatures are computed over")
    parser.add_argument("--auto-status", choices=["sent", "delivered", "read"])
    parser.add_argument("--channel-errors", choices=["async", "sync"], default="async")
    args = parser.parse_args(argv)
    emulator = TwilioEmulator(
        args.account_sid,
        args.auth_token,
        args.sender or [SANDBOX_SENDER],
        rate_per_s=args.rate,
        daily_conversation_cap=args.daily_cap,
        channel_errors=args.channel_errors,
        auto_status=args.auto_status,
    )
    if args.webhook:
        emulator.set_webhook(args.webhook, args.public_webhook)
    # uvicorn turns Ctrl-C into a graceful stop and then re-raises it.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(emulator, args.host, args.port))


if __name__ == "__main__":
    main()
