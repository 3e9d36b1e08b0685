"""The dialogue core: one inbound message in, replies out, state saved, in one transaction.

Routing order: edited messages and group chats first, then buttons (a tap, or the number or
label of an offered option typed as text, or a word or two that fits one), then commands, then
the open flow's current step, a search where the menu offered is one, and a short menu for
anything else. A handler never sees a PTB object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import (
    alerts,
    announcements,
    approvals,
    barrio_info,
    digest,
    directory,
    funding,
    leave,
    linking,
    meetings,
    mydata,
    profile,
    quiet,
    registration,
    reminder_settings,
    removal,
    texts,
)
from handlers.common import (
    active_memberships,
    and_list,
    coordinated_barrios,
    main_menu,
    say_menu,
)
from handlers.core import (
    OFFERED,
    Inbound,
    InboundKind,
    Option,
    Reply,
    Turn,
    fits_label,
    words_of,
)
from handlers.reminders import barrio_zone
from models import Member, db, queries
from scheduler.outbox import traceback_without_values

log = logging.getLogger(__name__)
SANTIAGO = ZoneInfo("America/Santiago")
# A failed turn's receipt is retried for about an hour: the database may be down that long.
MARK_ATTEMPTS = 130
MARK_FIRST_PAUSE_S = 0.25
MARK_MAX_PAUSE_S = 30.0

CommandHandler = Callable[[Turn, str], Awaitable[None]]
ButtonHandler = Callable[[Turn, str, str], Awaitable[bool]]


class Flow(Protocol):
    FLOW: str

    async def prompt(self, turn: Turn) -> None: ...
    async def on_input(self, turn: Turn) -> None: ...


# What a greeting ("hola", "buenas tardes") and thanks are answered as.
GREETING = "hola"
THANKED = "gracias"


async def _welcome(turn: Turn, _args: str) -> None:
    say_menu(turn, texts.YOU_ARE_WELCOME)


async def _greet(turn: Turn, _args: str) -> None:
    if turn.member is None:
        say_menu(turn, f"{texts.WELCOME}\n{texts.GREETING_NEWCOMER}")
    else:
        say_menu(turn, texts.GREETING_MEMBER.format(name=turn.member.name))


async def _help(turn: Turn, _args: str) -> None:
    # To someone not registered, what they can do now: register, or call for help. The rest
    # would only answer "Primero necesito inscribirte".
    in_no_barrio = turn.member is not None and not active_memberships(turn.member)
    if turn.member is None:
        text = texts.HELP_NEWCOMER
    elif in_no_barrio:
        text = texts.HELP_WITHOUT_BARRIO  # the others would only answer "not yet"
    else:
        text = texts.HELP
    if len(turn.channels) > 1:
        text += texts.HELP_LINK
    if in_no_barrio:
        text += texts.HELP_AFTER_APPROVAL  # last, below every command
    if coordinated_barrios(turn.member):
        text += texts.HELP_COORDINATOR
    say_menu(turn, text)


async def _cancel(turn: Turn, _args: str) -> None:
    had_flow = turn.flow is not None
    turn.finish()
    say_menu(turn, texts.CANCELLED if had_flow else texts.NOTHING_TO_CANCEL)


COMMANDS: dict[str, CommandHandler] = {
    "start": registration.start,
    "registro": registration.register,
    "ayuda": _help,
    GREETING: _greet,
    THANKED: _welcome,
    "cancelar": _cancel,
    "perfil": profile.show,
    "barrio": barrio_info.show,
    "directorio": directory.search,
    "miembros": approvals.list_members,
    "baja": leave.begin,
    "misdatos": mydata.send,
    "vincular": linking.begin,
    "anuncio": announcements.begin,
    "alerta": alerts.begin,
    "silencio": quiet.show,
    "reunion": meetings.begin,
    "reuniones": meetings.upcoming,
    "asistencia": meetings.attendance,
    "convocatorias": funding.open_calls,
    "convocatoria": funding.begin,
    "resumen": digest.show,
    "recordatorios": reminder_settings.show,
}

# The commands offered in Telegram's menu (setMyCommands), in order.
MENU_COMMANDS: dict[str, str] = {
    "start": "Empezar",
    "registro": "Inscribirme en mi barrio",
    "barrio": "Ver mi barrio",
    "directorio": "Buscar negocios del barrio",
    "perfil": "Ver o cambiar mis datos",
    "reuniones": "Próximas reuniones y mi respuesta",
    "convocatorias": "Fondos abiertos para mi barrio",
    "alerta": "Alerta de seguridad al barrio",
    "silencio": "Horario sin avisos",
    "resumen": "Resumen semanal (lunes 9:00)",
    "miembros": "Socios y solicitudes (coordinación)",
    "anuncio": "Enviar un anuncio (coordinación)",
    "reunion": "Convocar una reunión (coordinación)",
    "convocatoria": "Publicar un fondo o convocatoria (coordinación)",
    "asistencia": "Quién viene a las reuniones (coordinación)",
    "recordatorios": "Cuándo se recuerdan las reuniones (coordinación)",
    "misdatos": "Descargar todos mis datos",
    "vincular": "Usar Telegram y WhatsApp juntos",
    "baja": "Salir o borrar mis datos",
    "cancelar": "Dejar lo que estaba haciendo",
    "ayuda": "Ayuda",
}

FLOWS: dict[str, Flow] = {
    registration.FLOW: registration,
    profile.FLOW: profile,
    leave.FLOW: leave,
    announcements.FLOW: announcements,
    alerts.FLOW: alerts,
    meetings.FLOW: meetings,
    funding.FLOW: funding,
    reminder_settings.FLOW: reminder_settings,
    linking.FLOW: linking,
    approvals.FLOW: approvals,
    barrio_info.FLOW: barrio_info,
}


async def _menu_button(turn: Turn, action: str, _arg: str) -> bool:
    command = COMMANDS.get(action)
    if command is None:
        turn.say(texts.INVALID_BUTTON)
        return True
    await command(turn, "")
    return True


BUTTONS: dict[str, ButtonHandler] = {
    "menu": _menu_button,
    registration.FLOW: registration.on_button,
    profile.FLOW: profile.on_button,
    leave.FLOW: leave.on_button,
    announcements.FLOW: announcements.on_button,
    alerts.FLOW: alerts.on_button,
    quiet.FLOW: quiet.on_button,
    meetings.FLOW: meetings.on_button,
    "rsv": meetings.on_rsvp,
    funding.FLOW: funding.on_button,
    approvals.FLOW: approvals.on_button,
    removal.PREFIX: removal.on_button,
    "dir": directory.on_button,
    digest.FLOW: digest.on_button,
    reminder_settings.FLOW: reminder_settings.on_button,
    linking.FLOW: linking.on_button,
    barrio_info.FLOW: barrio_info.on_button,
}


async def _offered_payload(turn: Turn) -> str | None:
    """A typed number ("2") or label ("acepto") of the options we last offered is a tap.
    Outside any flow, what is on offer is the newest list the person got — a reply of ours or
    a notice the outbox delivered since (a join request's Aprobar / Rechazar) — or else the
    main menu; a step that offered nothing asks for text, and gets it."""
    if turn.inbound.kind != InboundKind.TEXT:
        return None
    offered: list[list[str]] | None = turn.data.get(OFFERED)
    if turn.flow is None:
        notice = await _newer_notice(turn)
        if notice is not None:
            # Answered now: the numbers typed next refer to what this turn offers, if anything.
            turn.conversation.updated_at = turn.now
            offered = notice
    if offered is None:
        if turn.flow is not None:
            return None
        offered = _as_offered(main_menu(turn.member))
    typed = turn.inbound.text.strip()
    if typed.isascii() and typed.isdigit() and 1 <= int(typed) <= len(offered):
        return offered[int(typed) - 1][1]
    folded = words_of(typed)
    named = [i for i, (label, _) in enumerate(offered) if words_of(label) == folded]
    if len({offered[i][1] for i in named}) > 1:
        # The same label on several messages ("🕑 Cambiar fecha" under each meeting): which
        # one is not ours to guess. The numbers are.
        raise _SameLabelTwice(offered[named[0]][0], [i + 1 for i in named])
    if named:
        return offered[named[0]][1]
    return await _yes_or_no(turn, offered)


class _SameLabelTwice(Exception):
    def __init__(
        self, label: str, numbers: Sequence[int] = (), payloads: Sequence[str] = ()
    ) -> None:
        super().__init__(label)
        self.label, self.numbers, self.payloads = label, list(numbers), list(payloads)


# Where the notices a label was typed under are listed together, with numbers that work.
LISTED_IN = {approvals.FLOW: "miembros", "rsv": "reuniones"}


# Typed alone, these answer the confirmation just shown in a dialogue: yes, only where saying
# yes undoes nothing of anyone's (sending what the person wrote, a date they typed); no, any
# option that says no. Never a removal, a cancellation, an erasure or a consent: "ok" may be
# a mere acknowledgement, of a notice that arrived meanwhile too.
YES_WORDS = frozenset(
    {
        "si",
        "sii",
        "ok",
        "oka",
        "okay",
        "dale",
        "ya",
        "bueno",
        "listo",
        "claro",
        "confirmo",
        "envialo",
        "enviala",
        "mandalo",
        "mandala",
        "👍",
    }
)
NO_WORDS = frozenset({"no", "nop", "nones"})
YES_ANSWERS = frozenset(
    {
        f"{alerts.FLOW}:send",
        f"{announcements.FLOW}:send",
        f"{meetings.FLOW}:send",
        f"{meetings.FLOW}:ok",
    }
)
# Longer ago than this, a confirmation left unanswered is not what a "sí" answers.
YES_NO_FRESH = timedelta(minutes=10)


async def _yes_or_no(turn: Turn, offered: list[list[str]]) -> str | None:
    said = words_of(turn.inbound.text) or turn.inbound.text.strip()
    if said in YES_WORDS:
        answers = {payload for _, payload in offered if payload in YES_ANSWERS}
    elif said in NO_WORDS:
        answers = {payload for label, payload in offered if words_of(label).split(" ")[0] == "no"}
    else:
        return None
    shown_at = turn.conversation.updated_at
    if (
        turn.flow is None
        or len(answers) != 1
        or shown_at is None
        or turn.now - shown_at > YES_NO_FRESH
        or await _notice_options(turn) is not None
    ):
        return None
    return answers.pop()


async def _newer_notice(turn: Turn) -> list[list[str]] | None:
    """The options of the newest notice with options delivered to this person after our last
    reply that changed the conversation, if any."""
    typed = turn.inbound.text.strip()
    # Only a number is looked up here: every message outside a dialogue passes here, and a
    # query for each would tax them all. A label typed is looked up last (`_label_on_notice`).
    if not (typed.isascii() and typed.isdigit() and len(typed) <= 3):
        return None
    return await _notice_options(turn)


async def _label_on_notice(turn: Turn) -> str | None:
    """A label of a notice delivered since our last reply typed whole ("rechazar" for "❌
    Rechazar" under a join request), when nothing else understood the words: what a tap on
    it would do. On two notices (two requests) it is asked, not guessed."""
    if turn.flow is not None or len(turn.inbound.text) > MAX_LABEL_TYPED:
        return None
    folded = words_of(turn.inbound.text)
    if not folded:
        return None
    chosen: dict[str, str] = {}
    for notice in await _notices(turn):
        chosen.update({p: label for label, p in notice if words_of(label) == folded})
    if len(chosen) > 1:
        raise _SameLabelTwice(next(iter(chosen.values())), payloads=list(chosen))
    if not chosen:
        return None
    turn.conversation.updated_at = turn.now
    return next(iter(chosen))


# Longer than any label: not worth a query.
MAX_LABEL_TYPED = 60


async def _notices(turn: Turn) -> list[list[list[str]]]:
    """The options of every notice with options delivered since our last reply, newest
    first."""
    since = turn.conversation.updated_at if turn.conversation in turn.session else None
    if turn.member is not None:
        found = await queries.notices_with_options(turn.session, turn.member.id, since)
    elif turn.is_admin:
        address = (turn.inbound.channel, turn.inbound.sender_id)
        found = await queries.notices_with_options(turn.session, None, since, address)
    else:
        return []
    return [[[o["label"], o["payload"]] for o in notice] for notice in found]


async def _notice_options(turn: Turn) -> list[list[str]] | None:
    """The options of the newest notice delivered since our last reply, if any: an
    administrator who is no member answers a join request by its number too."""
    notices = await _notices(turn)
    return notices[0] if notices else None


# Outside a dialogue, the buttons a word may pick: going somewhere (the menu, a rubro) or an
# answer one can change (a meeting's). Never a decision on someone (approve, reject, remove)
# or a confirmation: "quitar" typed must not remove a member.
FITTING_OUTSIDE_FLOWS = ("menu:", "dir:", "rsv:")


def _options_fitting(turn: Turn) -> list[Option]:
    """The options last offered that a typed word or two fits ("panaderia", "ferre"): where
    options are the whole answer. Not at a step that reads text (a name, a description), nor
    at a confirmation (sending, erasing takes the whole label), nor where the words are a
    command ("reuniones") or a search on the menu offered (the directory's)."""
    if turn.inbound.kind != InboundKind.TEXT:
        return []
    if turn.flow is None:
        if _keyword(turn) is not None or _search_menu(turn) is not None:
            return []
        offered = [
            [label, payload]
            for label, payload in turn.data.get(OFFERED) or _as_offered(main_menu(turn.member))
            if payload.startswith(FITTING_OUTSIDE_FLOWS)
        ]
    else:
        flow = FLOWS.get(turn.flow)
        if turn.step not in getattr(flow, "CHOICE_STEPS", ()):
            return []
        offered = turn.data.get(OFFERED) or []
    typed = turn.inbound.text
    return [Option(label, payload) for label, payload in offered if fits_label(typed, label)]


# Menus whose typed words, when they are none of its options, are a search: the prefix of
# their buttons' payloads, and the search.
SEARCH_MENUS: dict[str, CommandHandler] = {
    "dir": directory.search,
    quiet.FLOW: quiet.typed,
    reminder_settings.FLOW: reminder_settings.typed,
}


def _search_menu(turn: Turn) -> CommandHandler | None:
    """The search that reads typed text outside any dialogue, when every option last offered
    is one of its menu's (the directory's rubros, its "Ver todos")."""
    if turn.inbound.kind != InboundKind.TEXT or turn.flow is not None:
        return None
    offered: list[list[str]] = turn.data.get(OFFERED) or []
    prefixes = {payload.partition(":")[0] for _label, payload in offered}
    return SEARCH_MENUS.get(prefixes.pop()) if len(prefixes) == 1 else None


async def route(turn: Turn) -> None:
    inbound = turn.inbound
    if not inbound.private:
        # Groups see only commands addressed to the bot; anything personal moves to a private chat.
        if inbound.kind in (InboundKind.COMMAND, InboundKind.BUTTON):
            turn.say(texts.GROUP_GO_PRIVATE.format(link=f"https://t.me/{turn.bot_username}"))
        return
    if inbound.kind == InboundKind.EDITED:
        turn.say(texts.EDITED_MESSAGE)
        return
    code = linking.code_typed(inbound.text) if inbound.kind == InboundKind.TEXT else None
    if code is not None:
        # "VINCULAR 123456" at the name step is a link, not a name: on every channel.
        await linking.redeem(turn, code)
        return
    escape = _escape_word(inbound)
    if escape is not None:
        # "cancelar" typed at the name step is a way out, not a name: on every channel.
        await COMMANDS[escape](turn, "")
        return
    try:
        payload = (
            inbound.payload if inbound.kind == InboundKind.BUTTON else await _offered_payload(turn)
        )
    except _SameLabelTwice as twice:
        numbers = and_list([str(n) for n in twice.numbers], texts.OR)
        turn.say(texts.SAME_LABEL_TWICE.format(label=twice.label, numbers=numbers))
        return
    if payload is None:
        fitting = _options_fitting(turn)
        if len(fitting) > 1:
            turn.say(texts.WHICH_OPTION, fitting)
            return
        payload = fitting[0].payload if fitting else None
    keyword = _keyword(turn) if payload is None else None
    if payload is not None:
        await _on_payload(turn, payload)
    elif keyword is not None:
        await COMMANDS[keyword[0]](turn, keyword[1])
    elif inbound.kind == InboundKind.COMMAND:
        command = COMMANDS.get(inbound.command or "")
        if command is None:
            say_menu(turn, texts.NOT_UNDERSTOOD)
        else:
            await command(turn, inbound.args)
    elif turn.flow in FLOWS:
        await FLOWS[turn.flow].on_input(turn)
    elif inbound.kind == InboundKind.MEDIA:
        say_menu(turn, texts.MEDIA_UNEXPECTED)
    else:
        await _text_outside_dialogues(turn)


async def _text_outside_dialogues(turn: Turn) -> None:
    """Words no option, command or dialogue took: a notice's label first (a join request
    may arrive after /directorio), then the search of the menu last offered."""
    try:
        on_notice = await _label_on_notice(turn)
    except _SameLabelTwice as twice:
        lists = {LISTED_IN.get(payload.partition(":")[0]) for payload in twice.payloads}
        command = lists.pop() if len(lists) == 1 else None
        if command is None:
            turn.say(texts.SAME_LABEL_ON_NOTICES_TAP.format(label=twice.label))
        else:
            turn.say(texts.SAME_LABEL_ON_NOTICES.format(label=twice.label, command=command))
        return
    if on_notice is not None:
        await _on_payload(turn, on_notice)
    elif (search := _search_menu(turn)) is not None:
        await search(turn, turn.inbound.text)
    elif turn.member is None:
        turn.say(texts.WELCOME)
        say_menu(turn, texts.NOT_REGISTERED)
    else:
        say_menu(turn, texts.NOT_UNDERSTOOD)


# Typed alone, these win at any step of any dialogue (on WhatsApp they are the only way out).
ESCAPE_WORDS = {
    "cancelar": "cancelar",
    "ayuda": "ayuda",
    "menu": "ayuda",
    "baja": "baja",
    "vincular": "vincular",
}
_PUNCTUATION = "¡!¿?.,;: "
# "gracias" after a search or a notice is courtesy, not a search nor "no te entendí".
THANKS = frozenset({"gracias", "muchas gracias", "mil gracias", "ok gracias", "vale gracias"})
# A greeting outside a dialogue gets a greeting and the menu, not "no te entendí".
GREETINGS = frozenset({"hola", "buenas", "buenos dias", "buenas tardes", "buenas noches", "ola"})
# Asking to join in plain words is /registro (someone registered gets what /registro says).
REGISTER_WORDS = frozenset(
    f"{want}{verb}"
    for want in ("", "quiero ", "me quiero ", "deseo ")
    for verb in (
        "inscribirme",
        "registrarme",
        "unirme",
        "unirme al barrio",
        "inscribirme al barrio",
    )
) | {"inscripcion", "me inscribo", "me registro", "me quiero inscribir", "me quiero registrar"}


def _escape_word(inbound: Inbound) -> str | None:
    if inbound.kind != InboundKind.TEXT:
        return None
    return ESCAPE_WORDS.get(words_of(inbound.text.removeprefix("/")).strip(_PUNCTUATION))


def _keyword(turn: Turn) -> tuple[str, str] | None:
    """A command typed without its slash ("reuniones", "DIRECTORIO pan"), outside a dialogue:
    inside one, the same words may well be the answer asked for (a meeting called
    "Reuniones")."""
    inbound = turn.inbound
    if inbound.kind != InboundKind.TEXT or turn.flow is not None:
        return None
    said = words_of(inbound.text).strip(_PUNCTUATION)
    if said in GREETINGS:
        return GREETING, ""
    if said in THANKS:
        return THANKED, ""
    if said in REGISTER_WORDS:
        return "registro", ""
    head, _, rest = inbound.text.strip().partition(" ")
    name = words_of(head.removeprefix("/"))
    return (name, rest.strip()) if name in COMMANDS and name != "start" else None


async def _on_payload(turn: Turn, payload: str) -> None:
    prefix, _, rest = payload.partition(":")
    action, _, arg = rest.partition(":")
    handler = BUTTONS.get(prefix)
    if handler is None:
        turn.say(texts.INVALID_BUTTON)
        await _reprompt(turn)
    elif not await handler(turn, action, arg):
        turn.say(texts.STALE_BUTTON)
        await _reprompt(turn)


async def _reprompt(turn: Turn) -> None:
    if turn.flow in FLOWS:
        await FLOWS[turn.flow].prompt(turn)
    else:
        say_menu(turn)


def _remember_offered(turn: Turn) -> None:
    """Keep the turn's options as one numbered list, in the order sent (several messages with
    options, as in /miembros or /reuniones, number on from each other), so their numbers work
    when typed. The main menu is the default and is not stored; replies without options (an
    error, a search result) leave the previous list in force."""
    offered = [[o.label, o.payload] for reply in turn.replies for o in reply.options]
    if not offered:
        return
    data = {k: v for k, v in turn.data.items() if k != OFFERED}
    if offered != _as_offered(main_menu(turn.member)):
        data[OFFERED] = offered
    if data != turn.data:
        turn.conversation.data = data


def _as_offered(options: list[Option]) -> list[list[str]]:
    return [[o.label, o.payload] for o in options]


def member_zone(member: Member | None, default: ZoneInfo) -> ZoneInfo:
    """The zone a member's dates are read and said in: their (first) barrio's."""
    memberships = active_memberships(member) if member is not None else []
    return barrio_zone(memberships[0].barrio, default) if memberships else default


class Dialogue:
    """Runs one turn per inbound message: the unit of work lives here, at the boundary."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bot_username: str,
        *,
        clock: Callable[[], datetime],
        zone: ZoneInfo = SANTIAGO,
        alerts_per_hour: int = 3,
        on_enqueued: Callable[[], None] | None = None,
        on_planned: Callable[[], None] | None = None,
        channels: Sequence[str] = ("telegram",),
        admins: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.sessions = sessions
        self.channels = tuple(channels)
        self.admins = tuple(admins)
        self.on_planned = on_planned
        self.bot_username = bot_username
        self.clock = clock
        self.zone = zone
        self.alerts_per_hour = alerts_per_hour
        self.on_enqueued = on_enqueued
        self._marking: set[asyncio.Task[None]] = set()

    async def handle(
        self, inbound: Inbound, receipt: Callable[[AsyncSession], Awaitable[bool]] | None = None
    ) -> list[Reply]:
        """Run one turn. `receipt`, if given, runs first in the turn's transaction and says
        whether this inbound message is new; a repeat is skipped without a reply."""
        try:
            turn = await self._run(inbound, receipt)
        except Exception as error:
            # Ids and kinds only: an exception's message can quote what the person typed
            # (int("hola") does), so the traceback goes without messages.
            log.error(
                "turn failed (%s %s)\n%s",
                inbound.channel,
                inbound.kind,
                traceback_without_values(error),
            )
            if receipt is not None:
                self._mark_handled_later(receipt)
            return [Reply(texts.ERROR_OURS)]
        if turn is None:
            return []
        if turn.forget:
            # An erasure: out of the database's files too, not only its tables.
            await db.off_the_disk(self.sessions)
        if turn.enqueued and self.on_enqueued is not None:
            self.on_enqueued()
        if turn.planned and self.on_planned is not None:
            self.on_planned()
        return turn.replies

    async def settle(self, within_s: float) -> None:
        """Give failed turns' marks a last chance before the database goes away: a mark
        not recorded means a replay at the next start."""
        if self._marking:
            _, unfinished = await asyncio.wait(self._marking, timeout=within_s)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.error("%d failed updates not marked handled; they may replay", len(unfinished))

    def _mark_handled_later(self, receipt: Callable[[AsyncSession], Awaitable[bool]]) -> None:
        task = asyncio.create_task(self._mark_handled(receipt))
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def _mark_handled(self, receipt: Callable[[AsyncSession], Awaitable[bool]]) -> None:
        """The person was told it failed, so it must never be replayed into whatever they do
        next. The database may be what failed: keep trying until it answers again."""
        for attempt in range(MARK_ATTEMPTS):
            try:
                async with self.sessions() as session, session.begin():
                    await receipt(session)
                return
            except Exception as error:
                if attempt == 0:
                    log.warning("a failed update is not marked yet (%s); retrying", type(error))
                await asyncio.sleep(min(MARK_MAX_PAUSE_S, MARK_FIRST_PAUSE_S * 2**attempt))
        log.error("a failed update could not be marked handled; it may be replayed")

    async def _run(
        self, inbound: Inbound, receipt: Callable[[AsyncSession], Awaitable[bool]] | None
    ) -> Turn | None:
        async with self.sessions() as session, session.begin():
            if receipt is not None and not await receipt(session):
                return None
            conversation, member, unreachable = await queries.sender_state(
                session, inbound.channel, inbound.sender_id
            )
            if unreachable:
                await queries.mark_reachable(session, inbound.channel, inbound.sender_id)
            turn = Turn(
                inbound=inbound,
                session=session,
                conversation=conversation,
                member=member,
                now=self.clock(),
                bot_username=self.bot_username,
                zone=member_zone(member, self.zone),
                default_zone=self.zone,
                alerts_per_hour=self.alerts_per_hour,
                channels=self.channels,
                admins=self.admins,
            )
            await route(turn)
            if not turn.forget:
                _remember_offered(turn)
                keep = (
                    conversation.flow
                    or conversation.data
                    or turn.member is not None
                    # An administrator's next typed number must know what it answers.
                    or turn.is_admin
                )
                if turn.is_admin and turn.member is None:
                    # When an administrator who is no member last wrote: what WhatsApp's
                    # 24-hour window is counted from (bot/whatsapp.py), as a member's identity.
                    conversation.updated_at = turn.now
                if keep and conversation not in session:
                    # A member always has a conversation row: their next turn is one query.
                    session.add(conversation)
                elif not keep and conversation in session:
                    # Not registered and nothing under way ("No acepto", /cancelar): not even
                    # their Telegram id is kept.
                    await session.delete(conversation)
        return turn
