"""The Telegram transport: PTB updates in, `Inbound` to the dialogue, replies rendered back out.

Thin on purpose. It knows how Telegram spells commands, buttons and media; the dialogue core
decides what to say. It also guards the way in (a per-sender limit, before the dialogue and
the database) and logs ids only: never what people wrote, their names or their Telegram ids.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, TypeHandler

from bot import files
from bot.inbound import mark_processed, retry_after_seconds
from handlers import texts
from handlers.core import Inbound, InboundKind, Option, Reply
from handlers.dialogue import MENU_COMMANDS, Dialogue
from scheduler.outbox import (
    Pacer,
    RetryLater,
    SendAmbiguous,
    SendFailed,
    Unreachable,
    traceback_without_values,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"
REPLY_ATTEMPTS = 3
PTB_SLOTS = 1024
HANDLED_MEMORY = 10_000
SHORT_LABEL = 18
# What one sender may ask of the bot (texts, taps, edits), as a share of the overall sending
# rate (TELEGRAM_RATE_PER_S) that everyone's replies and notices share: sustained 1/90 of it
# (Telegram's 30/s: 20 a minute) and bursts of a third of a second's worth (10). A person
# registering taps and types a handful in a few seconds; a flood from a few accounts cannot
# take everyone's turns and reply slots.
INTAKE_SHARE = 1 / 90
INTAKE_BURST_S = 1 / 3
# The first message over the limit gets one answer (texts.TOO_MANY_MESSAGES); after that,
# silence this long, however many more come.
INTAKE_QUIET_S = 60.0
INTAKE_MEMORY = 10_000
TELEGRAM_LIMIT_PER_S = 30.0  # the overall rate, when there is no pacer to ask
# Telegram's error descriptions may quote what was sent ('Unsupported start tag "b"').
QUOTED = re.compile(r"\"[^\"]*\"|«[^»]*»|(?<!\w)'[^']*'(?!\w)")
MEDIA_ATTRIBUTES = (
    "photo",
    "sticker",
    "voice",
    "video",
    "video_note",
    "audio",
    "document",
    "animation",
    "contact",
    "poll",
    "dice",
    "venue",
)


def inbound_from_update(update: Update, bot_username: str) -> Inbound | None:
    """What the person did, or None when the bot should stay quiet (not addressed to it)."""
    if (query := update.callback_query) is not None:
        private = query.message is None or query.message.chat.type == ChatType.PRIVATE
        return Inbound(
            CHANNEL,
            str(query.from_user.id),
            InboundKind.BUTTON,
            payload=query.data or "",
            private=private,
        )
    if update.edited_message is not None:
        edited = update.edited_message
        # A live location is "edited" every few seconds for hours: not a person editing.
        if edited.chat.type != ChatType.PRIVATE or edited.from_user is None or edited.location:
            return None
        return Inbound(CHANNEL, str(edited.from_user.id), InboundKind.EDITED)
    message = update.message
    if message is None or message.from_user is None:
        return None
    sender = str(message.from_user.id)
    private = message.chat.type == ChatType.PRIVATE
    command = _command(message, bot_username)
    if command is not None:
        name, args = command
        return Inbound(
            CHANNEL,
            sender,
            InboundKind.COMMAND,
            text=message.text or "",
            command=name,
            args=args,
            private=private,
        )
    if not private:
        return None
    if message.location is not None:
        location = (message.location.latitude, message.location.longitude)
        return Inbound(CHANNEL, sender, InboundKind.LOCATION, location=location)
    if message.text is not None:
        return Inbound(CHANNEL, sender, InboundKind.TEXT, text=message.text)
    media = next((name for name in MEDIA_ATTRIBUTES if getattr(message, name)), "other")
    media_id = message.photo[-1].file_id if message.photo else None
    return Inbound(
        CHANNEL,
        sender,
        InboundKind.MEDIA,
        text=message.caption or "",
        media=media,
        media_id=media_id,
    )


def _command(message: Message, bot_username: str) -> tuple[str, str] | None:
    """`/cmd@ThisBot args` → ("cmd", "args"); None for plain text or another bot's command."""
    text = message.text or ""
    entity = next(iter(message.entities), None)
    if entity is None or entity.type != MessageEntity.BOT_COMMAND or entity.offset != 0:
        return None
    word = text[1 : entity.length]
    name, _, target = word.partition("@")
    if target and target.casefold() != bot_username.casefold():
        return None
    return name.casefold(), text[entity.length :].strip()


