"""`/vincular`: one person on Telegram and WhatsApp with one registration.

A member asks on one channel for a short code (`CODE_DIGITS` digits, valid `CODE_VALID_FOR`)
and types it on the other, where that address becomes one more identity of the same member.
Broadcasts then reach them once, on the channel they choose (`handlers.outbox.reach_each_once`);
replies always go where they wrote. Erasing their data erases every identity.

An address that already has its own registration is never merged into another: the two
profiles may disagree, and only the person can say which one is right. They are told how to
erase one and link it.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from handlers import texts
from handlers.common import main_menu, require_member, say_menu
from handlers.core import Option, Turn
from handlers.outbox import Recipient, enqueue
from models import (
    ChannelIdentity,
    Conversation,
    Delivery,
    DeliveryStatus,
    LinkCode,
    Member,
    Membership,
    Priority,
)

FLOW = "link"
CODE_DIGITS = 6
CODE_VALID_FOR = timedelta(minutes=15)
# Wrong codes one address may type before it must wait: with a million codes and a handful
# of them live at a time, guessing one takes far more tries than this allows.
MAX_WRONG_CODES = 5
WRONG_CODES = "link_wrong"
CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp"}
# "vincular 123 456", typed at any step of any dialogue: a code is never a name or an answer.
LINK_REQUEST = re.compile(r"\s*/?vincular\s+(\d[\d\s.-]{4,12}\d)\s*", re.IGNORECASE)


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def code_typed(text: str) -> str | None:
    """The code in "VINCULAR 123 456", digits only; None if the text is not that."""
    found = LINK_REQUEST.fullmatch(text)
    if found is None:
        return None
    digits = re.sub(r"\D", "", found[1])
    return digits if len(digits) == CODE_DIGITS else None


async def begin(turn: Turn, args: str = "") -> None:
    code = re.sub(r"[\s.-]", "", args)
    if code:
        await redeem(turn, code)
        return
    if len(turn.channels) < 2:
        say_menu(turn, texts.LINK_ONE_CHANNEL)
        return
    if turn.member is None:
        turn.enter(FLOW, "code")
        turn.say(texts.LINK_ASK_CODE)
        return
    identities = await _identities(turn, turn.member)
    linked = {identity.channel for identity in identities}
    missing = [channel for channel in turn.channels if channel not in linked]
    if missing:
        await _offer_code(turn, turn.member, missing[0])
        return
    _show_linked(turn, turn.member, identities)


async def prompt(turn: Turn) -> None:
    turn.say(texts.LINK_ASK_CODE)


async def on_input(turn: Turn) -> None:
    code = re.sub(r"[\s.-]", "", turn.inbound.text)
    if not (code.isascii() and code.isdigit()):
        turn.say(texts.LINK_CODE_DIGITS)
        return
    await redeem(turn, code)


async def _offer_code(turn: Turn, member: Member, other: str) -> None:
    await turn.session.execute(delete(LinkCode).where(LinkCode.member_id == member.id))
    code = await _new_code(turn)
    turn.session.add(LinkCode(member_id=member.id, code=code, expires_at=turn.now + CODE_VALID_FOR))
    turn.say(
        texts.LINK_CODE.format(
            code=code, other=channel_name(other), minutes=_minutes(CODE_VALID_FOR)
        )
    )


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _recent_wrong_codes(turn: Turn) -> list[str]:
    """When this address typed a wrong code, within the last `CODE_VALID_FOR`."""
    since = turn.now - CODE_VALID_FOR
    kept = []
    for stamp in turn.data.get(WRONG_CODES) or []:
        try:
            if datetime.fromisoformat(str(stamp)) > since:
                kept.append(str(stamp))
        except ValueError:
            continue
    return kept


async def _new_code(turn: Turn) -> str:
    while True:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        taken = await turn.session.scalar(select(LinkCode.id).where(LinkCode.code == code))
        if taken is None:
            return code


def _show_linked(turn: Turn, member: Member, identities: list[ChannelIdentity]) -> None:
    linked = {identity.channel for identity in identities}
    chosen = member.broadcast_channel if member.broadcast_channel in linked else None
    # Without a choice, broadcasts go to the oldest identity: the one registered on.
    current = chosen or identities[0].channel
    here = turn.inbound.channel
    options = [
        Option(
            texts.LINK_RECEIVE_ON.format(channel=channel_name(channel)), f"{FLOW}:pref:{channel}"
        )
        for channel in sorted(linked)
        if channel != current
    ]
    options += [
        Option(texts.LINK_UNLINK.format(channel=channel_name(channel)), f"{FLOW}:unlink:{channel}")
        for channel in sorted(linked)
        if channel != here
    ]
    turn.say(
        texts.LINK_STATUS.format(
            channels=" y ".join(channel_name(c) for c in sorted(linked)),
            channel=channel_name(current),
        ),
        options,
    )


async def redeem(turn: Turn, code: str) -> None:
    """This address typed `code`: it becomes an identity of the member who asked for it."""
    wrong = _recent_wrong_codes(turn)
    turn.finish()
    if len(wrong) >= MAX_WRONG_CODES:
        turn.conversation.data = {WRONG_CODES: wrong}
        say_menu(turn, texts.LINK_TOO_MANY.format(minutes=_minutes(CODE_VALID_FOR)))
        return
    # A code of the wrong length is wrong without asking the database.
    link = (
        await turn.session.scalar(
            select(LinkCode).where(LinkCode.code == code, LinkCode.expires_at > turn.now)
        )
        if len(code) == CODE_DIGITS
        else None
    )
    if link is None:
        turn.conversation.data = {WRONG_CODES: [*wrong, turn.now.isoformat()]}
        say_menu(turn, texts.LINK_BAD_CODE)
        return
    # As the dialogue loads a member: the menus look at their memberships and barrios.
    target = await turn.session.scalar(
        select(Member)
        .where(Member.id == link.member_id)
        .options(selectinload(Member.memberships).selectinload(Membership.barrio))
    )
    assert target is not None  # the code goes with its member (ON DELETE CASCADE)
    here = turn.inbound.channel
    if turn.member is not None:
        same = turn.member.id == target.id
        say_menu(turn, texts.LINK_ALREADY_SAME if same else texts.LINK_HAS_OWN_REGISTRATION)
        return
    identities = await _identities(turn, target)
    if any(identity.channel == here for identity in identities):
        say_menu(turn, texts.LINK_CHANNEL_TAKEN.format(channel=channel_name(here)))
        return
    await turn.session.delete(link)
    turn.session.add(
        ChannelIdentity(
            member_id=target.id,
            channel=here,
            external_id=turn.inbound.sender_id,
            last_inbound_at=turn.now,
        )
    )
    turn.member = target
    turn.conversation.data = {}
    others = [identity for identity in identities if identity.channel != here]
    turn.enqueued += await enqueue(
        turn.session,
        [
            Recipient(
                target.id,
                identity.channel,
                identity.external_id,
                target.quiet_start,
                target.quiet_end,
                identity.unreachable_at is not None,
            )
            for identity in others
        ],
        texts.LINK_DONE_ELSEWHERE.format(channel=channel_name(here)),
        now=turn.now,
        zone=turn.zone,
        priority=Priority.PERSONAL,
    )
    channels = [here, *(identity.channel for identity in others)]
    turn.say(
        texts.LINK_DONE.format(name=target.name, channel=channel_name(here)),
        [
            Option(texts.LINK_RECEIVE_ON.format(channel=channel_name(c)), f"{FLOW}:pref:{c}")
            for c in sorted(set(channels))
        ],
    )


async def on_button(turn: Turn, action: str, arg: str) -> bool:
    member = require_member(turn)
    if member is None:
        return True
    identities = {identity.channel: identity for identity in await _identities(turn, member)}
    if arg not in identities or len(identities) < 2:
        return False
    if action == "pref":
        member.broadcast_channel = arg
        turn.say(texts.LINK_PREFERENCE_SAVED.format(channel=channel_name(arg)), main_menu(member))
    elif action == "unlink" and arg != turn.inbound.channel:
        turn.say(
            texts.LINK_UNLINK_CONFIRM.format(channel=channel_name(arg)),
            [
                Option(texts.LINK_UNLINK_YES, f"{FLOW}:unlinkyes:{arg}"),
                Option(texts.LINK_UNLINK_NO, "menu:ayuda"),
            ],
        )
    elif action == "unlinkyes" and arg != turn.inbound.channel:
        await _unlink(turn, member, identities[arg])
        turn.say(texts.LINK_UNLINKED.format(channel=channel_name(arg)), main_menu(member))
    else:
        return False
    return True


async def _unlink(turn: Turn, member: Member, identity: ChannelIdentity) -> None:
    """That address is no longer this member's: nothing more goes to it, and it keeps
    nothing of them (its conversation and what is still queued for it)."""
    address = (identity.channel, identity.external_id)
    await turn.session.execute(
        delete(Delivery).where(
            Delivery.channel == address[0],
            Delivery.recipient == address[1],
            Delivery.status == DeliveryStatus.PENDING,
        )
    )
    await turn.session.execute(
        delete(Conversation).where(
            Conversation.channel == address[0], Conversation.external_id == address[1]
        )
    )
    if member.broadcast_channel == identity.channel:
        member.broadcast_channel = None
    await turn.session.delete(identity)


async def _identities(turn: Turn, member: Member) -> list[ChannelIdentity]:
    return list(
        await turn.session.scalars(
            select(ChannelIdentity)
            .where(ChannelIdentity.member_id == member.id)
            .order_by(ChannelIdentity.id)
        )
    )
