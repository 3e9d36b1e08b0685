"""Writing to the outbox: who gets what, when (quiet hours), in the caller's transaction.

The dispatcher (`scheduler/outbox.py`) sends; this module only decides. Alerts ignore quiet
hours. A personal notice (`Priority.PERSONAL`: about something a person is doing right now)
goes through them at once, silently where the channel allows it. Everything else to a member
in their quiet hours waits until their morning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from handlers.core import Option

from models import (
    ChannelIdentity,
    Delivery,
    DeliveryStatus,
    Member,
    Membership,
    MembershipStatus,
    Priority,
    queries,
)


@dataclass(frozen=True)
class Recipient:
    member_id: int | None
    channel: str
    address: str
    quiet_start: int | None
    quiet_end: int | None
    unreachable: bool


def quiet_until(
    now: datetime, zone: ZoneInfo, quiet_start: int | None, quiet_end: int | None
) -> datetime:
    """`now` if the member may be written to now, else the end of their quiet hours (UTC)."""
    if quiet_start is None or quiet_end is None or quiet_start == quiet_end:
        return now
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    overnight = quiet_start > quiet_end  # 22:00–08:00 wraps midnight
    inside = (
        (minute >= quiet_start or minute < quiet_end)
        if overnight
        else quiet_start <= minute < quiet_end
    )
    if not inside:
        return now
    end_day = local.date()
    if overnight and minute >= quiet_start:
        end_day += timedelta(days=1)
    wake = datetime.combine(end_day, time(quiet_end // 60, quiet_end % 60), tzinfo=zone)
    return wake.astimezone(now.tzinfo)


PERSONAL_PRIORITIES = (Priority.PERSONAL, Priority.PERSONAL_SILENT)


def timing(
    recipient: Recipient, now: datetime, zone: ZoneInfo, priority: Priority, *, urgent: bool
) -> tuple[datetime, Priority]:
    """When a message to `recipient` may go, and the priority its row keeps: a personal
    notice inside their quiet hours goes now, marked to go silently."""
    wake = quiet_until(now, zone, recipient.quiet_start, recipient.quiet_end)
    if priority in PERSONAL_PRIORITIES:
        return now, Priority.PERSONAL_SILENT if wake > now else Priority.PERSONAL
    return (now if urgent else wake), priority


def goes_silently(priority: int) -> bool:
    """Whether a queued row goes without sound: a personal notice queued in its recipient's
    quiet hours."""
    return priority == Priority.PERSONAL_SILENT


def reach_each_once(
    identities: Iterable[tuple[Recipient, str | None]],
) -> list[Recipient]:
    """One identity per person, so that someone on Telegram and WhatsApp gets a message once:
    the channel they chose for broadcasts (`Member.broadcast_channel`, paired with each of
    their identities here, oldest first), else the one they registered on; a reachable one
    before one the platform said is not. Identities of nobody (`member_id` None) all stay."""
    chosen: dict[int, Recipient] = {}
    anonymous: list[Recipient] = []
    for recipient, preferred in identities:
        if recipient.member_id is None:
            anonymous.append(recipient)
            continue
        current = chosen.get(recipient.member_id)
        if current is None or _rank(recipient, preferred) < _rank(current, preferred):
            chosen[recipient.member_id] = recipient
    return [*chosen.values(), *anonymous]


def _rank(recipient: Recipient, preferred: str | None) -> tuple[bool, bool]:
    return recipient.unreachable, recipient.channel != preferred


def recipients_of(member: Member) -> list[Recipient]:
    """Where a message to one member goes (their identities must be loaded)."""
    return reach_each_once(
        (
            Recipient(
                member.id,
                identity.channel,
                identity.external_id,
                member.quiet_start,
                member.quiet_end,
                identity.unreachable_at is not None,
            ),
            member.broadcast_channel,
        )
        for identity in sorted(member.identities, key=lambda identity: identity.id or 0)
    )


async def recipients_among(
    session: AsyncSession, condition: ColumnElement[bool]
) -> list[Recipient]:
    """Where a message to each member matching `condition` goes, each member once."""
    rows = await session.execute(
        select(
            Member.id,
            ChannelIdentity.channel,
            ChannelIdentity.external_id,
            Member.quiet_start,
            Member.quiet_end,
            ChannelIdentity.unreachable_at,
            Member.broadcast_channel,
        )
        .join(ChannelIdentity, ChannelIdentity.member_id == Member.id)
        .where(condition)
        .order_by(Member.id, ChannelIdentity.id)
    )
    return reach_each_once(
        (Recipient(member_id, channel, address, start, end, unreachable is not None), preferred)
        for member_id, channel, address, start, end, unreachable, preferred in rows
    )


# A registered member's quiet hours by default (`Member`): a request to an administrator who
# is no member can wait for their morning as well.
DEFAULT_QUIET = (22 * 60, 8 * 60)


async def recipients_at(
    session: AsyncSession, addresses: Sequence[tuple[str, str]]
) -> list[Recipient]:
    """Where a message to these (channel, external id) addresses goes: a registered member's
    address as theirs (their quiet hours, each person once), anyone else's as it is."""
    if not addresses:
        return []
    rows = await session.execute(
        select(
            ChannelIdentity.channel,
            ChannelIdentity.external_id,
            Member.id,
            Member.quiet_start,
            Member.quiet_end,
            ChannelIdentity.unreachable_at,
            Member.broadcast_channel,
        )
        .join(Member, Member.id == ChannelIdentity.member_id)
        .where(tuple_(ChannelIdentity.channel, ChannelIdentity.external_id).in_(addresses))
    )
    known = {
        (channel, address): (
            Recipient(member_id, channel, address, start, end, unreachable is not None),
            preferred,
        )
        for channel, address, member_id, start, end, unreachable, preferred in rows
    }
    return reach_each_once(
        known.get(
            (channel, address),
            (Recipient(None, channel, address, *DEFAULT_QUIET, unreachable=False), None),
        )
        for channel, address in dict.fromkeys(addresses)
    )


