"""The Twilio emulator against the real twilio client and a signature-checking receiver.

REST calls go through `twilio.rest.Client` with the async aiohttp client (`twilio_client`)
over HTTP to a served emulator, so URLs, auth, JSON shapes and `TwilioRestException` are
checked the way the bot will meet them. Webhooks and status callbacks go to a tiny Starlette
app that validates `X-Twilio-Signature` with twilio's RequestValidator against the PUBLIC URL
(as the bot behind a reverse proxy must). Time runs on a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.emulator.telegram import serve_asgi
from bot.emulator.twilio import (
    BaseUrlHttpClient,
    TwilioEmulator,
    rewrite_twilio_url,
    serve_twilio_emulator,
    twilio_client,
)

SID = "AC" + "a1" * 16
TOKEN = "0123456789abcdef0123456789abcdef"
BOT = "whatsapp:+14155238886"
ROSA = "+56911112222"
LUIS = "+56933334444"
PUBLIC = "https://barrio.example.cl"
TEMPLATE = "HX" + "b2" * 16
SID_PATTERN = re.compile(r"SM[0-9a-f]{32}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """The bot's side: validates signatures against PUBLIC + path, like `PUBLIC_BASE_URL`."""

    url: str = ""
    public_base: str = PUBLIC
    inbound: list[dict[str, str]] = field(default_factory=list)
    statuses: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0
    reply: Response | None = None


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(fake_clock: FakeClock) -> AsyncIterator[TwilioEmulator]:
    emulator = TwilioEmulator(SID, TOKEN, clock=fake_clock)
    async with serve_twilio_emulator(emulator) as base_url:
        assert emulator.base_url == base_url
        yield emulator


@pytest.fixture
async def client(emu: TwilioEmulator) -> AsyncIterator[Client]:
    rest = twilio_client(SID, TOKEN, emu.base_url, timeout=5)
    yield rest
    await rest.http_client.close()


@pytest.fixture
async def receiver(emu: TwilioEmulator) -> AsyncIterator[Receiver]:
    state = Receiver()
    validator = RequestValidator(TOKEN)

    async def check(request: Request) -> dict[str, str] | None:
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        public_url = state.public_base + request.url.path
        signature = request.headers.get("X-Twilio-Signature", "")
        state.headers.append(dict(request.headers))
        if not validator.validate(public_url, params, signature):
            state.rejected += 1
            return None
        return params

    async def whatsapp(request: Request) -> Response:
        params = await check(request)
        if params is None:
            return Response(status_code=403)
        state.inbound.append(params)
        return state.reply or Response(status_code=204)

    async def status(request: Request) -> Response:
        params = await check(request)
        if params is None:
            return Response(status_code=403)
        state.statuses.append(params)
        return Response(status_code=204)

    app = Starlette(
        routes=[
            Route("/whatsapp", whatsapp, methods=["POST"]),
            Route("/whatsapp/status", status, methods=["POST"]),
        ]
    )
    async with serve_asgi(app) as url:
        state.url = url
        # The bot sits behind a proxy: Twilio knows it as PUBLIC, it listens on `url`.
        emu.set_webhook(f"{url}/whatsapp", public_url=f"{PUBLIC}/whatsapp")
        yield state


async def send(client: Client, to: str = ROSA, **kwargs: Any) -> Any:
    kwargs.setdefault("from_", BOT)
    if "content_sid" not in kwargs and "media_url" not in kwargs:
        kwargs.setdefault("body", "Hola vecina")
    return await client.messages.create_async(to=f"whatsapp:{to}", **kwargs)


