"""The channel-neutral vocabulary of a dialogue: what comes in, what goes out, and one turn.

A transport turns a Telegram update (or, later, a Twilio webhook) into an `Inbound`, hands it to
`handlers.dialogue.Dialogue`, and renders the `Reply` list it gets back. Nothing here knows PTB.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.outbox import Recipient, enqueue, enqueue_per_barrio, recipients_of
from models import Conversation, Member, Priority
from models.entities import fold as fold

# Telegram limits callback_data to 64 bytes; every payload we build must fit.
MAX_PAYLOAD_BYTES = 64


class InboundKind(enum.StrEnum):
    TEXT = "text"
    COMMAND = "command"
    BUTTON = "button"
    LOCATION = "location"
    MEDIA = "media"
    EDITED = "edited"


@dataclass(frozen=True)
class Option:
    label: str
    payload: str

    def __post_init__(self) -> None:
        if len(self.payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload over {MAX_PAYLOAD_BYTES} bytes: {self.payload!r}")


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"
    # The person's own data (`/misdatos`): a channel that serves it as a link keeps that link
    # short-lived and erases it with them.
    personal: bool = False


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[Option, ...] = ()
    document: Document | None = None


@dataclass(frozen=True)
class Rendered:
    """A queued message's words as rendered when it is sent (see `Delivery.template`)."""

    text: str
    options: Sequence[Option]


@dataclass(frozen=True)
class Inbound:
    """One thing a person did: typed, tapped, shared a location or a file, edited a message."""

    channel: str
    sender_id: str
    kind: InboundKind
    text: str = ""
    command: str | None = None
    args: str = ""
    payload: str | None = None
    location: tuple[float, float] | None = None
    media: str | None = None
    # The platform's id of the media (a Telegram file_id), so it can be forwarded as is.
    media_id: str | None = None
    private: bool = True


# Conversation data key: the options last offered, so their numbers and labels work typed.
OFFERED = "offered"


@dataclass
class Turn:
    """Everything one handler needs for one inbound message, inside one database transaction."""

    inbound: Inbound
    session: AsyncSession
    conversation: Conversation
    member: Member | None
    now: datetime
    bot_username: str
    # The zone this person's dates are read and said in (their barrio's), and the
    # deployment's BARRIO_TIMEZONE, for barrios that have none of their own.
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Santiago"))
    default_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Santiago"))
    alerts_per_hour: int = 3
    # The channels this deployment runs ("telegram", "whatsapp"): what a person can link.
    channels: tuple[str, ...] = ("telegram",)
    # The deployment's administrators on those channels, as (channel, external id): they
    # answer what no coordinator can (ADMIN_TELEGRAM_IDS, ADMIN_WHATSAPP_NUMBERS).
    admins: tuple[tuple[str, str], ...] = ()
    replies: list[Reply] = field(default_factory=list)
    enqueued: int = 0
    # Set when the turn planned reminders: the reminder loop looks again at once.
    planned: bool = False
    # Set when the person erased their data: the conversation row must not be written back.
    forget: bool = False

    def say(
        self, text: str, options: Sequence[Option] = (), document: Document | None = None
    ) -> None:
        self.replies.append(Reply(text, tuple(options), document))

    @property
    def is_admin(self) -> bool:
        """The sender is one of the deployment's administrators (member or not)."""
        return (self.inbound.channel, self.inbound.sender_id) in self.admins

    # Conversation state -------------------------------------------------------------------
    @property
    def flow(self) -> str | None:
        return self.conversation.flow

    @property
    def step(self) -> str | None:
        return self.conversation.step

    @property
    def data(self) -> dict[str, Any]:
        return self.conversation.data

    def enter(self, flow: str, step: str, **data: Any) -> None:
        self.conversation.flow = flow
        self.conversation.step = step
        # A new dict, so SQLAlchemy sees the change to the JSON column. The options the last
        # step offered go: typed at the next step, "Robo" is a description, not a stale tap.
        kept = {k: v for k, v in self.conversation.data.items() if k != OFFERED}
        self.conversation.data = {**kept, **data}

    def goto(self, step: str, **data: Any) -> None:
        assert self.conversation.flow is not None
        self.enter(self.conversation.flow, step, **data)

    def finish(self) -> None:
        self.conversation.flow = None
        self.conversation.step = None
        self.conversation.data = {}

    # Outbox --------------------------------------------------------------------------------
    async def notify(
        self,
        member: Member,
        text: str,
        options: Sequence[Option] = (),
        *,
        priority: Priority = Priority.PERSONAL,
        urgent: bool = False,
        about: Member | None = None,
        barrio_id: int | None = None,
    ) -> None:
        """Queue a message to another person through the outbox, in this same transaction.
        By default a personal notice (what someone did just now: a request, its answer),
        which quiet hours never hold. `about`: the person the text names, so erasing them
        deletes it too; `barrio_id`: the barrio it is the business of, so leaving that barrio
        withdraws it while queued."""
        self.enqueued += await enqueue(
            self.session,
            recipients_of(member),
            text,
            now=self.now,
            zone=self.zone,
            options=options,
            priority=priority,
            urgent=urgent,
            about_member_id=about.id if about is not None else None,
            barrio_id=barrio_id,
        )

    async def enqueue_per_barrio(
        self,
        recipients: Sequence[Recipient],
        barrio_ids: Sequence[int],
        text: str,
        *,
        priority: Priority,
        broadcast: str,
        photo: str | None = None,
    ) -> None:
        """Queue one message to the members of `barrio_ids`, each member once
        (`outbox.enqueue_per_barrio`)."""
        self.enqueued += await enqueue_per_barrio(
            self.session,
            recipients,
            barrio_ids,
            text,
            now=self.now,
            zone=self.zone,
            priority=priority,
            broadcast=broadcast,
            photo=photo,
        )