def keyboard(options: Sequence[Option]) -> InlineKeyboardMarkup | None:
    if not options:
        return None
    buttons = [InlineKeyboardButton(o.label, callback_data=o.payload) for o in options]
    per_row = 2 if all(len(o.label) <= SHORT_LABEL for o in options) else 1
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    return InlineKeyboardMarkup(rows)


def utf16_length(text: str) -> int:
    """Telegram counts text limits in UTF-16 code units: an emoji counts two."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut at line breaks where possible."""
    pieces: list[str] = []
    while utf16_length(text) > limit:
        fits = _longest_prefix(text, limit)
        cut = text.rfind("\n", 0, fits)
        cut = cut if cut > 0 else fits
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return pieces


def _longest_prefix(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


async def send(
    bot: Bot, chat_id: int | str, text: str, options: Sequence[Option], *, silent: bool = False
) -> Message:
    """Send a text, split to Telegram's length limit; the buttons ride on the last piece.
    `silent`: the person's phone shows it without a sound.

    If a piece after the first fails, the error is raised as `PartlySent`: resending the whole
    text would repeat the pieces already delivered.
    """
    pieces = split_text(text)
    for number, piece in enumerate(pieces, 1):
        markup = keyboard(options) if number == len(pieces) else None
        try:
            message = await bot.send_message(
                chat_id, piece, reply_markup=markup, disable_notification=silent
            )
        except TelegramError as error:
            if number == 1:
                raise
            raise PartlySent(f"piece {number} of {len(pieces)}: {reason(error)}") from error
    return message


class PartlySent(Exception):
    """Some pieces of a long message went out, a later one failed."""


def reason(error: BaseException) -> str:
    """What went wrong in Telegram's own words, for logs and `last_error`: its description with
    quoted fragments cut, or the kind of error. Never the text that was being sent."""
    if isinstance(error, TelegramError):
        return QUOTED.sub("…", error.message)[:200]
    if isinstance(error, PartlySent):
        return str(error)[:200]  # built from `reason` below
    return type(error).__name__


class Intake(enum.Enum):
    ALLOW = "allow"
    WARN = "warn"  # over the limit: one polite answer
    DROP = "drop"  # over the limit and already told


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    quiet_until: float = -math.inf


class SenderLimit:
    """A token bucket per sender, checked before a message reaches the dialogue: `per_minute`
    a minute in bursts of up to `burst`. In memory only; a restart forgives everyone, which is
    all a flood guard needs."""

    def __init__(
        self,
        per_minute: float,
        burst: float,
        *,
        quiet_s: float = INTAKE_QUIET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, float(burst))
        self.quiet_s = quiet_s
        self.clock = clock
        self.buckets: dict[str, _Bucket] = {}

    @classmethod
    def sharing(cls, overall_per_s: float) -> SenderLimit:
        """The limit for a bot allowed to send `overall_per_s` in all (INTAKE_SHARE)."""
        per_s = overall_per_s * INTAKE_SHARE
        return cls(60.0 * per_s, round(overall_per_s * INTAKE_BURST_S))

    def check(self, sender: str) -> Intake:
        now = self.clock()
        bucket = self.buckets.get(sender)
        if bucket is None:
            if len(self.buckets) >= INTAKE_MEMORY:
                self._forget_idle(now)
            bucket = self.buckets[sender] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Intake.ALLOW
        if now < bucket.quiet_until:
            return Intake.DROP
        bucket.quiet_until = now + self.quiet_s
        return Intake.WARN

    def _forget_idle(self, now: float) -> None:
        # A full bucket out of its quiet time is the same as none.
        self.buckets = {
            sender: bucket
            for sender, bucket in self.buckets.items()
            if bucket.tokens + (now - bucket.stamp) * self.rate < self.burst
            or now < bucket.quiet_until
        }


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Updates of different chats run concurrently, those of one chat strictly in order.

    While one person's turn waits on the database or on Telegram, another person's turn runs;
    a person's own messages (a fast "1" then "2") are still answered in the order typed.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        # PTB's own limit is taken before `do_process_update`, so one chat's queued updates
        # would hold every slot while they wait for their turn; ours is taken after the
        # chat's lock instead.
        super().__init__(PTB_SLOTS)
        self._running = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._queued: Counter[int] = Counter()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            async with self._running:
                await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._queued[chat.id] += 1
        try:
            async with lock, self._running:
                await coroutine
        finally:
            self._queued[chat.id] -= 1
            if not self._queued[chat.id]:
                del self._queued[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TelegramTransport:
    """Wires a PTB `Application` to the dialogue core."""

    def __init__(
        self, dialogue: Dialogue, pacer: Pacer | None = None, intake: SenderLimit | None = None
    ) -> None:
        self.dialogue = dialogue
        # Shared with the outbox, so replies and broadcasts together stay under the limit.
        self.pacer = pacer
        limit_per_s = pacer.limit_per_s if pacer is not None else TELEGRAM_LIMIT_PER_S
        self.intake = intake or SenderLimit.sharing(limit_per_s)
        # Updates fully handled, so tests and the demo can wait for a reply to finish.
        self._handled_ids: set[int] = set()
        self._handled = asyncio.Condition()
        # Replies waiting out a 429, per chat and in order, each with its attempts so far and
        # the update it answers; sent by a task of their own, outside any turn.
        self._backlogs: dict[int, deque[tuple[Reply, int, int]]] = {}
        self._backlog_tasks: set[asyncio.Task[None]] = set()
        # How a backlog waits out a 429; tests put an event behind it instead of the clock.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def install(self, application: Application) -> None:  # type: ignore[type-arg]
        application.add_handler(TypeHandler(Update, self.on_update))
        application.add_error_handler(self.on_error)

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self._on_update(update, context)
        finally:
            async with self._handled:
                self._handled_ids.add(update.update_id)
                if len(self._handled_ids) > HANDLED_MEMORY:
                    oldest = sorted(self._handled_ids)[: HANDLED_MEMORY // 2]
                    self._handled_ids.difference_update(oldest)
                self._handled.notify_all()

    async def wait_handled(self, update_id: int) -> None:
        async with self._handled:
            await self._handled.wait_for(lambda: update_id in self._handled_ids)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        clock = self.dialogue.clock

        async def receipt(session: AsyncSession) -> bool:
            return await mark_processed(session, update.update_id, clock())

        inbound = inbound_from_update(update, context.bot.username)
        chat = update.effective_chat
        verdict = Intake.ALLOW if inbound is None else self.intake.check(inbound.sender_id)
        if inbound is None or verdict is not Intake.ALLOW:
            # Marked processed all the same, so it is not replayed after a restart.
            async with self.dialogue.sessions() as session, session.begin():
                fresh = await receipt(session)
            if fresh and verdict is Intake.WARN and chat is not None:
                log.info("update %s: sender over the intake limit; told once", update.update_id)
                reply = Reply(texts.TOO_MANY_MESSAGES)
                await self._send_replies(context.bot, chat.id, [reply], update.update_id)
            return
        if update.callback_query is not None:
            await self._acknowledge_tap(update)
        replies = await self.dialogue.handle(inbound, receipt)
        if chat is not None:
            await self._send_replies(context.bot, chat.id, replies, update.update_id)

    async def _acknowledge_tap(self, update: Update) -> None:
        """Stop the spinner, and turn the tapped keyboard into a note of the choice."""
        query = update.callback_query
        assert query is not None
        try:
            await query.answer()
        except TelegramError as error:  # too old to answer, or flooded: the tap still counts
            log.info("callback answer refused: %s", reason(error))
        message = query.message
        if not isinstance(message, Message) or message.reply_markup is None:
            return
        chosen = next(
            (
                button.text
                for row in message.reply_markup.inline_keyboard
                for button in row
                if button.callback_data == query.data
            ),
            None,
        )
        await self._pace(message.chat.id)
        try:
            if chosen is not None and message.text:
                await message.edit_text(f"{message.text}\n\n👉 {chosen}", reply_markup=None)
            else:
                await message.edit_reply_markup(reply_markup=None)
        except TelegramError as error:
            log.info("could not close the tapped keyboard: %s", reason(error))

    async def _send_replies(
        self, bot: Bot, chat_id: int, replies: Sequence[Reply], update_id: int
    ) -> None:
        """The answer to what the person just did, in order. A 429 (most often Telegram's
        per-chat pacing) hands this reply and the rest to a task of their own, which waits it
        out: sleeping here would hold this turn's slot, and with it other people's turns."""
        backlog = self._backlogs.get(chat_id)
        if backlog is not None:
            # Earlier replies to this chat are still waiting out a 429: these go after them.
            backlog.extend((reply, 0, update_id) for reply in replies)
            return
        for index, reply in enumerate(replies):
            await self._pace(chat_id)
            try:
                await self._send_reply(bot, chat_id, reply)
            except RetryAfter as error:
                waiting = deque((r, 0, update_id) for r in replies[index:])
                waiting[0] = (reply, 1, update_id)
                self._backlogs[chat_id] = waiting
                wait = retry_after_seconds(error.retry_after)
                task = asyncio.create_task(self._send_backlog(bot, chat_id, wait))
                self._backlog_tasks.add(task)
                task.add_done_callback(self._backlog_tasks.discard)
                return
            except Forbidden:
                log.info("update %s: the chat blocked the bot; reply dropped", update_id)
                return
            except (TelegramError, PartlySent) as error:
                log.warning("update %s: a reply failed (%s)", update_id, reason(error))

    async def _send_backlog(self, bot: Bot, chat_id: int, wait: float) -> None:
        """Send a chat's replies that drew a 429, in order, once Telegram allows it."""
        backlog = self._backlogs[chat_id]
        try:
            while backlog:
                if wait > 0:
                    await self.sleep(wait)
                wait = 0.0
                reply, attempts, update_id = backlog[0]
                await self._pace(chat_id)
                try:
                    await self._send_reply(bot, chat_id, reply)
                except RetryAfter as error:
                    if attempts + 1 < REPLY_ATTEMPTS:
                        backlog[0] = (reply, attempts + 1, update_id)
                        wait = retry_after_seconds(error.retry_after)
                        continue
                    log.warning("update %s: a reply dropped after repeated 429s", update_id)
                except Forbidden:
                    log.info("update %s: the chat blocked the bot; replies dropped", update_id)
                    return
                except (TelegramError, PartlySent) as error:
                    log.warning("update %s: a reply failed (%s)", update_id, reason(error))
                backlog.popleft()
        except Exception as error:
            log.error("replies waiting out a 429 failed\n%s", traceback_without_values(error))
        finally:
            del self._backlogs[chat_id]

    async def _send_reply(self, bot: Bot, chat_id: int, reply: Reply) -> None:
        if reply.document is not None:
            await bot.send_document(
                chat_id,
                InputFile(reply.document.content, filename=reply.document.filename),
                caption=reply.text,
            )
        else:
            await send(bot, chat_id, reply.text, reply.options)

    async def _pace(self, chat_id: int) -> None:
        if self.pacer is not None:
            await self.pacer.acquire(str(chat_id), per_chat=False, reply=True)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # The update id only: the update holds what the person wrote and their name, and the
        # error's message may quote either.
        update_id = update.update_id if isinstance(update, Update) else None
        if context.error is None:
            log.error("unhandled error for update %s", update_id)
            return
        trace = traceback_without_values(context.error)
        log.error("unhandled error for update %s\n%s", update_id, trace)


async def register_commands(bot: Bot, *, linking: bool) -> None:
    """Telegram's command menu; `/vincular` only where there is another channel to link."""
    await bot.set_my_commands(
        [
            BotCommand(name, text)
            for name, text in MENU_COMMANDS.items()
            if linking or name != "vincular"
        ]
    )


# A WhatsApp photo that could not be had is not asked for again, for each recipient, before.
PHOTO_RETRY_AFTER_S = 300.0


class TelegramSender:
    """The outbox dispatcher's way to Telegram: maps PTB's errors to what the outbox must do."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        # A photo sent from WhatsApp (`files.WHATSAPP_MEDIA`) is not Telegram's: its bytes
        # come from here (the runtime sets it), are uploaded once, and Telegram's file_id
        # for them serves every other recipient.
        self.fetch_photo: Callable[[str], Awaitable[bytes]] | None = None
        self._uploaded: dict[str, str] = {}
        self._uploading: dict[str, asyncio.Lock] = {}
        self._unavailable: dict[str, float] = {}

    async def send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | None = None,
        kind: str | None = None,
        *,
        silent: bool = False,
    ) -> str:
        if photo is None or not files.is_whatsapp_media(photo):
            message = await self._send(recipient, text, options, photo, photo, silent=silent)
            return str(message.message_id)
        known = self._uploaded.get(photo)
        if known is None:
            # One window sends to many at once: the first upload goes alone, the others
            # wait for its file_id.
            async with self._uploading.setdefault(photo, asyncio.Lock()):
                known = self._uploaded.get(photo)
                if known is None:
                    given = await self._photo_of(photo)
                    message = await self._send(
                        recipient, text, options, given, photo, silent=silent
                    )
                    return str(message.message_id)
        message = await self._send(recipient, text, options, known, photo, silent=silent)
        return str(message.message_id)

    async def _photo_of(self, reference: str) -> str | InputFile | None:
        """What to give Telegram for a WhatsApp photo; None (the text goes alone) if it
        cannot be had: the words are the message, the photo is not worth losing them for."""
        if self.fetch_photo is None:
            return None
        failed_at = self._unavailable.get(reference)
        if failed_at is not None and time.monotonic() - failed_at < PHOTO_RETRY_AFTER_S:
            return None  # each waiting send would wait for the same failure again
        try:
            content = await self.fetch_photo(reference)
            if not content.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
                raise ValueError("not a JPEG or PNG image")
        except Exception as error:
            log.warning("photo for Telegram not available (%s)", type(error).__name__)
            self._unavailable[reference] = time.monotonic()
            return None
        return InputFile(content, filename="foto.jpg")

    def _remember(self, reference: str | None, photo: str | InputFile, message: Message) -> None:
        if isinstance(photo, InputFile) and reference is not None and message.photo:
            self._uploaded[reference] = message.photo[-1].file_id

    async def _send(
        self,
        recipient: str,
        text: str,
        options: Sequence[Option],
        photo: str | InputFile | None,
        reference: str | None,
        *,
        silent: bool,
    ) -> Message:
        try:
            if photo is None:
                message = await send(self.bot, int(recipient), text, options, silent=silent)
            elif utf16_length(text) <= MessageLimit.CAPTION_LENGTH:
                message = await self.bot.send_photo(
                    int(recipient),
                    photo,
                    caption=text,
                    reply_markup=keyboard(options),
                    disable_notification=silent,
                )
                self._remember(reference, photo, message)
            else:
                alone = await self.bot.send_photo(
                    int(recipient), photo, disable_notification=silent
                )
                self._remember(reference, photo, alone)
                try:
                    message = await send(self.bot, int(recipient), text, options, silent=silent)
                except TelegramError as error:
                    raise PartlySent(f"photo sent, text failed: {reason(error)}") from error
        except PartlySent as error:
            raise SendFailed(reason(error), permanent=True) from error
        except RetryAfter as error:
            raise RetryLater(retry_after_seconds(error.retry_after)) from error
        except Forbidden as error:
            raise Unreachable(reason(error)) from error
        except BadRequest as error:
            if "chat not found" in error.message.lower():
                raise Unreachable(reason(error)) from error
            raise SendFailed(reason(error), permanent=True) from error
        except TimedOut as error:
            if isinstance(error.__cause__, httpx.PoolTimeout | httpx.ConnectTimeout):
                # PTB: "the request was not sent" — safe to retry.
                raise SendFailed(reason(error), permanent=False) from error
            # The request may have reached Telegram; only its answer is missing.
            raise SendAmbiguous(reason(error)) from error
        except NetworkError as error:
            cause = error.__cause__
            if cause is None or isinstance(cause, httpx.ConnectError):
                # Telegram answered 5xx, or no connection was made: nothing was delivered.
                raise SendFailed(reason(error), permanent=False) from error
            # The connection broke after the request was written: it may have arrived.
            raise SendAmbiguous(reason(error)) from error
        return message