async def rest_error(client: Client, to: str = ROSA, **kwargs: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as failure:
        await send(client, to, **kwargs)
    return failure.value


# ------------------------------------------------------------------ client plumbing --


def test_rewrite_keeps_path_and_query_and_leaves_other_hosts() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"
    assert rewrite_twilio_url(url, "http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"
    )
    # Edges and regions (TWILIO_EDGE / TWILIO_REGION) and a base with a path prefix.
    assert rewrite_twilio_url("https://api.dublin.ie1.twilio.com/x", "http://h:1/tw") == (
        "http://h:1/tw/x"
    )
    assert rewrite_twilio_url("https://example.com/x", "http://h:1") == "https://example.com/x"
    assert rewrite_twilio_url(url, None) == url


async def test_timeout_of_the_client_is_applied() -> None:
    # AsyncTwilioHttpClient stores `timeout` but never passes it on; BaseUrlHttpClient does.
    http = BaseUrlHttpClient("http://127.0.0.1:9", timeout=1.5)
    real = twilio_client(SID, TOKEN)
    try:
        assert http.timeout == 1.5
        assert real.http_client.base_url is None and real.http_client.timeout == 10.0
    finally:
        await http.close()
        await real.http_client.close()


# ------------------------------------------------------------------ create and fetch --


async def test_create_and_fetch_with_twilio_shapes(
    emu: TwilioEmulator, client: Client, fake_clock: FakeClock
) -> None:
    emu.open_window(ROSA)
    message = await client.messages.create_async(
        to=f"whatsapp:{ROSA}",
        from_=BOT,
        body="¡Hola Rosa! 👋",
        media_url=["https://barrio.example.cl/m/abc.jpg"],
        status_callback=f"{PUBLIC}/whatsapp/status",
        validity_period=600,
    )
    assert re.fullmatch(r"MM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.account_sid == SID
    assert (message.to, message.from_) == (f"whatsapp:{ROSA}", BOT)
    assert message.body == "¡Hola Rosa! 👋"
    assert message.direction == "outbound-api"
    assert message.num_media == "1" and message.num_segments == "1"
    assert message.date_created == datetime.fromtimestamp(int(fake_clock.now), UTC)
    assert message.date_sent is None and message.error_code is None
    assert message.uri == f"/2010-04-01/Accounts/{SID}/Messages/{message.sid}.json"

    fetched = await client.messages(message.sid).fetch_async()
    assert (fetched.sid, fetched.status, fetched.body) == (message.sid, "queued", message.body)

    [record] = emu.sent(ROSA)
    assert record["media_urls"] == ["https://barrio.example.cl/m/abc.jpg"]
    assert record["validity_period"] == 600
    assert record["status_callback"] == f"{PUBLIC}/whatsapp/status"
    # Accepted, but its media cannot be fetched (nothing answers there): it will fail, as
    # Twilio's would, with "Media failed to download".
    assert record["fails_with"] == 63019 and record["media"] == []

    async with httpx.AsyncClient(base_url=emu.base_url or "", auth=(SID, TOKEN)) as http:
        raw = await http.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json",
            data={"To": f"whatsapp:{ROSA}", "From": BOT, "Body": "x"},
        )
        assert raw.status_code == 201
        body = raw.json()
        assert sorted(body) == sorted(
            [
                "account_sid", "api_version", "body", "date_created", "date_sent",
                "date_updated", "direction", "error_code", "error_message", "from",
                "messaging_service_sid", "num_media", "num_segments", "price", "price_unit",
                "sid", "status", "subresource_uris", "to", "uri",
            ]
        )  # fmt: skip
        assert re.fullmatch(
            r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", body["date_created"]
        )
        assert raw.headers["Twilio-Request-Id"].startswith("RQ")
        missing = await http.get(f"/2010-04-01/Accounts/{SID}/Messages/SM{'0' * 32}.json")
        assert missing.status_code == 404 and missing.json()["code"] == 20404


async def test_bad_credentials_answer_401_with_20003(emu: TwilioEmulator) -> None:
    wrong = twilio_client(SID, "not-the-token", emu.base_url)
    try:
        with pytest.raises(TwilioRestException) as failure:
            await wrong.messages.create_async(to=f"whatsapp:{ROSA}", from_=BOT, body="x")
    finally:
        await wrong.http_client.close()
    assert (failure.value.status, failure.value.code) == (401, 20003)
    assert failure.value.msg == "Unable to create record: Authenticate"
    async with httpx.AsyncClient(base_url=emu.base_url or "") as http:
        anonymous = await http.post(f"/2010-04-01/Accounts/{SID}/Messages.json", data={})
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
        assert anonymous.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
            "detail": "Your AccountSid or AuthToken was incorrect.",
        }
        other_account = await http.get(
            f"/2010-04-01/Accounts/AC{'f' * 32}/Messages/SM{'0' * 32}.json", auth=(SID, TOKEN)
        )
        assert other_account.status_code == 401
    assert emu.stats["error_codes"]["20003"] == 3
    assert emu.sent() == []


