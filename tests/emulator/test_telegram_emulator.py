"""The Telegram emulator against the real python-telegram-bot client.

Every Bot API call here goes through `telegram.Bot` over HTTP to a served emulator, so the
JSON shapes, status codes and error descriptions are checked the way the bot will meet them.
Time-dependent behaviour (flood limits, callback-query expiry) runs on a fake clock.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import telegram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter

from bot.emulator.telegram import (
    TelegramEmulator,
    api_base_url,
    file_base_url,
    serve_asgi,
    serve_emulator,
)

TOKEN = "123456:TEST-TOKEN"
ANA = 5001
LUIS = 5002


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns about integer periods when it builds RetryAfter unless opted in.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator(token=TOKEN, clock=clock)
    async with serve_emulator(emulator) as base_url:
        assert emulator.base_url == base_url
        yield emulator


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[telegram.Bot]:
    assert emu.base_url is not None
    async with telegram.Bot(
        TOKEN, base_url=api_base_url(emu.base_url), base_file_url=file_base_url(emu.base_url)
    ) as client:
        yield client


@pytest.fixture
async def http(emu: TelegramEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=emu.base_url or "") as client:
        yield client


async def raw_call(http: httpx.AsyncClient, method: str, **params: Any) -> httpx.Response:
    return await http.post(f"/bot{TOKEN}/{method}", json=params)


def keyboard(*datas: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.upper(), callback_data=d)] for d in datas])


# ------------------------------------------------------------------------ plumbing --


async def test_get_me_and_routing(
    emu: TelegramEmulator, bot: telegram.Bot, http: httpx.AsyncClient
) -> None:
    assert bot.bot.id == 123456
    assert bot.bot.username == "BarrioConectaBot"
    assert bot.bot.first_name == "Barrio Conecta"
    assert (await bot.get_me()).is_bot

    wrong = await http.post("/bot999:WRONG/getMe")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    unknown = await http.post(f"/bot{TOKEN}/sendTelepathy")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    # Method names are case-insensitive and GET with a query string works, as on Telegram.
    assert (await http.get(f"/bot{TOKEN}/GETME")).json()["result"]["id"] == 123456
    emu.send_text(ANA, "hola")
    polled = await http.get(f"/bot{TOKEN}/getupdates", params={"limit": "1"})
    assert polled.json()["result"][0]["message"]["text"] == "hola"

    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with telegram.Bot("999:WRONG", base_url=api_base_url(emu.base_url or "")):
            pass


async def test_form_json_and_multipart_bodies_are_decoded_per_field(
    emu: TelegramEmulator, http: httpx.AsyncClient
) -> None:
    emu.send_text(ANA, "hola")
    # Form values are strings; a numeric-looking text must stay text while chat_id is a number.
    form = await http.post(f"/bot{TOKEN}/sendMessage", data={"chat_id": str(ANA), "text": "123"})
    assert form.json()["result"]["text"] == "123"
    as_json = await raw_call(http, "sendMessage", chat_id=ANA, text="true")
    assert as_json.json()["result"]["text"] == "true"
    upload = await http.post(
        f"/bot{TOKEN}/sendDocument",
        data={"chat_id": str(ANA), "caption": "42"},
        files={"document": ("menu.pdf", b"%PDF-1.4", "application/pdf")},
    )
    document = upload.json()["result"]["document"]
    assert (document["file_name"], document["mime_type"], document["file_size"]) == (
        "menu.pdf",
        "application/pdf",
        8,
    )
    assert [record["text"] for record in emu.sent(ANA)] == ["123", "true", "42"]


# ------------------------------------------------------------------- sending messages --


async def test_send_message_with_inline_keyboard_round_trip(
    emu: TelegramEmulator, bot: telegram.Bot
) -> None:
    emu.send_text(ANA, "/start")
    markup = keyboard("yes", "no")
    message = await bot.send_message(ANA, "¿Confirmas?", reply_markup=markup, parse_mode="HTML")

    assert message.reply_markup == markup
    assert message.chat.id == ANA and message.chat.type == "private"
    assert message.from_user is not None and message.from_user.id == bot.bot.id
    record = emu.message(ANA, message.message_id)
    assert record is not None
    assert record["text"] == "¿Confirmas?"
    assert record["method"] == "sendMessage"
    assert record["parse_mode"] == "HTML"
    assert record["reply_markup"] == markup.to_dict()
    assert record["edited"] is False
    assert emu.sent(ANA) == [record]


async def test_reply_keyboards_and_replies(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    question = emu.send_text(ANA, "¿Dónde queda?")["message"]
    reply_keyboard = ReplyKeyboardMarkup([[KeyboardButton("Compartir", request_location=True)]])
    sent = await bot.send_message(
        ANA,
        "Comparte tu ubicación",
        reply_markup=reply_keyboard,
        reply_parameters=ReplyParameters(question["message_id"]),
    )
    # Reply keyboards belong to the chat, so Telegram leaves them out of the Message.
    assert sent.reply_markup is None
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.text == "¿Dónde queda?"
    assert emu.sent(ANA)[-1]["reply_markup"] == reply_keyboard.to_dict()
    assert emu.sent(ANA)[-1]["reply_to_message_id"] == question["message_id"]

    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(ANA, "x", reply_parameters=ReplyParameters(999))


async def test_message_ids_are_per_chat_and_update_ids_global(
    emu: TelegramEmulator, bot: telegram.Bot
) -> None:
    first = emu.send_text(ANA, "hola")
    reply = await bot.send_message(ANA, "¡Hola!")
    second = emu.send_text(ANA, "gracias")
    other = emu.send_text(LUIS, "buenas")
    assert [first["message"]["message_id"], reply.message_id, second["message"]["message_id"]] == [
        1,
        2,
        3,
    ]
    assert other["message"]["message_id"] == 1
    assert [first["update_id"], second["update_id"], other["update_id"]] == [1, 2, 3]


async def test_text_limits_count_utf16_units(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    emu.send_text(ANA, "hola")
    assert (await bot.send_message(ANA, "a" * 4096)).text == "a" * 4096
    with pytest.raises(BadRequest, match="^Message is too long$"):
        await bot.send_message(ANA, "a" * 4097)

    # An emoji outside the BMP is two UTF-16 units: 2048 of them fill the limit exactly.
    assert len("😀" * 2048 + "a") == 2049
    await bot.send_message(ANA, "😀" * 2048)
    with pytest.raises(BadRequest, match="^Message is too long$"):
        await bot.send_message(ANA, "😀" * 2048 + "a")
    for empty in ("", "   \n"):
        with pytest.raises(BadRequest, match="^Message text is empty$"):
            await bot.send_message(ANA, empty)
    assert len(emu.sent(ANA)) == 2


async def test_callback_data_limit_is_64_utf8_bytes(
    emu: TelegramEmulator, bot: telegram.Bot, http: httpx.AsyncClient
) -> None:
    emu.send_text(ANA, "hola")
    await bot.send_message(ANA, "ok", reply_markup=keyboard("ñ" * 32))  # 64 bytes
    with pytest.raises(BadRequest, match="^Button_data_invalid$"):
        await bot.send_message(ANA, "no", reply_markup=keyboard("ñ" * 32 + "x"))
    empty = await raw_call(
        http,
        "sendMessage",
        chat_id=ANA,
        text="no",
        reply_markup={"inline_keyboard": [[{"text": "A", "callback_data": ""}]]},
    )
    assert empty.status_code == 400
    assert empty.json()["description"] == "Bad Request: BUTTON_DATA_INVALID"


async def test_unknown_and_blocked_chats(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    emu.user(LUIS, first_name="Luis")  # registered but never wrote: not a chat yet
    with pytest.raises(BadRequest, match="^Chat not found$"):
        await bot.send_message(LUIS, "hola")

    emu.send_text(ANA, "hola")
    emu.block(ANA)
    with pytest.raises(Forbidden, match="^Forbidden: bot was blocked by the user$"):
        await bot.send_message(ANA, "¿Sigues ahí?")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(ANA, "typing")
    updates = await bot.get_updates()
    member = updates[-1].my_chat_member
    assert member is not None
    assert (member.old_chat_member.status, member.new_chat_member.status) == ("member", "kicked")

    emu.unblock(ANA)
    assert (await bot.send_message(ANA, "¡Volviste!")).text == "¡Volviste!"
    assert [record["text"] for record in emu.sent(ANA)] == ["¡Volviste!"]


async def test_exact_error_descriptions(emu: TelegramEmulator, http: httpx.AsyncClient) -> None:
    emu.send_text(ANA, "hola")
    sent = (await raw_call(http, "sendMessage", chat_id=ANA, text="uno")).json()["result"]
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("sendMessage", {"chat_id": ANA, "text": ""}, 400, "Bad Request: message text is empty"),
        (
            "sendMessage",
            {"chat_id": ANA, "text": "a" * 4097},
            400,
            "Bad Request: message is too long",
        ),
        ("sendMessage", {"chat_id": 777, "text": "x"}, 400, "Bad Request: chat not found"),
        (
            "editMessageText",
            {"chat_id": ANA, "message_id": sent["message_id"], "text": "uno"},
            400,
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message",
        ),
        (
            "editMessageText",
            {"chat_id": ANA, "message_id": 99, "text": "dos"},
            400,
            "Bad Request: message to edit not found",
        ),
        (
            "answerCallbackQuery",
            {"callback_query_id": "nope"},
            400,
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
        ),
        (
            "sendPhoto",
            {"chat_id": ANA, "photo": "https://example.org/a.jpg", "caption": "c" * 1025},
            400,
            "Bad Request: message caption is too long",
        ),
    ]
    for method, params, status, description in cases:
        response = await raw_call(http, method, **params)
        assert response.status_code == status, (method, params)
        assert response.json() == {"ok": False, "error_code": status, "description": description}
    assert emu.stats["errors"] == len(cases)


# --------------------------------------------------------------------- limits & faults --


async def test_flood_limits_answer_429_with_retry_after(
    emu: TelegramEmulator, bot: telegram.Bot, clock: FakeClock
) -> None:
    emu.send_text(ANA, "hola")
    emu.send_text(LUIS, "hola")
    emu.set_rate_limits(None, 1)
    await bot.send_message(ANA, "uno")
    await bot.send_message(LUIS, "uno")  # another chat has its own window
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(ANA, "dos")
    assert flood.value.retry_after == dtm.timedelta(seconds=1)
    assert emu.stats["http_429"] == 1
    assert [record["text"] for record in emu.sent(ANA)] == ["uno"]  # 429s are not sent
    clock.advance(1.0)
    await bot.send_message(ANA, "dos")

    emu.set_rate_limits(2, None)
    clock.advance(5)
    await bot.send_message(ANA, "a")
    clock.advance(0.2)
    await bot.send_message(LUIS, "b")
    with pytest.raises(RetryAfter):
        await bot.send_message(LUIS, "c")
    clock.advance(0.85)  # the first send left the window, the second has not
    await bot.send_message(LUIS, "c")

    # 20 per minute in a group is one send every 3 s: after 0.5 s, retry after ceil(2.5) = 3.
    emu.set_rate_limits(None, 20 / 60)
    clock.advance(10)
    await bot.send_message(ANA, "lento")
    clock.advance(0.5)
    with pytest.raises(RetryAfter) as slow:
        await bot.edit_message_text("editado", ANA, emu.sent(ANA)[-1]["message_id"])
    assert slow.value.retry_after == dtm.timedelta(seconds=3)
    # Reading and chat actions are never throttled.
    await bot.send_chat_action(ANA, "typing")
    await bot.get_chat(ANA)

    emu.set_rate_limits(None, None)
    await bot.send_message(ANA, "libre")
    assert emu.stats["http_429"] == 3


async def test_injected_server_errors(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    emu.send_text(ANA, "hola")
    emu.fail_next("sendmessage", 500, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError) as failure:
            await bot.send_message(ANA, "hola")
        assert not isinstance(failure.value, BadRequest)
        assert failure.value.message == "Internal Server Error"
    emu.fail_next("sendMessage", 502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(ANA, "hola")
    emu.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(ANA, "hola")
    assert flood.value.retry_after == dtm.timedelta(seconds=7)
    await bot.send_message(ANA, "por fin")
    assert [record["text"] for record in emu.sent(ANA)] == ["por fin"]
    assert emu.stats["errors"] == 3
    assert emu.stats["http_429"] == 1
    assert emu.stats["methods"]["sendMessage"] == 5
    with pytest.raises(ValueError):
        emu.fail_next("sendTelepathy")


# ---------------------------------------------------------------------------- updates --


async def test_get_updates_offset_and_limit(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    for text in ("uno", "dos", "tres"):
        emu.send_text(ANA, text)
    first_two = await bot.get_updates(limit=2)
    assert [u.effective_message.text for u in first_two if u.effective_message] == ["uno", "dos"]
    # Without a higher offset nothing is confirmed.
    assert len(await bot.get_updates()) == 3
    rest = await bot.get_updates(offset=first_two[-1].update_id + 1)
    assert [u.update_id for u in rest] == [3]
    assert len(emu.pending_updates()) == 1
    assert await bot.get_updates(offset=4) == ()
    assert emu.pending_updates() == []

    for text in ("a", "b", "c"):
        emu.send_text(LUIS, text)
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["c"]


async def test_long_poll_wakes_up_on_new_update(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await emu.wait_for(lambda: emu.polls_waiting == 1, what="a waiting getUpdates")
    update = emu.send_text(ANA, "/start@BarrioConectaBot ref_42")
    received = await asyncio.wait_for(poll, 5)
    message = received[0].message
    assert received[0].update_id == update["update_id"]
    assert message is not None and message.text == "/start@BarrioConectaBot ref_42"
    entity = message.entities[0]
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 23)

    # A short poll with nothing to deliver ends empty when its timeout expires.
    assert await bot.get_updates(offset=update["update_id"] + 1, timeout=0.01) == ()


async def test_second_poll_terminates_the_waiting_one(
    emu: TelegramEmulator, bot: telegram.Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await emu.wait_for(lambda: emu.polls_waiting == 1)
    # A second bot instance: PTB itself never runs two getUpdates at once.
    async with telegram.Bot(TOKEN, base_url=api_base_url(emu.base_url or "")) as twin:
        assert await twin.get_updates() == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 5)


async def test_allowed_updates_filter_new_updates(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    emu.send_text(ANA, "hola")
    message = await bot.send_message(ANA, "elige", reply_markup=keyboard("a"))
    await bot.get_updates(offset=2, allowed_updates=["callback_query"])
    emu.send_text(ANA, "ignorado")
    emu.tap(ANA, message.message_id, "a")
    updates = await bot.get_updates(allowed_updates=[])
    assert [u.callback_query.data for u in updates if u.callback_query] == ["a"]
    assert len(updates) == 1
    emu.send_text(ANA, "otra vez")  # the empty list restored the default set
    assert len(await bot.get_updates(offset=updates[0].update_id + 1)) == 1


async def test_users_media_and_edits_parse_in_ptb(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    emu.user(ANA, first_name="Ana", last_name="Pérez", username="anita")
    text = emu.send_text(ANA, "hola")
    emu.send_location(ANA, -34.17, -70.74)
    emu.send_photo(ANA, caption="mi local")
    emu.send_sticker(ANA)
    emu.send_voice(ANA)
    emu.send_contact(ANA, "+56911112222")
    emu.edit_text(ANA, text["message"]["message_id"], "hola de nuevo")
    emu.send_text(LUIS, "/menu", chat_id=-1001234, chat_type="supergroup", chat_title="Vecinos")

    updates = await bot.get_updates()
    messages = [u.effective_message for u in updates]
    assert all(messages)
    location, photo, sticker, voice, contact = (m for m in messages[1:6] if m)
    assert location.location is not None and location.location.latitude == -34.17
    assert photo.caption == "mi local" and len(photo.photo) >= 1
    assert sticker.sticker is not None and sticker.sticker.emoji == "👍"
    assert not sticker.sticker.is_animated and sticker.sticker.type == "regular"
    assert voice.voice is not None and voice.voice.mime_type == "audio/ogg"
    assert contact.contact is not None and contact.contact.user_id == ANA
    edited = updates[6].edited_message
    assert edited is not None and edited.text == "hola de nuevo" and edited.edit_date
    group = updates[7].message
    assert group is not None and group.chat.type == "supergroup" and group.chat.id == -1001234
    assert group.chat.title == "Vecinos" and group.from_user and group.from_user.id == LUIS
    assert updates[0].message and updates[0].message.from_user
    assert updates[0].message.from_user.username == "anita"

    # The bot can download what a user sent and resend it by file_id.
    file = await bot.get_file(photo.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()).startswith(b"\x89PNG")
    resent = await bot.send_photo(ANA, photo.photo[-1].file_id)
    assert [size.file_id for size in resent.photo] == [size.file_id for size in photo.photo]

    with pytest.raises(ValueError):
        emu.send_text(ANA, "")
    with pytest.raises(ValueError):
        emu.edit_text(LUIS, text["message"]["message_id"], "no es mío")


# ------------------------------------------------------------------- webhook delivery --


async def test_webhook_delivery_with_secret_and_retries(
    emu: TelegramEmulator, bot: telegram.Bot
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    arrived = asyncio.Event()
    failures_left = 1

    async def hook(request: Request) -> Response:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            return Response(status_code=500)
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        arrived.set()
        return JSONResponse({})

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serve_asgi(receiver) as receiver_url:
        emu.send_text(ANA, "antes del webhook")
        assert await bot.set_webhook(f"{receiver_url}/hook", secret_token="s3cr3t-TOKEN")
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()

        await asyncio.wait_for(arrived.wait(), 5)
        secret, update = received[0]
        assert secret == "s3cr3t-TOKEN"
        assert update["message"]["text"] == "antes del webhook"
        info = await bot.get_webhook_info()
        assert info.url == f"{receiver_url}/hook"
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )

        arrived.clear()
        emu.send_text(ANA, "después")
        await asyncio.wait_for(arrived.wait(), 5)
        assert [u["message"]["text"] for _, u in received] == ["antes del webhook", "después"]
        await emu.wait_idle()  # the receiver has answered, not just received
        assert emu.stats["webhook_deliveries"] == 2
        assert (await bot.get_webhook_info()).pending_update_count == 0

        assert await bot.delete_webhook()
        emu.send_text(ANA, "polling otra vez")
        assert [u.message.text for u in await bot.get_updates() if u.message] == [
            "polling otra vez"
        ]


# ---------------------------------------------------------- commands, callbacks, edits --


async def test_set_my_commands_validation(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    commands = [BotCommand("start", "Comenzar"), BotCommand("mi_barrio", "Tu barrio")]
    assert await bot.set_my_commands(commands)
    assert await bot.get_my_commands() == tuple(commands)
    assert emu.commands == [
        {"command": "start", "description": "Comenzar"},
        {"command": "mi_barrio", "description": "Tu barrio"},
    ]
    await bot.set_my_commands([BotCommand("help", "Help")], language_code="en")
    assert [c.command for c in await bot.get_my_commands(language_code="en")] == ["help"]
    assert len(emu.commands) == 2

    invalid = [
        (BotCommand("Start", "Mayúscula"), "^Bot_command_invalid$"),
        (BotCommand("con-guion", "Guion"), "^Bot_command_invalid$"),
        (BotCommand("x" * 33, "Larga"), "^Command length must not exceed 32$"),
        (BotCommand("vacio", " "), "^Command description must be non-empty$"),
        (BotCommand("larga", "d" * 257), "^Command description length must not exceed 256$"),
    ]
    for command, error in invalid:
        with pytest.raises(BadRequest, match=error):
            await bot.set_my_commands([command])
    assert len(emu.commands) == 2  # a rejected list changes nothing

    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_callback_query_round_trip(
    emu: TelegramEmulator, bot: telegram.Bot, clock: FakeClock
) -> None:
    emu.send_text(ANA, "hola")
    offer = await bot.send_message(ANA, "¿Te sumas?", reply_markup=keyboard("join", "skip"))
    tap = emu.tap(ANA, offer.message_id, "join")
    updates = await bot.get_updates(offset=tap["update_id"])
    query = updates[0].callback_query
    assert query is not None
    assert query.data == "join" and query.from_user.id == ANA
    assert query.message is not None and query.message.message_id == offer.message_id
    assert query.id == tap["callback_query"]["id"]

    with pytest.raises(BadRequest, match="^Message_too_long$"):
        await bot.answer_callback_query(query.id, text="x" * 201)
    assert await bot.answer_callback_query(query.id, text="¡Listo!", show_alert=True)
    assert emu.callback_answers[-1]["text"] == "¡Listo!"
    assert emu.callback_answers[-1]["show_alert"] is True
    assert emu.callback_answers[-1]["data"] == "join"
    with pytest.raises(BadRequest, match="^Query is too old"):
        await bot.answer_callback_query(query.id)  # already answered

    stale = emu.tap(ANA, offer.message_id, "skip")
    clock.advance(emu.callback_query_ttl_s + 1)
    with pytest.raises(BadRequest, match="^Query is too old"):
        await bot.answer_callback_query(stale["callback_query"]["id"])

    with pytest.raises(ValueError, match="no button"):
        emu.tap(ANA, offer.message_id, "admin:delete_all")
    forged = emu.tap(ANA, offer.message_id, "admin:delete_all", forge=True)
    assert forged["callback_query"]["data"] == "admin:delete_all"
    with pytest.raises(ValueError, match="no bot message"):
        emu.tap(ANA, 999, "join")


async def test_edits_and_deletes(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    user_message = emu.send_text(ANA, "hola")["message"]
    sent = await bot.send_message(ANA, "Paso 1", reply_markup=keyboard("next"))

    edited = await bot.edit_message_text(
        "Paso 2", ANA, sent.message_id, reply_markup=keyboard("next")
    )
    assert isinstance(edited, telegram.Message) and edited.edit_date is not None
    with pytest.raises(BadRequest, match="^Message is not modified"):
        await bot.edit_message_text("Paso 2", ANA, sent.message_id, reply_markup=keyboard("next"))
    # Leaving the markup out removes the keyboard, which counts as a change.
    await bot.edit_message_text("Paso 2", ANA, sent.message_id)
    record = emu.message(ANA, sent.message_id)
    assert record is not None
    assert (record["text"], record["reply_markup"], record["edited"]) == ("Paso 2", None, True)

    await bot.edit_message_reply_markup(ANA, sent.message_id, reply_markup=keyboard("again"))
    with pytest.raises(BadRequest, match="^Message is not modified"):
        await bot.edit_message_reply_markup(ANA, sent.message_id, reply_markup=keyboard("again"))
    with pytest.raises(BadRequest, match="^Message to edit not found$"):
        await bot.edit_message_text("x", ANA, 404)
    with pytest.raises(BadRequest, match="^Message can't be edited$"):
        await bot.edit_message_text("x", ANA, user_message["message_id"])

    assert await bot.delete_message(ANA, sent.message_id)
    assert emu.message(ANA, sent.message_id)["deleted"] is True  # type: ignore[index]
    with pytest.raises(BadRequest, match="^Message to delete not found$"):
        await bot.delete_message(ANA, sent.message_id)
    assert await bot.delete_message(ANA, user_message["message_id"])


async def test_photos_documents_locations(emu: TelegramEmulator, bot: telegram.Bot) -> None:
    emu.send_text(ANA, "hola")
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + (640).to_bytes(4, "big")
    png += (480).to_bytes(4, "big") + bytes(8)
    photo = await bot.send_photo(ANA, png, caption="c" * 1024)
    assert (photo.photo[-1].width, photo.photo[-1].height) == (640, 480)
    assert photo.caption == "c" * 1024
    with pytest.raises(BadRequest, match="^Message caption is too long$"):
        await bot.send_photo(ANA, png, caption="c" * 1025)
    with pytest.raises(BadRequest, match="^Wrong file identifier/http url specified$"):
        await bot.send_photo(ANA, "not-a-file-id")
    by_url = await bot.send_photo(ANA, "https://example.org/foto.jpg")
    assert by_url.photo

    document = await bot.send_document(ANA, b"a,b\n1,2\n", filename="socios.csv", caption="CSV")
    assert document.document is not None
    assert (document.document.file_name, document.caption) == ("socios.csv", "CSV")
    file = await bot.get_file(document.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"

    location = await bot.send_location(ANA, latitude=-34.17, longitude=-70.74)
    assert location.location is not None and location.location.longitude == -70.74
    assert await bot.send_chat_action(ANA, "upload_photo")

    records = emu.sent(ANA)
    assert [r["method"] for r in records] == [
        "sendPhoto",
        "sendPhoto",
        "sendDocument",
        "sendLocation",
    ]
    assert records[0]["text"] == records[0]["caption"] == "c" * 1024
    assert records[2]["document"]["file_name"] == "socios.csv"
    assert records[3]["location"] == {"latitude": -34.17, "longitude": -70.74}
    assert emu.chat_actions == [{"chat_id": ANA, "action": "upload_photo"}]
    assert (await bot.get_chat(ANA)).first_name == "Ana"
    assert await bot.close() and await bot.log_out()


# -------------------------------------------------------------------- waiting helpers --


async def test_wait_for_sent_wakes_up_and_explains_timeouts(
    emu: TelegramEmulator, bot: telegram.Bot
) -> None:
    emu.send_text(ANA, "hola")

    async def reply_later() -> None:
        await emu.wait_for(lambda: emu.stats["methods"].get("getMe", 0) > 0)
        await bot.send_message(ANA, "uno")
        await bot.send_message(ANA, "dos")

    replier = asyncio.create_task(reply_later())
    await bot.get_me()
    messages = await emu.wait_for_sent(ANA, count=2)
    await replier
    assert [m["text"] for m in messages] == ["uno", "dos"]
    assert [m["text"] for m in emu.sent(ANA, after_message_id=messages[0]["message_id"])] == ["dos"]

    with pytest.raises(TimeoutError, match="expected 3 bot message.*'uno'.*'dos'"):
        await emu.wait_for_sent(ANA, count=3, timeout=0.01)


# --------------------------------------------------------------------- control routes --


async def test_control_http_api(
    emu: TelegramEmulator, bot: telegram.Bot, http: httpx.AsyncClient
) -> None:
    user = await http.post("/control/users", json={"user_id": ANA, "first_name": "Ana"})
    assert user.json()["first_name"] == "Ana"
    update = (await http.post("/control/messages", json={"user_id": ANA, "text": "/start"})).json()
    assert update["message"]["entities"][0]["type"] == "bot_command"

    bulk = await http.post(
        "/control/messages/bulk",
        json={"items": [{"user_id": 6000 + i, "text": f"hola {i}"} for i in range(500)]},
    )
    assert bulk.json() == {
        "count": 500,
        "first_update_id": update["update_id"] + 1,
        "last_update_id": update["update_id"] + 500,
    }
    assert len((await http.get("/control/updates")).json()) == 501

    sent = await bot.send_message(ANA, "elige", reply_markup=keyboard("a"))
    waited = await http.get("/control/sent/wait", params={"chat_id": ANA, "count": 1, "timeout": 2})
    assert [m["text"] for m in waited.json()] == ["elige"]
    timed_out = await http.get(
        "/control/sent/wait", params={"chat_id": ANA, "count": 5, "timeout": 0.01}
    )
    assert timed_out.status_code == 408
    stats = await http.get("/control/stats/wait", params={"sent_messages": 1, "timeout": 2})
    assert stats.json()["sent_messages"] == 1 and stats.json()["methods"]["sendMessage"] == 1
    stats_timed_out = await http.get(
        "/control/stats/wait", params={"sent_messages": 2, "timeout": 0.01}
    )
    assert stats_timed_out.status_code == 408
    listed = await http.get("/control/sent", params={"chat_id": ANA, "after_message_id": 0})
    assert listed.json()[0]["reply_markup"] == keyboard("a").to_dict()
    one = await http.get("/control/message", params={"chat_id": ANA, "message_id": sent.message_id})
    assert one.json()["text"] == "elige"

    tap = await http.post(
        "/control/callbacks", json={"user_id": ANA, "message_id": sent.message_id, "data": "a"}
    )
    assert tap.json()["callback_query"]["data"] == "a"
    bad_tap = await http.post(
        "/control/callbacks", json={"user_id": ANA, "message_id": 999, "data": "a"}
    )
    assert bad_tap.status_code == 400
    place = await http.post(
        "/control/locations", json={"user_id": ANA, "latitude": -33.4, "longitude": -70.6}
    )
    assert place.json()["message"]["location"]["latitude"] == -33.4

    await http.post("/control/block", json={"user_id": ANA})
    with pytest.raises(Forbidden):
        await bot.send_message(ANA, "x")
    await http.post("/control/rate_limits", json={"global_per_s": 1, "chat_per_s": None})
    await http.post("/control/unblock", json={"user_id": ANA})
    await http.post("/control/faults", json={"method": "sendMessage", "status": 500})
    with pytest.raises(NetworkError):
        await bot.send_message(ANA, "x")
    await bot.send_message(ANA, "x")
    with pytest.raises(RetryAfter):
        await bot.send_message(ANA, "y")

    stats = (await http.get("/control/stats")).json()
    assert stats["http_429"] == 1 and stats["methods"]["sendMessage"] == 5
    assert stats["pending_updates"] > 500

    await http.post("/control/reset")
    assert (await http.get("/control/sent")).json() == []
    assert (await http.get("/control/stats")).json()["pending_updates"] == 0
