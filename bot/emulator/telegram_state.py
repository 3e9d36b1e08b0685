"""In-memory model of the Telegram Bot API behind the local emulator.

`EmulatorState` holds every user, chat, message, update and bot setting in memory and
implements the Bot API methods with Telegram's result shapes, error descriptions and limits,
so the real python-telegram-bot library can parse everything it answers. It knows nothing
about HTTP: `bot.emulator.telegram` wraps it in an ASGI app and adds webhook delivery.

Tests drive the simulated humans through the control API (`send_text`, `tap`, `block`...) and
inspect what the bot did through `sent`, `message`, `callback_answers` and `wait_for_sent`.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import inspect
import itertools
import json
import math
import mimetypes
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

JSONDict = dict[str, Any]

MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_UTF16 = 200
MAX_UPDATES_PER_CALL = 100
MAX_BOT_COMMANDS = 100
MAX_COMMAND_LENGTH = 32
MAX_COMMAND_DESCRIPTION_LENGTH = 256
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
DEFAULT_WEBHOOK_CONNECTIONS = 40

# Methods that produce or change a visible message; only these count against flood limits.
SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendLocation",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)
# Telegram leaves these update types out unless a bot lists them in allowed_updates.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
INLINE_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
PARSE_MODES = frozenset({"html", "markdown", "markdownv2"})

CONFLICT_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"

_COMMAND_IN_TEXT = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,32})?")
_COMMAND_NAME = re.compile(r"[a-z0-9_]+")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")
_INTEGER = re.compile(r"-?\d+")

# 1x1 transparent PNG, the content of photos that simulated users send.
PLACEHOLDER_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PLACEHOLDER_OGG = b"OggS\x00\x02" + bytes(22)
PLACEHOLDER_WEBP = b"RIFF\x0c\x00\x00\x00WEBPVP8 "


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram measures text limits in."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Described:
    """A successful result that Telegram accompanies with a description (setWebhook...)."""

    result: Any
    description: str


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart/form-data request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _PendingQuery:
    created: float
    user_id: int
    chat_id: int
    message_id: int
    data: str | None


class Params:
    """Typed access to Bot API parameters, coerced field by field the way Telegram does.

    Form bodies carry every value as a string and PTB JSON-encodes the non-string ones, so a
    value is decoded according to the field it belongs to rather than guessed: a text of
    "123" must stay a string while `chat_id="123"` is a number.
    """

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = dict(raw)

    def _value(self, name: str) -> Any:
        value = self.raw.get(name)
        return None if value == "" else value

    def get_str(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, UploadedFile):
            raise bad_request(f'field "{name}" must be of type String')
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def get_int(self, name: str) -> int | None:
        value = self._value(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value)
        raise bad_request(f'field "{name}" must be of type Integer')

    def get_float(self, name: str) -> float | None:
        value = self._value(name)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Number') from None

    def get_bool(self, name: str) -> bool:
        value = self._value(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, what: str | None = None) -> Any:
        value = self._value(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {what or name} JSON object") from None

    def get_chat_ref(self, name: str = "chat_id") -> int | str | None:
        value = self._value(name)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        text = str(value).strip()
        return int(text) if _INTEGER.fullmatch(text) else text

    def get_input_file(self, name: str) -> UploadedFile | str | None:
        value = self._value(name)
        if isinstance(value, str) and value.startswith("attach://"):
            attached = self.raw.get(value.removeprefix("attach://"))
            if not isinstance(attached, UploadedFile):
                raise bad_request(f"wrong HTTP URL specified for {name}")
            return attached
        if value is None or isinstance(value, UploadedFile | str):
            return value
        raise bad_request(f"wrong file identifier/HTTP URL specified for {name}")


class Notifier:
    """Wakes every coroutine waiting for a state change.

    Waiters create their future in whatever loop they run in, so one emulator can outlive the
    per-test event loops of pytest-asyncio (an asyncio.Condition binds to a single loop).
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify_all(self) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, set()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for future in waiters:
            loop = future.get_loop()
            if loop is current:
                _resolve(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, seconds: float) -> None:
        """Return on the next notification or after `seconds`, whichever comes first."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiters.add(future)
        # A timer rather than asyncio.wait_for: on 3.11 wait_for can swallow a cancellation
        # that races with the result, which would leave a cancelled waiter running.
        timer = loop.call_later(seconds, _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            self._waiters.discard(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _window_wait(stamps: deque[float], rate: float, now: float) -> float:
    """Seconds until a sliding window allowing `rate` events per second frees a slot (0: free).

    Rates of one or more per second use a 1-second window holding floor(rate) events; slower
    rates hold a single event per 1/rate seconds, so 20 per minute means one every 3 s.
    """
    capacity = max(1, math.floor(rate))
    window = capacity / rate
    while stamps and stamps[0] <= now - window:
        stamps.popleft()
    if len(stamps) < capacity:
        return 0.0
    return stamps[len(stamps) - capacity] + window - now


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        index = 2
        while index + 9 < len(data) and data[index] == 0xFF:
            marker = data[index + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[index + 5 : index + 7], "big")
                width = int.from_bytes(data[index + 7 : index + 9], "big")
                return width, height
            index += 2 + int.from_bytes(data[index + 2 : index + 4], "big")
    return None


def _photo_dimensions(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram derives from one photo: thumbnails up to 90/320/800/1280 px plus
    the original capped at 2560 px on its longest side."""
    longest = max(width, height, 1)
    bounds = [bound for bound in (90, 320, 800, 1280) if bound < longest] + [min(longest, 2560)]
    return [
        (max(1, round(width * bound / longest)), max(1, round(height * bound / longest)))
        for bound in bounds
    ]


def _callback_datas(markup: JSONDict | None) -> set[str]:
    if not markup or "inline_keyboard" not in markup:
        return set()
    return {
        button["callback_data"]
        for row in markup["inline_keyboard"]
        for button in row
        if isinstance(button, dict) and "callback_data" in button
    }