async def test_synchronous_validation_errors(emu: TwilioEmulator, client: Client) -> None:
    emu.open_window(ROSA)
    emu.add_template(TEMPLATE, "Reunión el {{1}} a las {{2}}")
    cases: list[tuple[dict[str, object], str, int]] = [
        ({"body": "x"}, "+12", 21211),
        ({"body": "x"}, "", 21604),
        ({"body": "x", "from_": ""}, ROSA, 21603),
        ({"body": "x", "from_": "+14155238886"}, ROSA, 21910),
        ({"body": ""}, ROSA, 21602),
        ({"body": "a" * 1601}, ROSA, 21617),
        ({"content_sid": "HXnope"}, ROSA, 21655),
        ({"content_sid": "HX" + "c3" * 16}, ROSA, 21655),  # not a registered template
        ({"content_sid": TEMPLATE, "content_variables": "{1:"}, ROSA, 21656),
        ({"media_url": ["ftp://x/y.png"]}, ROSA, 21620),
        ({"body": "x", "validity_period": 36001}, ROSA, 21624),
        ({"body": "x", "validity_period": 0}, ROSA, 21624),
        ({"body": "x", "status_callback": "not a url"}, ROSA, 21609),
    ]
    for kwargs, to, code in cases:
        with pytest.raises(TwilioRestException) as failure:
            if to == "":
                await client.messages.create_async(to="", **{"from_": BOT, **kwargs})
            else:
                await send(client, to, **kwargs)
        assert (failure.value.status, failure.value.code) == (400, code), kwargs
        assert failure.value.msg.startswith("Unable to create record: ")
    assert emu.sent() == []
    # Exactly 1,600 characters is fine.
    await send(client, body="a" * 1600)
    assert len(emu.sent(ROSA)) == 1


# ------------------------------------------------------------- the 24-hour window --


async def test_window_and_templates(
    emu: TwilioEmulator, client: Client, receiver: Receiver, fake_clock: FakeClock
) -> None:
    emu.add_template(TEMPLATE, "Reunión el {{1}} a las {{2}}")
    callback = f"{PUBLIC}/whatsapp/status"
    # Never wrote: a freeform body is accepted (201, queued) and then fails with 63016.
    outside = await send(client, status_callback=callback)
    assert outside.status == "queued"
    assert emu.sent(ROSA)[-1]["fails_with"] == 63016
    assert await emu.advance_status(outside.sid) == [204]
    assert receiver.statuses[-1]["MessageStatus"] == "failed"
    assert receiver.statuses[-1]["ErrorCode"] == "63016"
    failed = await client.messages(outside.sid).fetch_async()
    assert (failed.status, failed.error_code) == ("failed", 63016)
    assert "outside the allowed window" in failed.error_message

    # A template opens a business-initiated conversation outside the window.
    invite = await send(
        client,
        content_sid=TEMPLATE,
        content_variables=json.dumps({"1": "martes", "2": "19:00"}),
        status_callback=callback,
    )
    record = emu.sent(ROSA)[-1]
    assert record["body"] == "Reunión el martes a las 19:00" == invite.body
    assert record["content_variables"] == {"1": "martes", "2": "19:00"}
    assert record["business_initiated"] and record["fails_with"] is None
    # A missing variable fails in the channel (63028).
    await send(client, content_sid=TEMPLATE, content_variables=json.dumps({"1": "martes"}))
    assert emu.sent(ROSA)[-1]["fails_with"] == 63028

    # Rosa writes: freeform works for 24 hours.
    assert await emu.send_text(ROSA, "hola") == 204
    assert emu.in_window(ROSA)
    await send(client)
    assert emu.sent(ROSA)[-1]["fails_with"] is None
    fake_clock.advance(23.9 * 3600)
    await send(client)
    assert emu.sent(ROSA)[-1]["fails_with"] is None
    emu.age_window(ROSA, 1)
    await send(client)
    assert emu.sent(ROSA)[-1]["fails_with"] == 63016

    # The simpler (not Twilio's) model answers channel errors at create time.
    emu.channel_errors = "sync"
    error = await rest_error(client)
    assert (error.status, error.code) == (400, 63016)


