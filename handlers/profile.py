"""`/perfil`: see one's own data, change it, and choose what the barrio directory shows."""

from __future__ import annotations

import re

from sqlalchemy import select

from handlers import texts
from handlers.common import category_label, category_options, read_text, require_member
from handlers.core import InboundKind, Option, Turn, clean_line
from models import ChannelIdentity, Member

FLOW = "prf"
# Where a word or two typed may pick an option (handlers/dialogue.py `_options_fitting`).
CHOICE_STEPS = frozenset({"category"})
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
    """The same eight options in the same order whatever the profile holds, so a number
    typed once ("5", the phone) means the same the next time; only the labels follow it."""
    # Buttons carry the value to set, not "flip": an old button cannot undo a newer choice.
    listed = member.show_in_directory
    phone_shown = member.show_phone and bool(member.phone)
    address_shown = member.show_address and bool(member.address)
    return [
        Option(texts.EDIT_NAME, f"{FLOW}:edit:name"),
        Option(texts.EDIT_BUSINESS, f"{FLOW}:edit:business"),
        Option(texts.EDIT_CATEGORY, f"{FLOW}:edit:category"),
        Option(texts.EDIT_ADDRESS, f"{FLOW}:edit:address"),
        Option(texts.EDIT_PHONE, f"{FLOW}:edit:phone"),
        Option(
            texts.TOGGLE_DIRECTORY_OFF if listed else texts.TOGGLE_DIRECTORY_ON,
            f"{FLOW}:show:listed:{int(not listed)}",
        ),
        Option(
            texts.TOGGLE_PHONE_OFF if phone_shown else texts.TOGGLE_PHONE_ON,
            f"{FLOW}:show:phone:{int(not phone_shown)}",
        ),
        Option(
            texts.TOGGLE_ADDRESS_OFF if address_shown else texts.TOGGLE_ADDRESS_ON,
            f"{FLOW}:show:address:{int(not address_shown)}",
        ),
    ]


async def prompt(turn: Turn) -> None:
    step = turn.step or ""
    if step == "category":
        turn.say(texts.ASK_CATEGORY, category_options(f"{FLOW}:cat"))
        return
    question, _limit = TEXT_FIELDS[step]
    options = [Option(texts.CLEAR_VALUE, f"{FLOW}:clear")] if _has_value(turn, step) else []
    number = await _whatsapp_phone(turn) if step == "phone" else None
    if number is not None and turn.member is not None and number != turn.member.phone:
        # They write from it every day: one tap instead of typing nine digits.
        options.insert(0, Option(texts.USE_WHATSAPP_PHONE.format(phone=number), f"{FLOW}:wa"))
    turn.say(question, options)


async def _whatsapp_phone(turn: Turn) -> str | None:
    """The member's WhatsApp number, if they have one and it is a Chilean phone."""
    if turn.member is None:
        return None
    number = await turn.session.scalar(
        select(ChannelIdentity.external_id).where(
            ChannelIdentity.member_id == turn.member.id, ChannelIdentity.channel == "whatsapp"
        )
    )
    return chilean_phone(number) if number else None


def _has_value(turn: Turn, field: str) -> bool:
    """Whether "🗑️ Quitar" has anything to remove."""
    return field in CLEARABLE and turn.member is not None and bool(getattr(turn.member, field))


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
        if value == "1" and field in CLEARABLE and not getattr(member, field):
            # Nothing to show yet: ask for it, and it shows once written.
            turn.finish()
            turn.enter(FLOW, field)
            turn.say(texts.SHOW_NEEDS_VALUE[field])
            await prompt(turn)
            return True
        _saved(turn, member)
        return True
    if turn.flow != FLOW:
        return False
    if action == "cat" and turn.step == "category" and arg in texts.BUSINESS_CATEGORIES:
        member.business_category = arg
        _saved(turn, member)
        return True
    step = turn.step or ""
    if action == "wa" and step == "phone" and (number := await _whatsapp_phone(turn)):
        member.phone = number
        _saved(turn, member)
        return True
    if action == "clear" and _has_value(turn, step):
        setattr(member, step, None)
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