async def barrio_recipients(
    session: AsyncSession, barrio_ids: Sequence[int], *, exclude_member_id: int | None = None
) -> list[Recipient]:
    """The active members of these barrios, each once, on the channel chosen for them."""
    return await recipients_among(
        session,
        Member.id.in_(
            select(Membership.member_id).where(
                Membership.barrio_id.in_(barrio_ids),
                Membership.status == MembershipStatus.ACTIVE,
            )
        )
        & (Member.id != (exclude_member_id or 0)),
    )


async def enqueue(
    session: AsyncSession,
    recipients: Iterable[Recipient],
    text: str,
    *,
    now: datetime,
    zone: ZoneInfo,
    options: Sequence[Option] = (),
    priority: Priority = Priority.NOTICE,
    broadcast: str | None = None,
    photo: str | None = None,
    urgent: bool = False,
    about_member_id: int | None = None,
    barrio_id: int | None = None,
    template: str | None = None,
    params: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Queue one delivery per recipient; returns how many. Unreachable identities get a row
    already marked unreachable, so the broadcast's final count includes them. `about_member_id`:
    the person the text names (erasing them deletes it); `barrio_id`: the one barrio it is for
    (leaving that barrio withdraws it while still queued). `template` and `params`: rendered
    again as it is sent (`handlers/reminders.py`); `expires_at`: a recipient whose quiet hours
    would hold it until then gets no row at all, and the dispatcher drops one still waiting
    then, so the count returned can be less than the recipients. Quiet hours hold the rows
    unless `urgent` (alerts: at once, with sound) or the priority is personal (see `timing`)."""
    buttons = [{"label": o.label, "payload": o.payload} for o in options]
    timed = [(r, *timing(r, now, zone, priority, urgent=urgent)) for r in recipients]
    if expires_at is not None:
        timed = [each for each in timed if each[1] < expires_at]
    rows = [
        {
            "channel": r.channel,
            "recipient": r.address,
            "member_id": r.member_id,
            "text": text,
            "options": buttons,
            "photo": photo,
            "broadcast": broadcast,
            "about_member_id": about_member_id,
            "barrio_id": barrio_id,
            "priority": int(row_priority),
            "status": DeliveryStatus.UNREACHABLE if r.unreachable else DeliveryStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "not_before": not_before,
            "template": template,
            "params": params,
            "expires_at": expires_at,
        }
        for r, not_before, row_priority in timed
    ]
    if rows:
        await session.execute(insert(Delivery), rows)
    return len(rows)


async def enqueue_per_barrio(
    session: AsyncSession,
    recipients: Sequence[Recipient],
    barrio_ids: Sequence[int],
    text: str,
    **options: Any,
) -> int:
    """`enqueue` to the members of `barrio_ids`, each member once. Each row carries the barrio
    the member gets it through when only one of them is theirs; a member of two gets it with
    no barrio, since leaving one of them must not withdraw what the other still sends."""
    sole = await queries.sole_barrios(session, barrio_ids)
    groups: dict[int | None, list[Recipient]] = {}
    for recipient in recipients:
        barrio_id = sole.get(recipient.member_id) if recipient.member_id else None
        groups.setdefault(barrio_id, []).append(recipient)
    queued = 0
    for barrio_id, group in groups.items():
        queued += await enqueue(session, group, text, barrio_id=barrio_id, **options)
    return queued