async def test_opt_out_with_stop_until_start(
    emu: TwilioEmulator, client: Client, receiver: Receiver
) -> None:
    assert await emu.send_text(ROSA, "  stop ") == 204
    assert receiver.inbound[-1]["Body"] == "  stop "  # still passed on to the bot
    assert emu.is_opted_out(ROSA)
    error = await rest_error(client)
    assert (error.status, error.code) == (400, 21610)
    assert error.msg == "Unable to create record: Attempt to send to unsubscribed recipient"
    # Only a message that is exactly a keyword counts; HOLA is no opt-in keyword for Twilio.
    await emu.send_text(ROSA, "start please")
    await emu.send_text(ROSA, "HOLA")
    assert (await rest_error(client)).code == 21610
    await emu.send_text(ROSA, "START")
    await send(client)
    assert [m["fails_with"] for m in emu.sent(ROSA)] == [None]


# ------------------------------------------------------------------------- limits --


async def test_rate_limit_answers_429_with_20429(
    emu: TwilioEmulator, client: Client, fake_clock: FakeClock
) -> None:
    emu.add_number(LUIS)
    emu.open_window(ROSA)
    emu.set_limits(rate_per_s=2)
    await send(client)
    await send(client, LUIS)
    error = await rest_error(client)
    assert (error.status, error.code) == (429, 20429)
    assert emu.stats["http_429"] == 1
    assert len(emu.sent()) == 2  # a 429 sends nothing
    fake_clock.advance(1.0)
    await send(client)
    emu.set_limits(rate_per_s=None)
    for _ in range(5):
        await send(client)
    assert len(emu.sent(ROSA)) == 7


async def test_daily_cap_on_business_initiated_conversations(
    emu: TwilioEmulator, client: Client, fake_clock: FakeClock
) -> None:
    emu.add_template(TEMPLATE, "Aviso: {{1}}")
    emu.set_limits(daily_conversation_cap=2)
    people = ["+56900000001", "+56900000002", "+56900000003"]
    for number in people:
        await send(client, number, content_sid=TEMPLATE, content_variables='{"1": "feria"}')
    assert [emu.sent(n)[-1]["fails_with"] for n in people] == [None, None, 63018]
    # Writing again to an open conversation does not count; replies in the window never do.
    await send(client, people[0], content_sid=TEMPLATE, content_variables='{"1": "otra"}')
    emu.open_window(people[2])
    await send(client, people[2])
    assert [emu.sent(n)[-1]["fails_with"] for n in (people[0], people[2])] == [None, None]
    # A day later the conversations have closed.
    fake_clock.advance(24 * 3600 + 1)
    await send(client, "+56900000004", content_sid=TEMPLATE, content_variables='{"1": "x"}')
    assert emu.sent("+56900000004")[-1]["fails_with"] is None
    emu.channel_errors = "sync"
    emu.set_limits(daily_conversation_cap=1)
    error = await rest_error(
        client, "+56900000005", content_sid=TEMPLATE, content_variables='{"1": "x"}'
    )
    assert (error.status, error.code) == (400, 63018)


async def test_the_daily_cap_counts_afresh_through_the_control_api_or_a_day_later(
    emu: TwilioEmulator, client: Client, fake_clock: FakeClock
) -> None:
    emu.add_template(TEMPLATE, "Aviso: {{1}}")
    emu.set_limits(daily_conversation_cap=1)

    async def template_to(number: str) -> int | None:
        await send(client, number, content_sid=TEMPLATE, content_variables='{"1": "feria"}')
        return emu.sent(number)[-1]["fails_with"]

    assert [await template_to(n) for n in ("+56900000001", "+56900000002")] == [None, 63018]
    assert emu.conversations_open() == 1
    async with httpx.AsyncClient(base_url=emu.base_url or "") as http:
        reset = await http.post("/control/limits/reset", json={})
        assert reset.json() == {"conversations_open": 0}
        assert await template_to("+56900000002") is None
        # A sender that is no number is refused, and the count stays.
        refused = await http.post("/control/limits/reset", json={"sender": "nope"})
        assert refused.status_code == 400 and emu.conversations_open() == 1
    assert await template_to("+56900000003") == 63018
    fake_clock.advance(24 * 3600 - 1)
    assert emu.conversations_open() == 1  # a rolling 24 hours, not a calendar day
    fake_clock.advance(1)
    assert emu.conversations_open() == 0
    assert await template_to("+56900000003") is None