def _command_entities(text: str) -> list[JSONDict]:
    match = _COMMAND_IN_TEXT.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group())}]


def _checked_text(text: str | None) -> str:
    # Telegram trims surrounding whitespace before checking and storing a text.
    text = (text or "").strip()
    if not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT_UTF16:
        raise bad_request("message is too long")
    return text


def _checked_caption(caption: str | None) -> str | None:
    caption = (caption or "").strip()
    if utf16_len(caption) > MAX_CAPTION_UTF16:
        raise bad_request("message caption is too long")
    return caption or None


class EmulatorState:
    """Everything a Telegram bot account looks like from the Bot API, kept in memory.

    Message ids are per chat and shared by user and bot messages; update ids grow globally
    and never restart, not even on `reset()`, because a bot confirms updates by offset.
    Wall-clock `date` fields use `time.time()`; flood limits and callback-query expiry use
    the injectable monotonic `clock` so tests can move time without sleeping.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "BarrioConectaBot",
        bot_first_name: str = "Barrio Conecta",
        global_rate_per_s: float | None = None,
        chat_rate_per_s: float | None = None,
        *,
        callback_query_ttl_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.token = token
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.callback_query_ttl_s = callback_query_ttl_s
        self._clock = clock
        self.global_rate_per_s: float | None = None
        self.chat_rate_per_s: float | None = None
        self.set_rate_limits(global_rate_per_s, chat_rate_per_s)
        self._updates_changed = Notifier()
        self._activity = Notifier()
        self._closing = False
        self._batching = False
        self._next_update_id = 1
        # Requests in progress; they outlive reset(), so they are not part of it.
        self._inflight = 0
        self._poll_generation = 0
        self.polls_waiting = 0
        self._counter = itertools.count(1)
        # Bot configuration survives reset(): it belongs to the bot, not to a conversation.
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._webhook: WebhookConfig | None = None
        self._allowed_updates: list[str] | None = None
        self._methods: dict[str, Callable[[Params], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendLocation": self._send_location,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getChat": self._get_chat,
            "getFile": self._get_file,
            "close": lambda _params: True,
            "logOut": lambda _params: True,
        }
        self._method_names = {name.lower(): name for name in self._methods}
        self.reset()

    # ----------------------------------------------------------------- lifecycle & config --

    def reset(self) -> None:
        """Forget users, chats, messages, pending updates, callbacks, files, stats and faults.

        Bot configuration (commands, webhook, rate limits) and the update id counter stay.
        """
        self.users: dict[int, JSONDict] = {}
        self.chats: dict[int, JSONDict] = {}
        self._blocked: set[int] = set()
        self._last_message_id: dict[int, int] = {}
        self._bot_messages: dict[tuple[int, int], JSONDict] = {}
        self._user_messages: dict[tuple[int, int], JSONDict] = {}
        self._sent: list[JSONDict] = []
        self._sent_by_chat: dict[int, list[JSONDict]] = {}
        self._updates: deque[JSONDict] = deque()
        self._queries: dict[str, _PendingQuery] = {}
        self.callback_answers: list[JSONDict] = []
        self.chat_actions: list[JSONDict] = []
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._media: dict[str, tuple[str, Any]] = {}
        self._faults: dict[str, deque[ApiError]] = {}
        self._global_stamps: deque[float] = deque()
        self._chat_stamps: dict[int, deque[float]] = {}
        self.recent_errors: deque[JSONDict] = deque(maxlen=50)
        self.stats: JSONDict = {
            "requests": 0,
            "methods": {},
            "http_429": 0,
            "errors": 0,
            "updates": 0,
            "webhook_deliveries": 0,
            "webhook_failures": 0,
        }
        self._updates_changed.notify_all()
        self._activity.notify_all()

    def set_rate_limits(self, global_per_s: float | None, chat_per_s: float | None) -> None:
        """Flood limits for sending methods, per second across all chats and per chat."""
        for rate in (global_per_s, chat_per_s):
            if rate is not None and rate <= 0:
                raise ValueError("rate limits must be positive or None")
        self.global_rate_per_s = global_per_s
        self.chat_rate_per_s = chat_per_s

    def fail_next(
        self,
        method: str,
        status: int = 500,
        count: int = 1,
        *,
        description: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Make the next `count` calls of `method` answer an error instead of running."""
        name = self._method_names.get(method.lower())
        if name is None:
            raise ValueError(f"unknown Bot API method {method!r}")
        parameters = None
        if status == 429:
            retry_after = retry_after or 1
            parameters = {"retry_after": retry_after}
            description = description or f"Too Many Requests: retry after {retry_after}"
        elif description is None:
            try:
                description = HTTPStatus(status).phrase
            except ValueError:
                description = "Unknown Error"
        queue = self._faults.setdefault(name, deque())
        queue.extend(ApiError(status, description, parameters) for _ in range(count))

    def clear_faults(self, method: str | None = None) -> None:
        """Forget the errors `fail_next` queued and not yet answered: for `method`, or all.
        A flood wait that ends, say, after the bot was restarted."""
        if method is None:
            self._faults.clear()
            return
        name = self._method_names.get(method.lower())
        if name is None:
            raise ValueError(f"unknown Bot API method {method!r}")
        self._faults.pop(name, None)

    def _release_waiters(self) -> None:
        """End every long poll now (server shutdown), answering them as a timeout would."""
        self._closing = True
        self._updates_changed.notify_all()
        self._activity.notify_all()

    # Hooks for the HTTP layer, which owns webhook delivery.
    def _on_update_queued(self) -> None:
        pass

    def _on_webhook_changed(self) -> None:
        pass

    # ----------------------------------------------------------------------- Bot API core --

    def check_token(self, token: str) -> bool:
        return token == self.token

    async def call_api(
        self, method: str, params: Mapping[str, Any] | None = None
    ) -> tuple[int, JSONDict]:
        """Run one Bot API call; returns the HTTP status and Telegram's JSON answer."""
        self.stats["requests"] += 1
        name = self._method_names.get(method.lower())
        if name is None:
            return self._failure(method, ApiError(404, "Not Found"))
        methods_count = self.stats["methods"]
        methods_count[name] = methods_count.get(name, 0) + 1
        tracked = name != "getUpdates"
        if tracked:
            self._inflight += 1
        try:
            faults = self._faults.get(name)
            if faults:
                raise faults.popleft()
            request = Params(params or {})
            rate_chat = self._rate_chat(request) if name in SENDING_METHODS else None
            if name in SENDING_METHODS:
                self._check_rate(rate_chat)
            result = self._methods[name](request)
            if inspect.isawaitable(result):
                result = await result
            if name in SENDING_METHODS:
                self._record_rate(rate_chat)
        except ApiError as error:
            return self._failure(name, error)
        finally:
            if tracked:
                self._inflight -= 1
                self._activity.notify_all()
        if isinstance(result, Described):
            return 200, {"ok": True, "result": result.result, "description": result.description}
        return 200, {"ok": True, "result": result}

    def _failure(self, method: str, error: ApiError) -> tuple[int, JSONDict]:
        if error.status == 429:
            self.stats["http_429"] += 1
        else:
            self.stats["errors"] += 1
        self.recent_errors.append(
            {"method": method, "error_code": error.status, "description": error.description}
        )
        return error.status, error.payload()

    def _rate_chat(self, params: Params) -> int | None:
        try:
            ref = params.get_chat_ref()
        except ApiError:
            return None
        return self._resolve_chat_id(ref) if ref is not None else None

    def _check_rate(self, chat_id: int | None) -> None:
        now = self._clock()
        wait = 0.0
        if self.global_rate_per_s is not None:
            wait = _window_wait(self._global_stamps, self.global_rate_per_s, now)
        if self.chat_rate_per_s is not None and chat_id is not None:
            stamps = self._chat_stamps.setdefault(chat_id, deque())
            wait = max(wait, _window_wait(stamps, self.chat_rate_per_s, now))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )

    def _record_rate(self, chat_id: int | None) -> None:
        now = self._clock()
        if self.global_rate_per_s is not None:
            self._global_stamps.append(now)
        if self.chat_rate_per_s is not None and chat_id is not None:
            self._chat_stamps.setdefault(chat_id, deque()).append(now)

    # --------------------------------------------------------------------- shared helpers --

    def _resolve_chat_id(self, ref: int | str) -> int | None:
        if isinstance(ref, int):
            return ref
        if ref.startswith("@"):
            wanted = ref[1:].lower()
            for chat in self.chats.values():
                if str(chat.get("username", "")).lower() == wanted:
                    return int(chat["id"])
        return None

    def _target_chat(self, params: Params, *, sending: bool) -> JSONDict:
        ref = params.get_chat_ref()
        if ref is None:
            raise bad_request("chat_id is empty")
        chat_id = self._resolve_chat_id(ref)
        chat = self.chats.get(chat_id) if chat_id is not None else None
        if chat is None:
            raise bad_request("chat not found")
        if sending and chat["type"] == "private" and chat["id"] in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _check_parse_mode(self, params: Params) -> str | None:
        mode = params.get_str("parse_mode")
        if mode and mode.lower() not in PARSE_MODES:
            raise bad_request(f"unsupported parse_mode {mode!r}")
        return mode or None

    def _reply_markup(self, params: Params, *, inline_only: bool = False) -> JSONDict | None:
        markup = params.get_json("reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            self._check_inline_keyboard(markup["inline_keyboard"])
        elif inline_only:
            raise bad_request("inline keyboard expected")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    if not (
                        isinstance(button, str) or (isinstance(button, dict) and "text" in button)
                    ):
                        raise bad_request(
                            'can\'t parse keyboard button: Field "text" must be of type String'
                        )
        elif not ("remove_keyboard" in markup or "force_reply" in markup):
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup

    @staticmethod
    def _check_inline_keyboard(rows: Any) -> None:
        unparsable = "can't parse inline keyboard button"
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(f"{unparsable}: InlineKeyboardMarkup must be an Array of Arrays")
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request(f"{unparsable}: InlineKeyboardButton must be an Object")
                if not isinstance(button.get("text"), str):
                    raise bad_request(f'{unparsable}: Field "text" must be of type String')
                if "callback_data" in button:
                    data = button["callback_data"]
                    size = len(data.encode("utf-8")) if isinstance(data, str) else 0
                    if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                        raise bad_request("BUTTON_DATA_INVALID")
                if "url" in button and not re.match(
                    r"(https?|tg)://\S+$", str(button["url"]), re.IGNORECASE
                ):
                    raise bad_request("BUTTON_URL_INVALID")
                if not INLINE_BUTTON_ACTIONS.intersection(button):
                    raise bad_request(
                        f"{unparsable}: Text buttons are unallowed in the inline keyboard"
                    )

    def _reply_target(self, params: Params, chat_id: int) -> int | None:
        reply = params.get_json("reply_parameters", "reply parameters")
        allow_missing = params.get_bool("allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
            if reply.get("chat_id") not in (None, chat_id):
                raise bad_request("replies to messages in other chats are not supported")
        else:
            message_id = params.get_int("reply_to_message_id")
        if not message_id:
            return None
        if self._message_json(chat_id, int(message_id), with_reply=False) is not None:
            return int(message_id)
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _store_bot_message(self, chat_id: int, method: str, **fields: Any) -> JSONDict:
        record: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "chat_id": chat_id,
            "method": method,
            "text": None,
            "caption": None,
            "parse_mode": None,
            "reply_markup": None,
            "reply_to_message_id": None,
            "photo": None,
            "document": None,
            "location": None,
            "disable_notification": False,
            "link_preview_options": None,
            "date": int(time.time()),
            "edit_date": None,
            "edited": False,
            "deleted": False,
        }
        record.update(fields)
        self._bot_messages[(chat_id, record["message_id"])] = record
        self._sent.append(record)
        self._sent_by_chat.setdefault(chat_id, []).append(record)
        self._activity.notify_all()
        return record

    def _bot_message_json(self, record: JSONDict, *, with_reply: bool = True) -> JSONDict:
        message: JSONDict = {
            "message_id": record["message_id"],
            "from": self.bot_user,
            "chat": self.chats[record["chat_id"]],
            "date": record["date"],
        }
        if record["edit_date"] is not None:
            message["edit_date"] = record["edit_date"]
        method = record["method"]
        if method == "sendMessage":
            message["text"] = record["text"]
            if record["link_preview_options"]:
                message["link_preview_options"] = record["link_preview_options"]
        elif method == "sendPhoto":
            message["photo"] = record["photo"]
        elif method == "sendDocument":
            message["document"] = record["document"]
        elif method == "sendLocation":
            message["location"] = record["location"]
        if record["caption"] is not None:
            message["caption"] = record["caption"]
        markup = record["reply_markup"]
        # Only inline keyboards belong to a message; reply keyboards belong to the chat.
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if with_reply and record["reply_to_message_id"] is not None:
            replied = self._message_json(
                record["chat_id"], record["reply_to_message_id"], with_reply=False
            )
            if replied is not None:
                message["reply_to_message"] = replied
        return message

    def _message_json(
        self, chat_id: int, message_id: int, *, with_reply: bool = True
    ) -> JSONDict | None:
        record = self._bot_messages.get((chat_id, message_id))
        if record is not None and not record["deleted"]:
            return self._bot_message_json(record, with_reply=with_reply)
        user_message = self._user_messages.get((chat_id, message_id))
        if user_message is None:
            return None
        if with_reply:
            return user_message
        return {key: value for key, value in user_message.items() if key != "reply_to_message"}

    def _new_file(self, kind: str, data: bytes, extension: str) -> StoredFile:
        number = next(self._counter)
        bot_id = int(self.bot_user["id"])
        stored = StoredFile(
            file_id=f"AgAC{kind[:2].upper()}{bot_id:x}AAQ{number:010d}",
            file_unique_id=f"AQAD{number:08d}",
            file_path=f"{kind}s/file_{number}.{extension}",
            data=data,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _new_photo(
        self, data: bytes, default_size: tuple[int, int] = (1280, 960)
    ) -> list[JSONDict]:
        width, height = _image_size(data) or default_size
        sizes: list[JSONDict] = []
        for size_width, size_height in _photo_dimensions(width, height):
            stored = self._new_file("photo", data, "jpg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": size_width,
                    "height": size_height,
                    "file_size": len(data),
                }
            )
        for size in sizes:
            self._media[size["file_id"]] = ("photo", sizes)
        return sizes

    def _new_document(self, data: bytes, file_name: str, mime_type: str | None) -> JSONDict:
        extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self._new_file("document", data, extension)
        document: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type
            or mimetypes.guess_type(file_name)[0]
            or "application/octet-stream",
            "file_size": len(data),
        }
        self._media[stored.file_id] = ("document", document)
        return document

    def file_content(self, file_path: str) -> bytes | None:
        """Bytes behind a `file_path` from getFile, for the /file/bot<token>/ route."""
        stored = self._files_by_path.get(file_path)
        return stored.data if stored else None

    # -------------------------------------------------------------------- Bot API methods --

    def _get_me(self, _params: Params) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: Params) -> list[JSONDict]:
        if self._webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK_ACTIVE)
        offset = params.get_int("offset")
        limit = params.get_int("limit") or MAX_UPDATES_PER_CALL
        limit = min(max(limit, 1), MAX_UPDATES_PER_CALL)
        timeout = max(params.get_float("timeout") or 0.0, 0.0)
        allowed = params.get_json("allowed_updates", "allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed] or None
        if offset is not None:
            self._confirm(offset)
        # A newer poll ends the one still waiting, exactly like two bot instances on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_changed.notify_all()
        if not self._updates and timeout > 0:
            self.polls_waiting += 1
            self._activity.notify_all()
            try:
                await self._wait_until(
                    self._updates_changed,
                    lambda: (
                        bool(self._updates)
                        or self._poll_generation != generation
                        or self._webhook is not None
                    ),
                    timeout,
                )
            finally:
                self.polls_waiting -= 1
            if self._poll_generation != generation:
                raise ApiError(409, CONFLICT_OTHER_POLL)
        if self._webhook is not None:
            return []
        return list(itertools.islice(self._updates, limit))

    def _confirm(self, offset: int) -> None:
        updates = self._updates
        if offset < 0:
            while len(updates) > -offset:
                updates.popleft()
        else:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
        self._activity.notify_all()

    def _set_webhook(self, params: Params) -> Described:
        url = (params.get_str("url") or "").strip()
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
        if not url:
            return self._drop_webhook()
        # Telegram insists on HTTPS; the emulator accepts plain HTTP for local receivers.
        if not re.match(r"https?://[^/\s]+", url, re.IGNORECASE):
            raise bad_request("invalid webhook URL specified")
        secret = params.get_str("secret_token") or None
        if secret is not None:
            if len(secret) > 256:
                raise bad_request("secret token is too long")
            if not _SECRET_TOKEN.fullmatch(secret):
                raise bad_request("secret token contains unallowed characters")
        connections = params.get_int("max_connections") or DEFAULT_WEBHOOK_CONNECTIONS
        connections = min(max(connections, 1), 100)
        allowed = params.get_json("allowed_updates", "allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed] or None
        current = self._webhook
        if current and (current.url, current.secret_token, current.max_connections) == (
            url,
            secret,
            connections,
        ):
            return Described(True, "Webhook is already set")
        self._webhook = WebhookConfig(url=url, secret_token=secret, max_connections=connections)
        self._on_webhook_changed()
        self._updates_changed.notify_all()
        return Described(True, "Webhook was set")

    def _delete_webhook(self, params: Params) -> Described:
        if params.get_bool("drop_pending_updates"):
            self._updates.clear()
            self._activity.notify_all()
        return self._drop_webhook()

    def _drop_webhook(self) -> Described:
        if self._webhook is None:
            return Described(True, "Webhook is already deleted")
        self._webhook = None
        self._on_webhook_changed()
        self._updates_changed.notify_all()
        return Described(True, "Webhook was deleted")

    def _get_webhook_info(self, _params: Params) -> JSONDict:
        hook = self._webhook
        if hook is None:
            return {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
        info: JSONDict = {
            "url": hook.url,
            "has_custom_certificate": False,
            "pending_update_count": self.pending_update_count,
            "max_connections": hook.max_connections,
            "ip_address": "127.0.0.1",
        }
        if self._allowed_updates:
            info["allowed_updates"] = list(self._allowed_updates)
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        return info

    @property
    def pending_update_count(self) -> int:
        return len(self._updates)

    def _send_message(self, params: Params) -> JSONDict:
        chat = self._target_chat(params, sending=True)
        text = _checked_text(params.get_str("text"))
        parse_mode = self._check_parse_mode(params)
        markup = self._reply_markup(params)
        reply_to = self._reply_target(params, chat["id"])
        record = self._store_bot_message(
            chat["id"],
            "sendMessage",
            text=text,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            disable_notification=params.get_bool("disable_notification"),
            link_preview_options=params.get_json("link_preview_options", "link preview options"),
        )
        return self._bot_message_json(record)

    def _send_photo(self, params: Params) -> JSONDict:
        chat = self._target_chat(params, sending=True)
        caption = _checked_caption(params.get_str("caption"))
        parse_mode = self._check_parse_mode(params)
        markup = self._reply_markup(params)
        reply_to = self._reply_target(params, chat["id"])
        photo = params.get_input_file("photo")
        if photo is None:
            raise bad_request("there is no photo in the request")
        if isinstance(photo, UploadedFile):
            sizes = self._new_photo(photo.data)
        elif re.match(r"https?://", photo, re.IGNORECASE):
            # Offline: the picture behind the URL is never fetched.
            sizes = self._new_photo(b"")
        else:
            known = self._media.get(photo)
            if known is None or known[0] != "photo":
                raise bad_request("wrong file identifier/HTTP URL specified")
            sizes = known[1]
        record = self._store_bot_message(
            chat["id"],
            "sendPhoto",
            text=caption,
            caption=caption,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            photo=sizes,
            disable_notification=params.get_bool("disable_notification"),
        )
        return self._bot_message_json(record)

    def _send_document(self, params: Params) -> JSONDict:
        chat = self._target_chat(params, sending=True)
        caption = _checked_caption(params.get_str("caption"))
        parse_mode = self._check_parse_mode(params)
        markup = self._reply_markup(params)
        reply_to = self._reply_target(params, chat["id"])
        upload = params.get_input_file("document")
        if upload is None:
            raise bad_request("there is no document in the request")
        if isinstance(upload, UploadedFile):
            if len(upload.data) > MAX_DOCUMENT_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            content_type = upload.content_type
            if content_type == "application/octet-stream":
                content_type = mimetypes.guess_type(upload.filename)[0] or content_type
            document = self._new_document(upload.data, upload.filename or "file", content_type)
        elif re.match(r"https?://", upload, re.IGNORECASE):
            name = upload.rstrip("/").rsplit("/", 1)[-1] or "file"
            document = self._new_document(b"", name, None)
        else:
            known = self._media.get(upload)
            if known is None or known[0] != "document":
                raise bad_request("wrong file identifier/HTTP URL specified")
            document = known[1]
        record = self._store_bot_message(
            chat["id"],
            "sendDocument",
            text=caption,
            caption=caption,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to_message_id=reply_to,
            document=document,
            disable_notification=params.get_bool("disable_notification"),
        )
        return self._bot_message_json(record)

    def _send_location(self, params: Params) -> JSONDict:
        chat = self._target_chat(params, sending=True)
        latitude = params.get_float("latitude")
        longitude = params.get_float("longitude")
        if latitude is None or not -90 <= latitude <= 90:
            raise bad_request("wrong latitude specified")
        if longitude is None or not -180 <= longitude <= 180:
            raise bad_request("wrong longitude specified")
        location: JSONDict = {"latitude": latitude, "longitude": longitude}
        for optional in ("horizontal_accuracy", "live_period", "heading"):
            value = params.get_float(optional)
            if value is not None:
                location[optional] = int(value) if optional != "horizontal_accuracy" else value
        record = self._store_bot_message(
            chat["id"],
            "sendLocation",
            location=location,
            reply_markup=self._reply_markup(params),
            reply_to_message_id=self._reply_target(params, chat["id"]),
            disable_notification=params.get_bool("disable_notification"),
        )
        return self._bot_message_json(record)

    def _send_chat_action(self, params: Params) -> bool:
        chat = self._target_chat(params, sending=True)
        action = params.get_str("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions.append({"chat_id": chat["id"], "action": action})
        return True

    def _editable(self, params: Params) -> JSONDict:
        if params.get_str("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._target_chat(params, sending=False)
        message_id = params.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        record = self._bot_messages.get((chat["id"], message_id))
        if record is None or record["deleted"]:
            if (chat["id"], message_id) in self._user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return record

    def _apply_edit(self, record: JSONDict, **changes: Any) -> JSONDict:
        record.update(changes, edited=True, edit_date=int(time.time()))
        self._activity.notify_all()
        return self._bot_message_json(record)

    @staticmethod
    def _inline_markup(record: JSONDict) -> JSONDict | None:
        markup = record["reply_markup"]
        return markup if markup and "inline_keyboard" in markup else None

    def _edit_message_text(self, params: Params) -> JSONDict:
        record = self._editable(params)
        text = _checked_text(params.get_str("text"))
        parse_mode = self._check_parse_mode(params)
        markup = self._reply_markup(params, inline_only=True)
        if record["method"] != "sendMessage":
            raise bad_request("there is no text in the message to edit")
        # Leaving reply_markup out removes the inline keyboard, as on Telegram.
        if text == record["text"] and markup == self._inline_markup(record):
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(
            record,
            text=text,
            parse_mode=parse_mode,
            reply_markup=markup,
            link_preview_options=params.get_json("link_preview_options", "link preview options"),
        )

    def _edit_message_caption(self, params: Params) -> JSONDict:
        record = self._editable(params)
        caption = _checked_caption(params.get_str("caption"))
        parse_mode = self._check_parse_mode(params)
        markup = self._reply_markup(params, inline_only=True)
        if record["method"] not in ("sendPhoto", "sendDocument"):
            raise bad_request("there is no caption in the message to edit")
        if caption == record["caption"] and markup == self._inline_markup(record):
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(
            record, text=caption, caption=caption, parse_mode=parse_mode, reply_markup=markup
        )

    def _edit_message_reply_markup(self, params: Params) -> JSONDict:
        record = self._editable(params)
        markup = self._reply_markup(params, inline_only=True)
        if markup == self._inline_markup(record):
            raise bad_request(NOT_MODIFIED)
        return self._apply_edit(record, reply_markup=markup)

    def _delete_message(self, params: Params) -> bool:
        chat = self._target_chat(params, sending=False)
        message_id = params.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        key = (chat["id"], message_id)
        record = self._bot_messages.get(key)
        if record is not None and not record["deleted"]:
            record["deleted"] = True
        elif self._user_messages.pop(key, None) is None:
            raise bad_request("message to delete not found")
        self._activity.notify_all()
        return True

    def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.get_str("callback_query_id") or ""
        query = self._queries.get(query_id)
        if query is None or self._clock() - query.created > self.callback_query_ttl_s:
            self._queries.pop(query_id, None)
            raise bad_request(QUERY_TOO_OLD)
        text = params.get_str("text") or ""
        if utf16_len(text) > MAX_CALLBACK_ANSWER_UTF16:
            raise bad_request("MESSAGE_TOO_LONG")
        # An answered query is forgotten, so a second answer fails like an unknown id.
        del self._queries[query_id]
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "user_id": query.user_id,
                "chat_id": query.chat_id,
                "message_id": query.message_id,
                "data": query.data,
                "text": text or None,
                "show_alert": params.get_bool("show_alert"),
                "url": params.get_str("url"),
                "cache_time": params.get_int("cache_time") or 0,
            }
        )
        self._activity.notify_all()
        return True

    def _command_scope_key(self, params: Params) -> tuple[str, str]:
        scope = params.get_json("scope", "bot command scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in (
            "default",
            "all_private_chats",
            "all_group_chats",
            "all_chat_administrators",
            "chat",
            "chat_administrators",
            "chat_member",
        ):
            raise bad_request("unsupported bot command scope type")
        language = params.get_str("language_code") or ""
        if language and not _LANGUAGE_CODE.fullmatch(language):
            raise bad_request("invalid language code specified")
        return json.dumps(scope, sort_keys=True), language

    def _set_my_commands(self, params: Params) -> bool:
        # Without a "commands" field Telegram stores an empty list and still answers true.
        commands = params.get_json("commands", "commands") or []
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > MAX_BOT_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand: BotCommand must be an Object")
            # Same order of checks as Telegram: trim, drop a leading "/", then validate.
            command = str(item.get("command", "")).strip().removeprefix("/")
            description = str(item.get("description", "")).strip()
            if not command:
                raise bad_request("command must be non-empty")
            if len(command) > MAX_COMMAND_LENGTH:
                raise bad_request(f"command length must not exceed {MAX_COMMAND_LENGTH}")
            if not description:
                raise bad_request("command description must be non-empty")
            if len(description) > MAX_COMMAND_DESCRIPTION_LENGTH:
                raise bad_request(
                    f"command description length must not exceed {MAX_COMMAND_DESCRIPTION_LENGTH}"
                )
            if not _COMMAND_NAME.fullmatch(command):
                raise bad_request("BOT_COMMAND_INVALID")
            cleaned.append({"command": command, "description": description})
        self._commands[self._command_scope_key(params)] = cleaned
        return True

    def _get_my_commands(self, params: Params) -> list[JSONDict]:
        return [
            dict(command) for command in self._commands.get(self._command_scope_key(params), [])
        ]

    def _delete_my_commands(self, params: Params) -> bool:
        self._commands.pop(self._command_scope_key(params), None)
        return True

    def _get_chat(self, params: Params) -> JSONDict:
        chat = self._target_chat(params, sending=False)
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    def _get_file(self, params: Params) -> JSONDict:
        stored = self._files.get(params.get_str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # -------------------------------------------------------------- control: the humans --

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JSONDict:
        """Register a simulated user (first name "Ana", language "es" unless given) or update
        the given fields of an existing one; returns the Telegram User dict."""
        user = self.users.get(user_id)
        if user is None:
            if user_id <= 0:
                raise ValueError("user ids are positive")
            user = {"id": user_id, "is_bot": False, "first_name": first_name or "Ana"}
            user["language_code"] = language_code or "es"
            self.users[user_id] = user
        elif first_name is not None:
            user["first_name"] = first_name
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        chat = self.chats.get(user_id)
        if chat is not None:
            chat.update(
                {key: user[key] for key in ("first_name", "last_name", "username") if key in user}
            )
        return user

    def _chat_for(
        self,
        user: JSONDict,
        chat_id: int | None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> JSONDict:
        if chat_type == "private":
            if chat_id not in (None, user["id"]):
                raise ValueError("a private chat's id is the user's id")
            chat = self.chats.get(user["id"])
            if chat is None:
                chat = {"id": user["id"], "type": "private"}
                chat.update(
                    {
                        key: user[key]
                        for key in ("first_name", "last_name", "username")
                        if key in user
                    }
                )
                self.chats[user["id"]] = chat
            elif user["id"] in self._blocked:
                # A person can only write after pressing "Restart", which unblocks the bot.
                self.unblock(user["id"])
            return chat
        if chat_type not in ("group", "supergroup"):
            raise ValueError(f"unsupported chat type {chat_type!r}")
        if chat_id is None or chat_id >= 0:
            raise ValueError("group chats need a negative chat_id")
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type, "title": chat_title or f"Grupo {-chat_id}"}
            self.chats[chat_id] = chat
        elif chat_title is not None:
            chat["title"] = chat_title
        return chat

    def _incoming(
        self,
        user_id: int,
        content: JSONDict,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> JSONDict:
        user = self.users.get(user_id) or self.user(user_id)
        chat = self._chat_for(user, chat_id, chat_type, chat_title)
        message: JSONDict = {
            "message_id": self._new_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        self._user_messages[(chat["id"], message["message_id"])] = message
        return self._push_update("message", message)

    def _push_update(self, kind: str, payload: JSONDict) -> JSONDict:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self.stats["updates"] += 1
        allowed = self._allowed_updates
        if (kind in allowed) if allowed else (kind not in OPT_IN_UPDATES):
            self._updates.append(update)
            if not self._batching:
                self._updates_changed.notify_all()
                self._on_update_queued()
        return update

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> JSONDict:
        """The user writes `text`; returns the `message` update (with a bot_command entity when
        the text starts with a command, `/cmd@BotName args` included)."""
        if not text.strip() or utf16_len(text) > MAX_TEXT_UTF16:
            raise ValueError("a Telegram client sends texts of 1..4096 UTF-16 units")
        content: JSONDict = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        return self._incoming(user_id, content, chat_id, chat_type, chat_title)

    def send_many(self, items: Iterable[Mapping[str, Any]]) -> list[JSONDict]:
        """Bulk `send_text` for benchmarks: items are {user_id, text, chat_id?, chat_type?,
        chat_title?}; waiters are woken once at the end."""
        updates = []
        self._batching = True
        try:
            for item in items:
                updates.append(
                    self.send_text(
                        int(item["user_id"]),
                        str(item["text"]),
                        chat_id=item.get("chat_id"),
                        chat_type=item.get("chat_type", "private"),
                        chat_title=item.get("chat_title"),
                    )
                )
        finally:
            self._batching = False
            if updates:
                self._updates_changed.notify_all()
                self._on_update_queued()
        return updates

    def tap(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        forge: bool = False,
    ) -> JSONDict:
        """The user presses the inline button carrying `data` on bot message `message_id`;
        returns the `callback_query` update. `forge=True` sends data the message never
        offered, as a tampering client could."""
        user = self.users.get(user_id) or self.user(user_id)
        chat_id = user_id if chat_id is None else chat_id
        record = self._bot_messages.get((chat_id, message_id))
        if record is None or record["deleted"]:
            raise ValueError(f"there is no bot message {message_id} in chat {chat_id} to tap")
        if not forge and data not in _callback_datas(record["reply_markup"]):
            offered = sorted(_callback_datas(record["reply_markup"]))
            raise ValueError(
                f"message {message_id} has no button with data {data!r}; it offers {offered}"
            )
        query_id = str(4_600_000_000_000_000_000 + next(self._counter))
        self._queries[query_id] = _PendingQuery(self._clock(), user_id, chat_id, message_id, data)
        chat_instance = str((chat_id * 2_654_435_761 + int(self.bot_user["id"])) % 10**19)
        payload = {
            "id": query_id,
            "from": user,
            "message": self._bot_message_json(record),
            "chat_instance": chat_instance,
            "data": data,
        }
        return self._push_update("callback_query", payload)

    def send_location(
        self, user_id: int, latitude: float, longitude: float, *, chat_id: int | None = None
    ) -> JSONDict:
        location = {"latitude": float(latitude), "longitude": float(longitude)}
        return self._incoming(user_id, {"location": location}, chat_id)

    def send_photo(
        self, user_id: int, caption: str | None = None, *, chat_id: int | None = None
    ) -> JSONDict:
        content: JSONDict = {"photo": self._new_photo(PLACEHOLDER_PNG)}
        if caption:
            content["caption"] = caption
        return self._incoming(user_id, content, chat_id)

    def send_sticker(
        self, user_id: int, emoji: str = "👍", *, chat_id: int | None = None
    ) -> JSONDict:
        stored = self._new_file("sticker", PLACEHOLDER_WEBP, "webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "BarrioEmulatorStickers",
            "file_size": len(stored.data),
        }
        return self._incoming(user_id, {"sticker": sticker}, chat_id)

    def send_voice(
        self, user_id: int, duration: int = 3, *, chat_id: int | None = None
    ) -> JSONDict:
        stored = self._new_file("voice", PLACEHOLDER_OGG, "oga")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(stored.data),
        }
        return self._incoming(user_id, {"voice": voice}, chat_id)

    def send_contact(
        self,
        user_id: int,
        phone_number: str,
        *,
        first_name: str | None = None,
        chat_id: int | None = None,
    ) -> JSONDict:
        """The user shares a contact; by default their own (what "share my phone" sends)."""
        user = self.users.get(user_id) or self.user(user_id)
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": first_name or user["first_name"],
        }
        if first_name is None:
            contact["user_id"] = user_id
            if "last_name" in user:
                contact["last_name"] = user["last_name"]
        return self._incoming(user_id, {"contact": contact}, chat_id)

    def edit_text(
        self, user_id: int, message_id: int, new_text: str, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user edits a text message they sent earlier; returns the `edited_message` update."""
        chat_id = user_id if chat_id is None else chat_id
        original = self._user_messages.get((chat_id, message_id))
        if original is None or original["from"]["id"] != user_id or "text" not in original:
            raise ValueError(f"user {user_id} has no text message {message_id} in chat {chat_id}")
        if not new_text.strip() or utf16_len(new_text) > MAX_TEXT_UTF16:
            raise ValueError("a Telegram client sends texts of 1..4096 UTF-16 units")
        edited = {key: value for key, value in original.items() if key != "entities"}
        edited.update(text=new_text, edit_date=int(time.time()))
        entities = _command_entities(new_text)
        if entities:
            edited["entities"] = entities
        self._user_messages[(chat_id, message_id)] = edited
        return self._push_update("edited_message", edited)

    def start_chats(self, user_ids: Iterable[int]) -> None:
        """These users opened a private chat with the bot earlier (pressed Start), so the bot
        may write to them; no update is produced. For seeding large audiences in tests."""
        for user_id in user_ids:
            self._chat_for(self.user(user_id), None)

    def block(self, user_id: int, *, notify: bool = True) -> None:
        """The user blocks the bot: sends to them fail with 403 and, like Telegram, the bot
        gets a `my_chat_member` update (member -> kicked) unless `notify=False`."""
        if user_id in self._blocked:
            return
        self._blocked.add(user_id)
        if notify and user_id in self.chats:
            self._member_update(user_id, "member", "kicked")

    def unblock(self, user_id: int, *, notify: bool = True) -> None:
        if user_id not in self._blocked:
            return
        self._blocked.discard(user_id)
        if notify and user_id in self.chats:
            self._member_update(user_id, "kicked", "member")

    def is_blocked(self, user_id: int) -> bool:
        return user_id in self._blocked

    def _member_update(self, user_id: int, old: str, new: str) -> None:
        def member(status: str) -> JSONDict:
            state: JSONDict = {"status": status, "user": self.bot_user}
            if status == "kicked":
                state["until_date"] = 0
            return state

        payload = {
            "chat": self.chats[user_id],
            "from": self.users[user_id],
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        self._push_update("my_chat_member", payload)

    # ---------------------------------------------------------- control: what the bot did --

    def sent(
        self, chat_id: int | None = None, *, after_message_id: int | None = None
    ) -> list[JSONDict]:
        """The bot's messages in sending order (current state after edits), optionally only
        one chat's and only those with a message id above `after_message_id`."""
        records = self._sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
        if after_message_id is not None:
            if chat_id is None:
                records = [record for record in records if record["message_id"] > after_message_id]
            else:
                start = bisect.bisect_right(
                    records, after_message_id, key=lambda record: record["message_id"]
                )
                records = records[start:]
        return [dict(record) for record in records]

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """Current state of one bot message (None if the bot never sent it)."""
        record = self._bot_messages.get((chat_id, message_id))
        return dict(record) if record is not None else None

    @property
    def commands(self) -> list[JSONDict]:
        """The command list of the default scope and language, as the last setMyCommands left it."""
        return self.commands_for()

    def commands_for(
        self, scope: JSONDict | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return [dict(command) for command in self._commands.get((key, language_code), [])]

    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by getUpdates (or delivered by the webhook)."""
        return list(self._updates)

    def snapshot_stats(self) -> JSONDict:
        return {
            **self.stats,
            "methods": dict(self.stats["methods"]),
            "pending_updates": self.pending_update_count,
            "polls_waiting": self.polls_waiting,
            "sent_messages": len(self._sent),
            "known_chats": len(self.chats),
        }

    async def _wait_until(
        self, notifier: Notifier, predicate: Callable[[], bool], seconds: float
    ) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return False
            await notifier.wait(remaining)
        return True

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline is the point of these calls
        what: str = "condition",
    ) -> None:
        """Wait until `predicate()` holds; re-checked whenever the bot does something."""
        if not await self._wait_until(self._activity, predicate, timeout):
            raise TimeoutError(f"{what} not reached within {timeout}s. {self._describe()}")

    async def wait_for_sent(
        self,
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[JSONDict]:
        """Wait until the bot has sent at least `count` messages (all time) to `chat_id`, or
        to any chat when it is None, and return them."""

        def sent_count() -> int:
            return len(self._sent if chat_id is None else self._sent_by_chat.get(chat_id, []))

        if not await self._wait_until(self._activity, lambda: sent_count() >= count, timeout):
            where = "in total" if chat_id is None else f"to chat {chat_id}"
            raise TimeoutError(
                f"expected {count} bot message(s) {where} within {timeout}s, "
                f"got {sent_count()}. {self._describe(chat_id)}"
            )
        return self.sent(chat_id)

    async def wait_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every update was confirmed (or delivered) and no Bot API call other than
        a long poll is running. Best effort: a handler busy between two calls looks idle."""
        await self.wait_for(
            lambda: not self._updates and self._inflight == 0 and self._busy_webhook() == 0,
            timeout,
            "idle emulator",
        )

    def _busy_webhook(self) -> int:
        return 0

    def _describe(self, chat_id: int | None = None) -> str:
        records = self._sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
        lines = [
            f"#{record['message_id']}@{record['chat_id']} {record['method']}: {record['text']!r}"
            for record in records[-10:]
        ]
        sent = "; ".join(lines) or "nothing"
        errors = "; ".join(
            f"{error['method']} {error['error_code']} {error['description']}"
            for error in list(self.recent_errors)[-5:]
        )
        pending = len(self._updates)
        return f"Sent: {sent}. Recent API errors: {errors or 'none'}. Pending updates: {pending}."