def clean_line(text: str) -> str:
    """One line of user text: no control characters, single spaces."""
    printable = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(printable.split())


def has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


# Ids are 32-bit integers: a larger one in a forged payload would be a database error
# (PostgreSQL checks the range), not a row that does not exist.
MAX_ID = 2**31 - 1


def parse_id(text: str) -> int | None:
    """A database id (or an index) from a payload; anything else (forged, huge, unicode
    digits) is None."""
    if 0 < len(text) <= 12 and text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        return int(text)
    return None


# Fewer letters than this fit too many labels to mean one ("a", "si").
MIN_LETTERS_TO_FIT = 3


def fits_label(typed: str, label: str) -> bool:
    """Whether every typed word starts a word of `label`, accents, case, emoji and punctuation
    aside, a plural counting as its singular: "pan", "panaderias" and "pasteleria" all fit
    "🥖 Panadería y pastelería"."""
    label_words = _WORD.findall(fold(label))
    typed_words = _WORD.findall(fold(typed))
    return sum(map(len, typed_words)) >= MIN_LETTERS_TO_FIT and all(
        any(word.startswith(stem) for word in label_words for stem in _singulars(typed_word))
        for typed_word in typed_words
    )


_WORD = re.compile(r"[^\W_]+")


def words_of(text: str) -> str:
    """Text as its words only, folded: no emoji (nor their invisible variation selectors),
    symbols or punctuation ("✏️ Teléfono" → "telefono", "✅ Sí, está bien" → "si esta
    bien"). What a label or a short answer is compared by."""
    return " ".join(_WORD.findall(fold(text)))


def _singulars(word: str) -> set[str]:
    stems = {word}
    if len(word) > 3 and word.endswith("s"):
        stems.add(word[:-1])
    if len(word) > 4 and word.endswith("es"):
        stems.add(word[:-2])
    # "sospechoso" fits "👀 Persona sospechosa": a word's gender is no reason to miss it.
    stems |= {stem[:-1] for stem in stems if len(stem) > 4 and stem[-1] in "oa"}
    return stems