# ------------------------------------------------------------------------- faults --


async def test_injected_errors_and_hangs(emu: TwilioEmulator, client: Client) -> None:
    emu.open_window(ROSA)
    emu.fail_next(500, count=2)
    for _ in range(2):
        error = await rest_error(client)
        assert (error.status, error.code) == (500, 20500)
    emu.fail_next(503)
    assert (await rest_error(client)).status == 503
    emu.fail_next(429)
    assert (await rest_error(client)).code == 20429
    await send(client, body="por fin")
    assert [m["body"] for m in emu.sent(ROSA)] == ["por fin"]

    # A timeout after Twilio received (and carried out) the request: the ambiguous case.
    impatient = twilio_client(SID, TOKEN, emu.base_url, timeout=0.05)
    try:
        emu.hang_next(seconds=5)
        with pytest.raises(TimeoutError):
            await impatient.messages.create_async(to=f"whatsapp:{ROSA}", from_=BOT, body="¿?")
        assert [m["body"] for m in emu.sent(ROSA)] == ["por fin", "¿?"]
        emu.hang_next(seconds=5, apply=False)
        with pytest.raises(TimeoutError):
            await impatient.messages.create_async(to=f"whatsapp:{ROSA}", from_=BOT, body="no")
        assert len(emu.sent(ROSA)) == 2
        emu.release_hung()
    finally:
        await impatient.http_client.close()
    with pytest.raises(ValueError):
        emu.fail_next(count=0)


# ---------------------------------------------------------------- inbound webhooks --


async def test_inbound_webhooks_are_signed_over_the_public_url(
    emu: TwilioEmulator, receiver: Receiver
) -> None:
    emu.add_number(ROSA, profile_name="Rosa Pérez")
    assert await emu.send_text(ROSA, "Hola, quiero unirme") == 204
    params = receiver.inbound[-1]
    assert SID_PATTERN.fullmatch(params["MessageSid"])
    assert params["SmsMessageSid"] == params["SmsSid"] == params["MessageSid"]
    assert params["From"] == f"whatsapp:{ROSA}" and params["To"] == BOT
    assert (params["AccountSid"], params["ApiVersion"]) == (SID, "2010-04-01")
    assert (params["ProfileName"], params["WaId"]) == ("Rosa Pérez", ROSA[1:])
    assert (params["Body"], params["NumMedia"], params["MessageType"]) == (
        "Hola, quiero unirme",
        "0",
        "text",
    )
    assert receiver.headers[-1]["content-type"] == "application/x-www-form-urlencoded"

    assert await emu.send_location(ROSA, -33.4372, -70.6506, label="Feria") == 204
    located = receiver.inbound[-1]
    assert (located["Latitude"], located["Longitude"], located["Label"]) == (
        "-33.4372",
        "-70.6506",
        "Feria",
    )
    assert located["MessageType"] == "location"

    assert await emu.send_media(ROSA, "image/jpeg", data=b"\xff\xd8jpeg", caption="mi local") == 204
    photo = receiver.inbound[-1]
    assert photo["MessageSid"].startswith("MM")
    assert (photo["NumMedia"], photo["MediaContentType0"], photo["Body"]) == (
        "1",
        "image/jpeg",
        "mi local",
    )
    assert photo["MediaUrl0"].startswith(f"{emu.base_url}/2010-04-01/Accounts/{SID}/Messages/")
    async with httpx.AsyncClient() as http:
        # Media URLs take the account's credentials, as Twilio's do by default.
        assert (await http.get(photo["MediaUrl0"])).status_code == 401
        download = await http.get(photo["MediaUrl0"], auth=(SID, TOKEN))
    assert download.content == b"\xff\xd8jpeg"
    assert download.headers["content-type"] == "image/jpeg"

    assert await emu.send_button(ROSA, "Asistiré", "yes:42") == 204
    assert receiver.inbound[-1]["ButtonPayload"] == "yes:42"

    # Forged, unsigned, or signed over the URL the bot does not know: 403.
    assert receiver.rejected == 0
    assert await emu.send_text(ROSA, "x", signature="missing") == 403
    assert await emu.send_text(ROSA, "x", signature="wrong") == 403
    assert await emu.send_text(ROSA, "x", sign_url=f"{receiver.url}/whatsapp") == 403
    emu.set_webhook(f"{receiver.url}/whatsapp")  # no public URL: signed over the internal one
    assert await emu.send_text(ROSA, "x") == 403
    assert receiver.rejected == 4
    assert emu.stats["webhook_failures"] == 4
    assert len(receiver.inbound) == 4


