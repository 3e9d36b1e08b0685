"""`/silencio`: the hours when only security alerts may reach a member."""

from __future__ import annotations

import re

from handlers import texts
from handlers.common import main_menu, require_member
from handlers.core import Option, Turn, clean_line, fold
from models import Member

FLOW = "sil"
# "de 20 a 8", "20:30 a 7", "desde las 22 hasta las 7", "entre las 22 y las 7", "22-8".
_TYPED_RANGE = re.compile(
    r"(?:de(?:sde)?\s+|entre\s+)?(?:las\s+)?(\d{1,2})(?:[:.](\d{2}))?\s*(?:hrs?|h)?\s*"
    r"(?:a|-|–|—|hasta|y)\s*(?:las\s+)?(\d{1,2})(?:[:.](\d{2}))?\s*(?:hrs?|h)?"
)


def parse_range(text: str) -> tuple[int, int] | None:
    """A quiet range typed as people say it, in minutes after midnight; None if it is not
    one (an hour past 23, minutes past 59, or the same start and end)."""
    found = _TYPED_RANGE.fullmatch(fold(clean_line(text)).strip(" ."))
    if found is None:
        return None
    start_h, start_m, end_h, end_m = (int(g) if g else 0 for g in found.groups())
    if max(start_h, end_h) > 23 or max(start_m, end_m) > 59:
        return None
    if start_h <= 12 and start_h > end_h:
        # "de 10 a 7" is said of the night: 22:00 to 07:00, not 21 hours; "de 12 a 6" too.
        start_h = 0 if start_h == 12 else start_h + 12
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    return (start, end) if start != end else None


def describe(member: Member) -> str:
    if member.quiet_start is None or member.quiet_end is None:
        return texts.QUIET_OFF
    return texts.QUIET_RANGE.format(start=_clock(member.quiet_start), end=_clock(member.quiet_end))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


async def show(turn: Turn, _args: str = "") -> None:
    member = require_member(turn)
    if member is None:
        return
    turn.say(texts.QUIET_NOW.format(current=describe(member)), _choices())


def _choices() -> list[Option]:
    return [Option(label, f"{FLOW}:set:{key}") for key, label in texts.QUIET_CHOICES.items()]


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    member = require_member(turn)
    if member is None:
        return True
    if action != "set" or arg not in texts.QUIET_CHOICES:
        turn.say(texts.INVALID_BUTTON)
        return True
    if arg == "off":
        member.quiet_start = member.quiet_end = None
    else:
        start, end = arg.split("-")
        member.quiet_start, member.quiet_end = int(start), int(end)
    _saved(turn, member)
    return True


def _saved(turn: Turn, member: Member) -> None:
    turn.say(texts.QUIET_SAVED.format(current=describe(member)), main_menu(member))


async def typed(turn: Turn, text: str) -> None:
    """Words typed after `/silencio` instead of a tap: the person's own hours."""
    member = require_member(turn)
    if member is None:
        return
    hours = parse_range(text[:60])
    if hours is None:
        turn.say(texts.QUIET_UNCLEAR, _choices())
        return
    member.quiet_start, member.quiet_end = hours
    _saved(turn, member)
