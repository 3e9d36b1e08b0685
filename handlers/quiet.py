"""`/silencio`: the hours when only security alerts may reach a member."""

from __future__ import annotations

from handlers import texts
from handlers.common import require_member
from handlers.core import Option, Turn
from models import Member

FLOW = "sil"


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
    options = [Option(label, f"{FLOW}:set:{key}") for key, label in texts.QUIET_CHOICES.items()]
    turn.say(texts.QUIET_NOW.format(current=describe(member)), options)


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
    turn.say(texts.QUIET_SAVED.format(current=describe(member)))
    return True