async def test_replayed_webhook_is_identical(emu: TwilioEmulator, receiver: Receiver) -> None:
    await emu.send_text(ROSA, "1")
    first_sid = emu.last_inbound_sid
    assert await emu.redeliver() == 204
    assert await emu.redeliver(first_sid) == 204
    assert [p["MessageSid"] for p in receiver.inbound] == [first_sid] * 3
    assert receiver.inbound[0] == receiver.inbound[2]
    signatures = {h["x-twilio-signature"] for h in receiver.headers}
    tokens = {h["i-twilio-idempotency-token"] for h in receiver.headers}
    assert len(signatures) == 1 and len(tokens) == 1
    [logged] = emu.inbound(ROSA)
    assert [d["status"] for d in logged["deliveries"]] == [204, 204, 204]
    assert await emu.redeliver(signature="wrong") == 403


async def test_twiml_and_plain_text_replies_are_sent(
    emu: TwilioEmulator, receiver: Receiver
) -> None:
    receiver.reply = Response(
        "<?xml version='1.0'?><Response><Message>¡Bienvenida!</Message>"
        "<Message><Body>Foto</Body><Media>https://x.cl/a.png</Media></Message></Response>",
        media_type="text/xml",
    )
    await emu.send_text(ROSA, "hola")
    replies = emu.sent(ROSA)
    assert [(m["direction"], m["body"], m["media_urls"]) for m in replies] == [
        ("outbound-reply", "¡Bienvenida!", []),
        ("outbound-reply", "Foto", ["https://x.cl/a.png"]),
    ]
    # Twilio sends a text/plain answer to the person too: an "ok" would reach them.
    receiver.reply = Response("ok", media_type="text/plain")
    await emu.send_text(ROSA, "hola")
    assert emu.sent(ROSA)[-1]["body"] == "ok"
    receiver.reply = Response('{"ok": true}', media_type="application/json")
    await emu.send_text(ROSA, "hola")
    assert len(emu.sent(ROSA)) == 3
    assert emu.inbound(ROSA)[-1]["deliveries"][-1]["twilio_error"] == 12300


async def test_no_webhook_is_an_error(emu: TwilioEmulator) -> None:
    with pytest.raises(RuntimeError, match="set_webhook"):
        await emu.send_text(ROSA, "hola")
    assert emu.in_window(ROSA)  # the window opened anyway: Twilio received the message


# ----------------------------------------------------------------- status callbacks --


