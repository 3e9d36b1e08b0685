"""`/recordatorios`: a coordinator chooses how long before each meeting of their barrio its
reminders go out (24 h and 2 h unless changed), with a tap or typed as hours ("48 y 3")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from handlers import reminders, texts
from handlers.common import coordinated_barrios, main_menu, require_coordinator
from handlers.core import Option, Turn, clean_line, fold, parse_id
from models import Barrio

FLOW = "rec"
PRESETS: dict[str, tuple[int, ...]] = {
    "24-2": (24 * 60, 2 * 60),
    "2": (2 * 60,),
    "24": (24 * 60,),
    "48-3": (48 * 60, 3 * 60),
    "0": (),
}
_TOKEN = re.compile(r"\d+|[a-zñ]+")
_NUMBER_WORDS = {
    "un": 1,
    "una": 1,
    "uno": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "seis": 6,
    "siete": 7,
    "ocho": 8,
    "nueve": 9,
    "diez": 10,
    "once": 11,
    "doce": 12,
    "catorce": 14,
    "veinticuatro": 24,
}
_UNIT_HOURS = {"h": 1, "hr": 1, "hrs": 1, "hora": 1, "horas": 1, "dia": 24, "dias": 24}
_BETWEEN = frozenset({"y", "e", "antes", "de", "del", "la", "reunion"})
# "1h30" is a time of day or a duration, never two offsets; "a las 9" is an hour of the day.
_NOT_OFFSETS = re.compile(r"\d\s*h\s*\d|\ba\s+las?\b|\blas\s+\d")


def parse_hours(text: str) -> tuple[int, ...] | None:
    """ "48 y 3", "48, 3", "2 horas", "un día antes y una hora antes" → minutes before,
    largest first; None if not whole hours in range, or too many of them."""
    hours: list[int] = []
    unit_pending = False  # the last number may still get its unit ("2" then "días")
    folded = fold(clean_line(text))
    if _NOT_OFFSETS.search(folded):
        return None
    for token in _TOKEN.findall(folded):
        if token.isdigit() or token in _NUMBER_WORDS:
            if token.isdigit() and len(token) > 3:
                return None
            hours.append(int(token) if token.isdigit() else _NUMBER_WORDS[token])
            unit_pending = True
        elif token in _UNIT_HOURS and unit_pending:
            hours[-1] *= _UNIT_HOURS[token]
            unit_pending = False
        elif token not in _BETWEEN:
            return None
    if not hours:
        return None
    minutes = sorted({h * 60 for h in hours}, reverse=True)
    if len(minutes) > reminders.MAX_REMINDERS or not all(
        0 < m <= reminders.MAX_REMINDER_MINUTES for m in minutes
    ):
        return None
    return tuple(minutes)


async def show(turn: Turn, _args: str = "") -> None:
    barrios = require_coordinator(turn)
    for barrio in barrios:
        current = reminders.describe_offsets(reminders.reminder_minutes(barrio))
        options = [
            Option(label, f"{FLOW}:set:{barrio.id}:{key}")
            for key, label in texts.REMINDER_PRESETS.items()
        ]
        options.append(Option(texts.REMINDER_TYPE_HOURS, f"{FLOW}:type:{barrio.id}"))
        turn.say(texts.REMINDERS_NOW.format(barrio=barrio.name, current=current), options)


def _barrio(turn: Turn, arg: str) -> Barrio | None:
    barrio_id = parse_id(arg)
    return next((b for b in coordinated_barrios(turn.member) if b.id == barrio_id), None)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    barrio_arg, _, preset = arg.partition(":")
    barrio = _barrio(turn, barrio_arg)
    if barrio is None:
        turn.say(texts.COORDINATORS_ONLY)
        return True
    if action == "set" and preset in PRESETS:
        await _save(turn, barrio, PRESETS[preset])
    elif action == "type":
        turn.finish()
        turn.enter(FLOW, "hours", barrio_id=barrio.id)
        turn.say(texts.REMINDER_ASK_HOURS)
    else:
        turn.say(texts.INVALID_BUTTON)
    return True


async def prompt(turn: Turn) -> None:
    turn.say(texts.REMINDER_ASK_HOURS)


async def on_input(turn: Turn) -> None:
    barrio = _barrio(turn, str(turn.data.get("barrio_id", "")))
    if barrio is None:
        turn.finish()
        turn.say(texts.COORDINATORS_ONLY, main_menu(turn.member))
        return
    minutes = parse_hours(turn.inbound.text[:60])
    if minutes is None:
        turn.say(texts.REMINDER_BAD_HOURS)
        return
    turn.finish()
    await _save(turn, barrio, minutes)


async def _save(turn: Turn, barrio: Barrio, minutes: Sequence[int]) -> None:
    barrio.reminder_minutes = list(minutes)
    await turn.session.flush()
    count = await reminders.replan_barrio(turn.session, barrio, turn.now)
    turn.planned = True
    template = texts.REMINDERS_SAVED if minutes else texts.REMINDERS_SAVED_NONE
    turn.say(
        template.format(
            barrio=barrio.name, current=reminders.describe_offsets(minutes), meetings=count
        ),
        main_menu(turn.member),
    )


async def typed(turn: Turn, text: str) -> None:
    """Hours typed after `/recordatorios` instead of a tap, by someone coordinating one
    barrio (with two, which one is theirs to say: the button asks)."""
    barrios = require_coordinator(turn)
    if not barrios:
        return
    minutes = parse_hours(text[:60])
    if len(barrios) > 1 or minutes is None:
        turn.say(texts.REMINDER_BAD_HOURS if minutes is None else texts.REMINDER_WHICH_BARRIO)
        await show(turn)
        return
    await _save(turn, barrios[0], minutes)
