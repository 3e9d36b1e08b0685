"""`/perfil`: see one's own data, change it, and choose what the barrio directory shows."""

from __future__ import annotations

import re

from handlers import texts
from handlers.common import category_label, category_options, read_text, require_member
from handlers.core import InboundKind, Option, Turn, clean_line
from models import Member

FLOW = "prf"
TEXT_FIELDS = {
    "name": (texts.ASK_NEW_NAME, 60),
    "business": (texts.ASK_NEW_BUSINESS, 80),
    "address": (texts.ASK_NEW_ADDRESS, 120),
    "phone": (texts.ASK_NEW_PHONE, 20),
}
CLEARABLE = ("address", "phone")
VISIBILITY = {"listed": "show_in_directory", "phone": "show_phone", "address": "show_address"}


async def show(turn: Turn, _args: str = "") -> None:
    member = require_member(turn)
    if member is None:
        return
    turn.finish()
    turn.say(render(member), _options(member))


def render(member: Member) -> str:
    if member.show_in_directory:
        shown = [texts.VISIBILITY_BASE]
        if member.show_phone and member.phone:
            shown.append(texts.VISIBILITY_PHONE)
        if member.show_address and member.address:
            shown.append(texts.VISIBILITY_ADDRESS)
        visibility = ", ".join(shown)
    else:
        visibility = texts.VISIBILITY_HIDDEN
    return texts.PROFILE.format(
        name=member.name,
        business=member.business_name,
        category=category_label(member.business_category),
        address=member.address or texts.NOT_GIVEN,
        phone=member.phone or texts.NOT_GIVEN,
        visibility=visibility,
    )


def _options(member: Member) -> list[Option]:
    options = [
        Option(texts.EDIT_NAME, f"{FLOW}:edit:name"),
        Option(texts.EDIT_BUSINESS, f"{FLOW}:edit:business"),
        Option(texts.EDIT_CATEGORY, f"{FLOW}:edit:category"),
        Option(texts.EDIT_ADDRESS, f"{FLOW}:edit:address"),
        Option(texts.EDIT_PHONE, f"{FLOW}:edit:phone"),
    ]
    # Buttons carry the value to set, not "flip": an old button cannot undo a newer choice.
    if member.show_in_directory:
        options.append(Option(texts.TOGGLE_DIRECTORY_OFF, f"{FLOW}:show:listed:0"))
        if member.phone:
            shown = member.show_phone
            label = texts.TOGGLE_PHONE_OFF if shown else texts.TOGGLE_PHONE_ON
            options.append(Option(label, f"{FLOW}:show:phone:{int(not shown)}"))
        if member.address:
            shown = member.show_address
            label = texts.TOGGLE_ADDRESS_OFF if shown else texts.TOGGLE_ADDRESS_ON
            options.append(Option(label, f"{FLOW}:show:address:{int(not shown)}"))
    else:
        options.append(Option(texts.TOGGLE_DIRECTORY_ON, f"{FLOW}:show:listed:1"))
    return options


async def prompt(turn: Turn) -> None:
    step = turn.step or ""
    if step == "category":
        turn.say(texts.ASK_CATEGORY, category_options(f"{FLOW}:cat"))
        return
    question, _limit = TEXT_FIELDS[step]
    options = [Option(texts.CLEAR_VALUE, f"{FLOW}:clear")] if step in CLEARABLE else []
    turn.say(question, options)


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    member = require_member(turn)
    if member is None:
        return True
    if action == "edit" and (arg in TEXT_FIELDS or arg == "category"):
        turn.finish()
        turn.enter(FLOW, arg)
        await prompt(turn)
        return True
    field, _, value = arg.partition(":")
    if action == "show" and field in VISIBILITY and value in ("0", "1"):
        setattr(member, VISIBILITY[field], value == "1")
        _saved(turn, member)
        return True
    if turn.flow != FLOW:
        return False
    if action == "cat" and turn.step == "category" and arg in texts.BUSINESS_CATEGORIES:
        member.business_category = arg
        _saved(turn, member)
        return True
    if action == "clear" and turn.step in CLEARABLE:
        setattr(member, turn.step, None)
        _saved(turn, member)
        return True
    return False


async def on_input(turn: Turn) -> None:
    member = require_member(turn)
    step = turn.step or ""
    if member is None or step not in TEXT_FIELDS:
        turn.say(texts.CHOOSE_FROM_OPTIONS)
        await prompt(turn)
        return
    _question, limit = TEXT_FIELDS[step]
    if step == "phone":
        phone = chilean_phone(turn.inbound.text) if turn.inbound.kind == InboundKind.TEXT else None
        if phone is None:
            turn.say(texts.BAD_PHONE)
            return
        member.phone = phone
    else:
        value = read_text(turn, min_length=2 if step != "address" else 3, max_length=limit)
        if value is None:
            return
        attribute = "business_name" if step == "business" else step
        setattr(member, attribute, value)
    _saved(turn, member)


def _saved(turn: Turn, member: Member) -> None:
    turn.finish()
    turn.say(texts.PROFILE_SAVED)
    turn.say(render(member), _options(member))


_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def chilean_phone(text: str) -> str | None:
    """+56 and nine digits (mobiles start with 9), from the ways people write it."""
    digits = _PHONE_SEPARATORS.sub("", clean_line(text))
    digits = digits.removeprefix("+")
    if digits.startswith("56") and len(digits) == 11:
        digits = digits[2:]
    if len(digits) == 9 and digits.isascii() and digits.isdigit() and digits[0] != "0":
        return f"+56{digits}"
    return None