async def test_status_callbacks_in_order_out_of_order_and_failing(
    emu: TwilioEmulator, client: Client, receiver: Receiver, fake_clock: FakeClock
) -> None:
    await emu.send_text(ROSA, "hola")
    callback = f"{PUBLIC}/whatsapp/status"
    message = await send(client, status_callback=callback)
    sid = message.sid
    assert await emu.advance_status(sid, "delivered") == [204, 204]
    assert [s["MessageStatus"] for s in receiver.statuses] == ["sent", "delivered"]
    last = receiver.statuses[-1]
    assert (last["MessageSid"], last["SmsSid"], last["SmsStatus"]) == (sid, sid, "delivered")
    assert (last["AccountSid"], last["From"], last["To"]) == (SID, BOT, f"whatsapp:{ROSA}")
    assert last["ChannelPrefix"] == "whatsapp" and "ErrorCode" not in last
    fetched = await client.messages(sid).fetch_async()
    assert fetched.status == "delivered" and fetched.date_sent is not None
    assert await emu.advance_status(sid) == [204]  # next planned: read
    assert await emu.advance_status(sid) == []  # nothing more to come
    with pytest.raises(ValueError):
        await emu.advance_status(sid, "sent")

    # Late, duplicated and out of order: the resource never goes back.
    assert await emu.send_status_callbacks(sid, ["delivered", "sent", "delivered"]) == [204] * 3
    assert [s["MessageStatus"] for s in receiver.statuses[-3:]] == [
        "delivered",
        "sent",
        "delivered",
    ]
    assert (await client.messages(sid).fetch_async()).status == "read"

    # Read without delivered, as WhatsApp sometimes reports.
    quick = await send(client, status_callback=callback)
    assert await emu.advance_status(quick.sid, "read", skip_intermediate=True) == [204]
    assert receiver.statuses[-1]["MessageStatus"] == "read"

    # A number bound to fail: undelivered after sent, with its ErrorCode.
    emu.fail_delivery(ROSA, "undelivered", 63024)
    doomed = await send(client, status_callback=callback)
    assert emu.sent(ROSA)[-1]["fails_with"] == 63024
    assert await emu.settle(doomed.sid) == 2
    assert [s["MessageStatus"] for s in receiver.statuses[-2:]] == ["sent", "undelivered"]
    assert receiver.statuses[-1]["ErrorCode"] == "63024"

    # A queued alert past its ValidityPeriod fails (30036) rather than arriving late.
    alert = await send(client, status_callback=callback, validity_period=60)
    fake_clock.advance(61)
    assert await emu.advance_status(alert.sid) == [204]
    assert receiver.statuses[-1]["ErrorCode"] == "30036"
    assert (await client.messages(alert.sid).fetch_async()).error_code == 30036

    # Forced failure and unsigned callbacks.
    other = await send(client, status_callback=callback)
    assert await emu.advance_status(other.sid, "failed", error_code=63032) == [204]
    assert receiver.statuses[-1]["ErrorCode"] == "63032"
    assert await emu.send_status_callbacks(other.sid, ["failed"], signature="missing") == [403]
    assert receiver.rejected == 1
    assert [c["status"] for c in emu.message(other.sid)["callbacks"]] == ["failed", "failed"]


async def test_auto_status_and_wait_for_sent(emu: TwilioEmulator, receiver: Receiver) -> None:
    emu.auto_status = "delivered"
    emu.open_window(ROSA)
    rest = twilio_client(SID, TOKEN, emu.base_url)
    try:

        async def later() -> None:
            await asyncio.sleep(0.01)
            for text in ("uno", "dos"):
                await rest.messages.create_async(
                    to=f"whatsapp:{ROSA}",
                    from_=BOT,
                    body=text,
                    status_callback=f"{PUBLIC}/whatsapp/status",
                )

        task = asyncio.create_task(later())
        sent = await emu.wait_for_sent(ROSA, count=2)
        await task
        assert [m["body"] for m in sent] == ["uno", "dos"]
        assert [m["body"] for m in emu.sent(ROSA, after_sid=sent[0]["sid"])] == ["dos"]
        await emu.wait_for(lambda: len(receiver.statuses) == 4, what="4 callbacks")
        assert sorted(s["MessageStatus"] for s in receiver.statuses) == [
            "delivered",
            "delivered",
            "sent",
            "sent",
        ]
    finally:
        await rest.http_client.close()
    with pytest.raises(TimeoutError, match="expected 3 message.*'uno'.*'dos'"):
        await emu.wait_for_sent(ROSA, count=3, timeout=0.01)


async def test_number_not_on_whatsapp_and_unknown_sender(
    emu: TwilioEmulator, client: Client
) -> None:
    emu.add_number(LUIS, on_whatsapp=False)
    await send(client, LUIS)
    assert emu.sent(LUIS)[-1]["fails_with"] == 63003
    emu.open_window(ROSA)
    await send(client, from_="whatsapp:+15005550006")
    assert emu.sent(ROSA)[-1]["fails_with"] == 63007


# --------------------------------------------------------------------- control routes --


async def test_control_http_api(
    emu: TwilioEmulator, client: Client, receiver: Receiver, fake_clock: FakeClock
) -> None:
    async with httpx.AsyncClient(base_url=emu.base_url or "") as http:
        person = await http.post("/control/numbers", json={"number": ROSA, "profile_name": "Rosa"})
        assert person.json() == {"number": ROSA, "profile_name": "Rosa"}
        inbound = await http.post("/control/messages", json={"number": ROSA, "body": "hola"})
        assert inbound.json()["status"] == 204
        assert receiver.inbound[-1]["ProfileName"] == "Rosa"
        forged = await http.post(
            "/control/messages", json={"number": ROSA, "body": "x", "signature": "wrong"}
        )
        assert forged.json()["status"] == 403
        located = await http.post(
            "/control/locations", json={"number": ROSA, "latitude": -33.4, "longitude": -70.6}
        )
        assert located.json()["status"] == 204
        replay = await http.post(
            "/control/redeliver", json={"message_sid": inbound.json()["message_sid"]}
        )
        assert replay.json() == {"status": 204}
        bulk = await http.post(
            "/control/messages/bulk",
            json={"items": [{"number": f"+5690000{i:04d}", "body": "hola"} for i in range(20)]},
        )
        assert bulk.json() == {"count": 20, "statuses": {"204": 20}}
        assert len((await http.get("/control/inbound", params={"number": ROSA})).json()) == 3

        message = await send(client, status_callback=f"{PUBLIC}/whatsapp/status")
        waited = await http.get("/control/sent/wait", params={"number": ROSA, "count": 1})
        assert [m["sid"] for m in waited.json()] == [message.sid]
        timed_out = await http.get(
            "/control/sent/wait", params={"number": ROSA, "count": 5, "timeout": 0.01}
        )
        assert timed_out.status_code == 408
        advanced = await http.post(
            "/control/status",
            json={"sid": message.sid, "status": "delivered"},
        )
        assert advanced.json()["callbacks"] == [204, 204]
        assert advanced.json()["message"]["status"] == "delivered"
        replayed = await http.post(
            "/control/status/callbacks",
            json={"sid": message.sid, "statuses": ["sent"]},
        )
        assert replayed.json()["message"]["status"] == "delivered"
        settled = await http.post("/control/status/settle", json={"until": "read"})
        assert settled.json() == {"callbacks": 1}
        one = await http.get("/control/message", params={"sid": message.sid})
        assert one.json()["status"] == "read"

        window = await http.post("/control/window", json={"number": ROSA, "hours": 25})
        assert window.json()["in_window"] is False
        await http.post("/control/opt_out", json={"number": ROSA})
        assert (await rest_error(client)).code == 21610
        await http.post("/control/opt_out", json={"number": ROSA, "opted_out": False})
        await http.post("/control/window", json={"number": ROSA, "open": True})
        fake_clock.advance(2)
        await http.post("/control/limits", json={"rate_per_s": 1})
        await http.post("/control/faults", json={"status": 500})
        assert (await rest_error(client)).status == 500
        await send(client)
        assert (await rest_error(client)).status == 429
        await http.post("/control/limits", json={})
        await http.post("/control/faults", json={"status": 400, "code": 21211, "count": 3})
        await http.post("/control/faults/clear")
        await send(client)
        bad = await http.post("/control/status", json={"sid": "SMnope"})
        assert bad.status_code == 400

        stats = (await http.get("/control/stats")).json()
        assert stats["sent_messages"] == 3 and stats["http_429"] == 1
        assert stats["error_codes"] == {"21610": 1, "20500": 1, "20429": 1}
        assert (await http.get("/control/errors")).json()[-1]["code"] == 20429
        await http.post("/control/reset")
        assert (await http.get("/control/sent")).json() == []
        unknown = await http.get("/2010-04-01/Accounts/nope/Calls.json")
        assert unknown.status_code == 404 and unknown.json()["code"] == 20404
